package workload

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	appv1 "skypanel/shared/gen/go/skypanel/app/v1"
)

func TestValidateHealthCheck(t *testing.T) {
	d := durationpb.New
	tests := []struct {
		name   string
		hc     *appv1.HealthCheck
		errors FieldErrors
	}{
		{"no health check is valid", nil, nil},
		{"an empty health check is valid", &appv1.HealthCheck{}, nil},
		{"a full health check at the bounds is valid", &appv1.HealthCheck{
			Command: []string{"/app", "-healthcheck"}, Interval: d(time.Hour), Timeout: d(10 * time.Minute),
			Retries: 100, StartPeriod: d(time.Hour),
		}, nil},
		{"the lower bounds are valid", &appv1.HealthCheck{
			Interval: d(time.Second), Timeout: d(time.Second), StartPeriod: d(0),
		}, nil},
		{"zero durations mean the defaults", &appv1.HealthCheck{Interval: d(0), Timeout: d(0)}, nil},
		{"an empty command item is refused", &appv1.HealthCheck{Command: []string{"/app", ""}},
			FieldErrors{{"command[1]", "must not be empty"}}},
		{"a NUL in a command item is refused", &appv1.HealthCheck{Command: []string{"/app\x00"}},
			FieldErrors{{"command[0]", "must not contain NUL characters"}}},
		{"too many command items are refused", &appv1.HealthCheck{Command: make33("x")},
			FieldErrors{{"command", "must have at most 32 items, not 33"}}},
		{"a long command item is refused", &appv1.HealthCheck{Command: []string{strings.Repeat("é", 1025)}},
			FieldErrors{{"command[0]", "must be at most 1024 characters"}}},
		{"an interval under a second is refused", &appv1.HealthCheck{Interval: d(500 * time.Millisecond)},
			FieldErrors{{"interval", "must be from 1s to 1h (or unset for the default), not 500ms"}}},
		{"an interval over an hour is refused", &appv1.HealthCheck{Interval: d(time.Hour + time.Second)},
			FieldErrors{{"interval", "must be from 1s to 1h (or unset for the default), not 1h0m1s"}}},
		{"a negative interval is refused", &appv1.HealthCheck{Interval: d(-time.Second)},
			FieldErrors{{"interval", "must be from 1s to 1h (or unset for the default), not -1s"}}},
		{"an invalid duration is refused", &appv1.HealthCheck{Interval: &durationpb.Duration{Seconds: 1, Nanos: -1}},
			FieldErrors{{"interval", "must be a valid duration"}}},
		{"a timeout over ten minutes is refused", &appv1.HealthCheck{Interval: d(time.Hour), Timeout: d(11 * time.Minute)},
			FieldErrors{{"timeout", "must be from 1s to 10m (or unset for the default), not 11m"}}},
		{"a timeout longer than the interval is refused", &appv1.HealthCheck{Interval: d(2 * time.Second), Timeout: d(3 * time.Second)},
			FieldErrors{{"timeout", "must not be longer than the interval (2s)"}}},
		{"a timeout longer than the default interval is refused", &appv1.HealthCheck{Timeout: d(6 * time.Second)},
			FieldErrors{{"timeout", "must not be longer than the interval (5s)"}}},
		{"negative retries are refused", &appv1.HealthCheck{Retries: -1},
			FieldErrors{{"retries", "must be from 0 (the default, 3) to 100, not -1"}}},
		{"over 100 retries are refused", &appv1.HealthCheck{Retries: 101},
			FieldErrors{{"retries", "must be from 0 (the default, 3) to 100, not 101"}}},
		{"a start period over an hour is refused", &appv1.HealthCheck{StartPeriod: d(2 * time.Hour)},
			FieldErrors{{"start_period", "must be from 0s to 1h (or unset for the default), not 2h"}}},
		{"a negative start period is refused", &appv1.HealthCheck{StartPeriod: d(-time.Second)},
			FieldErrors{{"start_period", "must be from 0s to 1h (or unset for the default), not -1s"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.errors, ValidateHealthCheck(tt.hc))
		})
	}
}

