package workload

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/durationpb"

	appv1 "skypanel/shared/gen/go/skypanel/app/v1"
)

// Health check defaults and bounds. An unset or zero duration and zero retries mean the
// default. The bounds keep a check from hammering a replica (interval at least 1 s) and keep a
// broken replica from going unnoticed for long (interval, start period at most 1 h; timeout
// at most 10 min and never longer than the interval, so checks do not pile up).
const (
	DefaultHealthInterval = 5 * time.Second
	DefaultHealthTimeout  = 3 * time.Second
	DefaultHealthRetries  = 3

	MinHealthInterval    = time.Second
	MaxHealthInterval    = time.Hour
	MinHealthTimeout     = time.Second
	MaxHealthTimeout     = 10 * time.Minute
	MaxHealthRetries     = 100
	MaxHealthStartPeriod = time.Hour

	// MaxHealthCommandItems and MaxHealthCommandItemLength are the schema's limits.
	MaxHealthCommandItems      = 32
	MaxHealthCommandItemLength = 1024
)

// HealthTimings is a health check's timing with the defaults applied, ready for a Swarm
// service spec.
type HealthTimings struct {
	Interval    time.Duration
	Timeout     time.Duration
	StartPeriod time.Duration
	Retries     int
}

// ValidateHealthCheck checks a health check; field paths are relative to it ("interval",
// "command[2]"). A nil health check is valid (none). The rules:
//   - command: at most 32 items of at most 1024 characters, none empty or containing NUL (it is
//     run without a shell, so an empty item is never what was meant); empty means no check;
//   - interval: 1 s to 1 h, default 5 s;
//   - timeout: 1 s to 10 min and not longer than the interval, default 3 s (or the interval
//     when that is shorter);
//   - retries: 0 to 100, 0 meaning the default 3;
//   - start_period: 0 to 1 h, default 0.
func ValidateHealthCheck(hc *appv1.HealthCheck) FieldErrors {
	var errs FieldErrors
	if hc == nil {
		return nil
	}
	if n := len(hc.GetCommand()); n > MaxHealthCommandItems {
		errs.add("command", "must have at most %d items, not %d", MaxHealthCommandItems, n)
	}
	for i, item := range hc.GetCommand() {
		if reason := commandItemReason(item, MaxHealthCommandItemLength); reason != "" {
			errs.add(fmt.Sprintf("command[%d]", i), "%s", reason)
		}
	}
	interval, ok := checkDuration(&errs, "interval", hc.GetInterval(), MinHealthInterval, MaxHealthInterval)
	if !ok || interval == 0 {
		interval = DefaultHealthInterval
	}
	if timeout, ok := checkDuration(&errs, "timeout", hc.GetTimeout(), MinHealthTimeout, MaxHealthTimeout); ok && timeout > interval {
		errs.add("timeout", "must not be longer than the interval (%s)", shortDuration(interval))
	}
	checkDuration(&errs, "start_period", hc.GetStartPeriod(), 0, MaxHealthStartPeriod)
	if r := hc.GetRetries(); r < 0 || r > MaxHealthRetries {
		errs.add("retries", "must be from 0 (the default, %d) to %d, not %d", DefaultHealthRetries, MaxHealthRetries, r)
	}
	return errs
}

// ResolveHealthCheck applies the defaults to a health check ValidateHealthCheck accepted.
// Whoever builds the service spec calls it, so the control plane and the agent agree on
// what an unset field means.
func ResolveHealthCheck(hc *appv1.HealthCheck) HealthTimings {
	t := HealthTimings{
		Interval:    hc.GetInterval().AsDuration(),
		Timeout:     hc.GetTimeout().AsDuration(),
		StartPeriod: hc.GetStartPeriod().AsDuration(),
		Retries:     int(hc.GetRetries()),
	}
	if t.Interval <= 0 {
		t.Interval = DefaultHealthInterval
	}
	if t.Timeout <= 0 {
		t.Timeout = min(DefaultHealthTimeout, t.Interval)
	}
	if t.StartPeriod < 0 {
		t.StartPeriod = 0
	}
	if t.Retries <= 0 {
		t.Retries = DefaultHealthRetries
	}
	return t
}

// checkDuration checks an optional duration: unset or zero is fine (the default), otherwise
// it must be from lo to hi. It returns the duration and whether it was valid.
func checkDuration(errs *FieldErrors, field string, d *durationpb.Duration, lo, hi time.Duration) (time.Duration, bool) {
	if d == nil {
		return 0, true
	}
	if err := d.CheckValid(); err != nil {
		errs.add(field, "must be a valid duration")
		return 0, false
	}
	v := d.AsDuration()
	if v == 0 {
		return 0, true
	}
	if v < lo || v > hi {
		errs.add(field, "must be from %s to %s (or unset for the default), not %s", shortDuration(lo), shortDuration(hi), shortDuration(v))
		return v, false
	}
	return v, true
}

// commandItemReason says why one item of an exec-form command is refused, or "".
func commandItemReason(item string, maxLen int) string {
	switch {
	case item == "":
		return "must not be empty"
	case utf8.RuneCountInString(item) > maxLen:
		return fmt.Sprintf("must be at most %d characters", maxLen)
	case strings.ContainsRune(item, 0):
		return "must not contain NUL characters"
	}
	return ""
}

// shortDuration formats d without zero minutes and seconds: "1h", "10m", "1m30s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
