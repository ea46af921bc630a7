package workload

import (
	"fmt"
	"strings"
	"unicode/utf8"

	appv1 "skypanel/shared/gen/go/skypanel/app/v1"
)

// MaxEnvValueLength bounds an environment variable's value, in characters, as the schema
// does.
const MaxEnvValueLength = 32768

// ParseDotenv reads the variables of a .env file. It accepts:
//
//	# a comment line, and blank lines
//	NAME=value            unquoted: surrounding spaces trimmed, a " # comment" after it dropped
//	export NAME=value     the shell's export prefix
//	NAME = value          spaces around "="
//	NAME='literal'        single quotes: taken as written, may span lines
//	NAME="a\nb \"q\""     double quotes: \n \r \t \" \\ are escapes, other backslashes are
//	                      kept, and the value may span lines
//	NAME=                 an empty value
//
// Lines may end in CRLF; a leading byte-order mark is ignored. There is no variable
// expansion: "$OTHER" is kept as written. Names must pass ValidateEnvName and values may not
// contain NUL or exceed MaxEnvValueLength characters. When a name appears twice the last
// value wins, at the place of the first. Errors name the line: "line 7: ...". Every variable
// returned is not secret.
func ParseDotenv(content string) ([]*appv1.EnvVar, error) {
	if !utf8.ValidString(content) {
		for i, r := range content {
			if r == utf8.RuneError && !strings.HasPrefix(content[i:], "\ufffd") {
				return nil, fmt.Errorf("line %d: not valid UTF-8", 1+strings.Count(content[:i], "\n"))
			}
		}
	}
	content = strings.TrimPrefix(content, "\ufeff")
	content = strings.ReplaceAll(content, "\r\n", "\n")

	var vars []*appv1.EnvVar
	index := map[string]int{}
	line := 0
	for content != "" {
		line++
		start := line
		physical, rest, _ := strings.Cut(content, "\n")
		body := strings.TrimLeft(physical, " \t")
		if body == "" || body[0] == '#' {
			content = rest
			continue
		}
		if after, ok := strings.CutPrefix(body, "export"); ok && after != "" && (after[0] == ' ' || after[0] == '\t') {
			body = strings.TrimLeft(after, " \t")
		}
		name, afterEq, ok := strings.Cut(body, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: expected NAME=value", line)
		}
		name = strings.TrimRight(name, " \t")
		if err := ValidateEnvName(name); err != nil {
			return nil, fmt.Errorf("line %d: name %w", line, err)
		}

		// The value may run past this line when quoted: read it from the whole rest.
		raw := content[len(physical)-len(afterEq):]
		v := strings.TrimLeft(raw, " \t")
		var value string
		switch {
		case strings.HasPrefix(v, "'"):
			end := strings.IndexByte(v[1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated single-quoted value", start)
			}
			value = v[1 : 1+end]
			line += strings.Count(value, "\n")
			content, ok = afterClosingQuote(v[2+end:])
		case strings.HasPrefix(v, `"`):
			var n int
			value, n, ok = unquoteDouble(v)
			if !ok {
				return nil, fmt.Errorf("line %d: unterminated double-quoted value", start)
			}
			line += strings.Count(v[:n], "\n")
			content, ok = afterClosingQuote(v[n:])
		default:
			text, _, _ := strings.Cut(raw, "\n")
			for i := 1; i < len(text); i++ {
				if text[i] == '#' && (text[i-1] == ' ' || text[i-1] == '\t') {
					text = text[:i]
					break
				}
			}
			value = strings.Trim(text, " \t")
			content, ok = rest, true
		}
		if !ok {
			return nil, fmt.Errorf("line %d: unexpected text after the closing quote", line)
		}
		if strings.ContainsRune(value, 0) {
			return nil, fmt.Errorf("line %d: value must not contain NUL characters", start)
		}
		if n := utf8.RuneCountInString(value); n > MaxEnvValueLength {
			return nil, fmt.Errorf("line %d: value must be at most %d characters, not %d", start, MaxEnvValueLength, n)
		}
		if i, dup := index[name]; dup {
			vars[i].Value = value
			continue
		}
		index[name] = len(vars)
		vars = append(vars, &appv1.EnvVar{Name: name, Value: value})
	}
	return vars, nil
}

// afterClosingQuote checks that only spaces and a comment follow a closing quote on its line,
// and returns the content after that line.
func afterClosingQuote(s string) (string, bool) {
	tail, rest, _ := strings.Cut(s, "\n")
	tail = strings.TrimLeft(tail, " \t")
	return rest, tail == "" || tail[0] == '#'
}

// unquoteDouble reads a double-quoted value at the start of s, returning it, the number of
// bytes it took (both quotes included), and false when the closing quote is missing.
func unquoteDouble(s string) (string, int, bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), i + 1, true
		case '\\':
			if i+1 == len(s) {
				return "", 0, false
			}
			i++
			switch e := s[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '"', '\\':
				b.WriteByte(e)
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, false
}

// FormatDotenv writes variables as a .env file that ParseDotenv reads back to the same
// names and values: one NAME=value line each, in order, the value bare when that is
// unambiguous, else in single quotes, else in double quotes with escapes. A secret variable's
// value is never written: it becomes the comment line "# NAME=<secret, not exported>", so the
// file says what is missing.
func FormatDotenv(env []*appv1.EnvVar) string {
	var b strings.Builder
	for _, v := range env {
		if v.GetSecret() {
			fmt.Fprintf(&b, "# %s=<secret, not exported>\n", v.GetName())
			continue
		}
		b.WriteString(v.GetName())
		b.WriteByte('=')
		b.WriteString(quoteDotenv(v.GetValue()))
		b.WriteByte('\n')
	}
	return b.String()
}

func quoteDotenv(v string) string {
	if bareDotenv(v) {
		return v
	}
	if !strings.ContainsAny(v, "'\n\r") {
		return "'" + v + "'"
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := range len(v) {
		switch c := v[i]; c {
		case '\\', '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// bareDotenv reports whether ParseDotenv reads v back unchanged when written unquoted.
func bareDotenv(v string) bool {
	if v == "" {
		return true
	}
	if strings.ContainsAny(v, "\n\r") || strings.Contains(v, " #") || strings.Contains(v, "\t#") {
		return false
	}
	switch v[0] {
	case ' ', '\t', '\'', '"':
		return false
	}
	last := v[len(v)-1]
	return last != ' ' && last != '\t'
}