func make33(s string) []string {
	out := make([]string, 33)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestResolveHealthCheck(t *testing.T) {
	d := durationpb.New
	t.Run("unset fields get the defaults", func(t *testing.T) {
		require.Equal(t, HealthTimings{Interval: 5 * time.Second, Timeout: 3 * time.Second, Retries: 3}, ResolveHealthCheck(nil))
		require.Equal(t, HealthTimings{Interval: 5 * time.Second, Timeout: 3 * time.Second, Retries: 3},
			ResolveHealthCheck(&appv1.HealthCheck{Interval: d(0)}))
	})
	t.Run("an unset timeout is no longer than a short interval", func(t *testing.T) {
		got := ResolveHealthCheck(&appv1.HealthCheck{Interval: d(2 * time.Second)})
		require.Equal(t, 2*time.Second, got.Timeout)
	})
	t.Run("set fields are kept", func(t *testing.T) {
		got := ResolveHealthCheck(&appv1.HealthCheck{Interval: d(time.Minute), Timeout: d(10 * time.Second), Retries: 7, StartPeriod: d(30 * time.Second)})
		require.Equal(t, HealthTimings{Interval: time.Minute, Timeout: 10 * time.Second, Retries: 7, StartPeriod: 30 * time.Second}, got)
	})
}

// FuzzValidateHealthCheck checks that the timings of any health check ValidateHealthCheck
// accepts resolve within the documented bounds, with the timeout no longer than the interval,
// and that refusals name only the health check's fields.
func FuzzValidateHealthCheck(f *testing.F) {
	f.Add(int64(5), int32(0), int64(3), int32(0), int64(0), int32(0), int32(0), uint8(7), "/app")
	f.Add(int64(1), int32(0), int64(2), int32(0), int64(0), int32(0), int32(3), uint8(3), "")
	f.Add(int64(0), int32(-1), int64(0), int32(0), int64(3600), int32(1), int32(101), uint8(5), "x")
	f.Fuzz(func(t *testing.T, is int64, in int32, ts int64, tn int32, ss int64, sn int32, retries int32, set uint8, cmd string) {
		hc := &appv1.HealthCheck{Retries: retries}
		if cmd != "" {
			hc.Command = strings.Split(cmd, "|")
		}
		if set&1 != 0 {
			hc.Interval = &durationpb.Duration{Seconds: is, Nanos: in}
		}
		if set&2 != 0 {
			hc.Timeout = &durationpb.Duration{Seconds: ts, Nanos: tn}
		}
		if set&4 != 0 {
			hc.StartPeriod = &durationpb.Duration{Seconds: ss, Nanos: sn}
		}
		errs := ValidateHealthCheck(hc)
		if len(errs) > 0 {
			for _, e := range errs {
				field, _, _ := strings.Cut(e.Field, "[")
				require.Contains(t, []string{"command", "interval", "timeout", "retries", "start_period"}, field)
				require.NotEmpty(t, e.Reason)
			}
			return
		}
		got := ResolveHealthCheck(hc)
		require.True(t, got.Interval >= MinHealthInterval && got.Interval <= MaxHealthInterval, "interval %s", got.Interval)
		require.True(t, got.Timeout >= MinHealthTimeout && got.Timeout <= MaxHealthTimeout, "timeout %s", got.Timeout)
		require.LessOrEqual(t, got.Timeout, got.Interval)
		require.True(t, got.StartPeriod >= 0 && got.StartPeriod <= MaxHealthStartPeriod, "start period %s", got.StartPeriod)
		require.True(t, got.Retries >= 1 && got.Retries <= MaxHealthRetries, "retries %d", got.Retries)
		for _, item := range hc.GetCommand() {
			require.NotEmpty(t, item)
		}
	})
}
