// Package billing charges organizations for what they run, from a prepaid wallet, in integer
// minor units of the wallet's currency (never floats).
//
// # Wallets
//
// Every organization has one wallet, created on first use (its first top-up or its first
// billable run) in that use's currency, which is then the organization's billing currency
// for good. A wallet's balance changes only by appending a row to its ledger
// (wallet_transactions: credit, debit, refund, adjustment; signed amount; balance_after;
// reason; actor; reference), in the same statement that updates the balance, while the
// wallet row is locked; the database refuses to update or delete ledger rows. So the balance
// always equals the sum of the ledger, which store.CheckWalletsBalance verifies. Each row has
// a unique reference naming its source ("stripe:cs_…" for a top-up, "usage:<charge id>", "admin:<id>"):
// posting the same reference again returns the first row and changes nothing, so a webhook
// delivered twice or a charge retried after a crash is applied once. Whoever locks several
// wallets in one transaction (metering) locks them in organization id order; Credit, Debit,
// Refund and Adjust lock just the one, so writers never deadlock and no update is lost.
// Balances may go negative: usage is always debited, and the balance rules (grace,
// suspension) act on what is left.
//
// # What is billable
//
// A billable run is an interval during which a resource (an app, or a dedicated cluster)
// ran at a quantity (an app's replicas). SetRunning records a change: it ends the resource's
// open run and opens a new one when the quantity is above zero; the same state again changes
// nothing. Times are counted in whole seconds (truncated). A change is never recorded inside
// a period already metered: its time moves up to the end of that period, so a charged hour
// is never rewritten.
//
// # Prices: one rule
//
// The unit price (minor units per unit-hour) of every second a resource runs is the price in
// force at the start of that second's period (the hour it falls in), looked up in this order:
//
//  1. the resource's price override in force then (price_overrides; the latest whose
//     effective_from is at or before the period start; an override with no price ends the
//     previous one);
//  2. else the price then of the plan the run is on (plan_prices, the plan's price history;
//     changing plans.price_per_hour records a new price from the moment of the change);
//  3. else, for a resource without a plan (a dedicated cluster priced by contract), the unit
//     price its run was opened with.
//
// So a price change made during an hour applies from the next hour, for overrides and plan
// prices alike; the unit price SetRunning records on a planned run is what the customer saw
// when it started, and is not used to charge it. A plan-less resource's contract price is
// best changed with an override too (from the next period); a new run at another unit price
// applies from its start.
//
// # Metering and the partial-hour rule
//
// Periods are whole UTC hours [h, h+1h). The charge of a resource for a period is
//
//	round_half_up( Σ over its runs in the period: quantity × seconds run × unit price / 3600 )
//
// computed in integers and rounded once per (resource, period): per-second proration. A
// customer pays for exactly the time a replica ran — starting an app at 10:59 costs one
// minute, not an hour — and since a whole hour at quantity q costs exactly q × price, an app
// that runs all month pays exactly its advertised hourly price × hours. Rounding once per
// (resource, hour) to the nearest minor unit keeps the error under half a minor unit per
// line, both ways, instead of always rounding up against the customer.
//
// A Meter charges every complete period once it ended Options.Delay ago, and catches up any
// unmetered period up to Options.CatchUp back, so a control plane that was down misses
// nothing. It first closes the period (store.ClosePeriod: an advisory lock makes it wait for
// run changes in flight, and later changes are moved to the period's end), then lists what
// ran and charges it in batches of about Options.BatchSize resources, an organization never
// split across batches, Options.Workers batches at once. The usage ledger (usage_charges)
// has one row per (resource, period), unique. Each batch is one transaction: lock the
// batch's wallets in organization order, then one INSERT … SELECT computes the charges of
// the resources not charged yet, writes them, writes one ledger debit per organization
// (reference "usage:<id of its first charge>") and updates the wallets. Charges are only
// written under their organization's wallet lock, so "not charged yet" cannot race, and the
// unique key backs it. Runs that repeat, overlap on several control planes, or crash half
// way therefore charge each (resource, period) exactly once: a crash loses at most the
// batches in flight, which the next run (the job's retry, or the next hour's catch-up)
// charges. A period is marked metered when all its batches committed.
//
// The hourly river job (MeterArgs, unique per hour) runs a Meter; PeriodicJob schedules it.
package billing
