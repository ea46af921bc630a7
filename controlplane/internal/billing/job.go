package billing

import (
	"context"
	"time"

	"github.com/riverqueue/river"
)

// MeterArgs is the hourly durable job that runs a Meter. Hour only makes it unique per
// hour: a run meters every period that is due, whatever Hour says.
type MeterArgs struct {
	Hour time.Time `json:"hour"`
}

// Kind implements river.JobArgs.
func (MeterArgs) Kind() string { return "billing.meter" }

// InsertOpts: one job per hour however many control planes enqueue it; errors (a database
// hiccup) are retried, and the next hour's run catches up anyway.
func (MeterArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 10, Queue: river.QueueDefault, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// Worker runs metering jobs.
type Worker struct {
	river.WorkerDefaults[MeterArgs]
	m *Meter
}

// Worker returns the job worker that runs the Meter.
func (m *Meter) Worker() *Worker { return &Worker{m: m} }

// Timeout bounds one run: far above the seconds a period of 100,000 resources takes, and a
// run cut short loses at most its batch in flight.
func (w *Worker) Timeout(*river.Job[MeterArgs]) time.Duration { return 15 * time.Minute }

// Work implements river.Worker.
func (w *Worker) Work(ctx context.Context, _ *river.Job[MeterArgs]) error {
	_, err := w.m.Run(ctx)
	return err
}

// PeriodicJob enqueues MeterArgs Delay after every whole hour, and once when the client
// starts (to catch up after downtime). Add it to river.Config.PeriodicJobs.
func (m *Meter) PeriodicJob() *river.PeriodicJob {
	return river.NewPeriodicJob(hourly{m.opts.Delay}, func() (river.JobArgs, *river.InsertOpts) {
		return MeterArgs{Hour: m.opts.Now().UTC().Truncate(Period)}, nil
	}, &river.PeriodicJobOpts{ID: "billing.meter", RunOnStart: true})
}

// hourly fires `after` past every whole hour.
type hourly struct{ after time.Duration }

// Next implements river.PeriodicSchedule.
func (h hourly) Next(t time.Time) time.Time {
	n := t.UTC().Truncate(Period).Add(h.after)
	for !n.After(t) {
		n = n.Add(Period)
	}
	return n
}
