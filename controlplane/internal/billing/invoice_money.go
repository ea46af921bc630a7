package billing

import (
	"strconv"
	"strings"
)

// minorDigits are the ISO 4217 currencies whose minor unit is not a hundredth: amounts are
// integers of minor units, so 1500 is 1500 yen but 15.00 dollars and 1.500 dinars.
var minorDigits = map[string]int{
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0, "RWF": 0,
	"UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}

// CurrencyDigits is how many decimals the currency's minor unit has (2 unless listed).
func CurrencyDigits(currency string) int {
	if d, ok := minorDigits[currency]; ok {
		return d
	}
	return 2
}

// FormatAmount writes an amount of minor units in major units with the currency's
// decimals and no grouping (1234.56; 1500 for JPY), for CSV.
func FormatAmount(amount int64, currency string) string {
	return formatAmount(amount, currency, false)
}

// FormatAmountGrouped is FormatAmount with thousands separated by commas (1,234.56), for
// documents people read.
func FormatAmountGrouped(amount int64, currency string) string {
	return formatAmount(amount, currency, true)
}

func formatAmount(amount int64, currency string, group bool) string {
	digits := CurrencyDigits(currency)
	neg := amount < 0
	abs := uint64(amount)
	if neg {
		abs = uint64(-(amount + 1)) + 1 // also right for math.MinInt64
	}
	s := strconv.FormatUint(abs, 10)
	if len(s) <= digits {
		s = strings.Repeat("0", digits-len(s)+1) + s
	}
	whole, frac := s[:len(s)-digits], s[len(s)-digits:]
	if group && len(whole) > 3 {
		var b strings.Builder
		for i, r := range whole {
			if i > 0 && (len(whole)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(r)
		}
		whole = b.String()
	}
	out := whole
	if digits > 0 {
		out += "." + frac
	}
	if neg {
		out = "-" + out
	}
	return out
}
