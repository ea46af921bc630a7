package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"skypanel/controlplane/internal/mail"
	"skypanel/controlplane/internal/store"
)

// Wallet states, as the API shows them.
const (
	StateOK        = "ok"
	StateLow       = "low"
	StateGrace     = "grace"
	StateSuspended = "suspended"
)

// BalanceChannel is the Postgres channel a wallet's balance change is notified on (a trigger
// on wallets), with the organization's id as payload.
const BalanceChannel = "wallet_balance"

// Suspender scales an organization's apps to 0 and back, in the caller's transaction;
// deploy.Deployer implements it.
type Suspender interface {
	SuspendApps(ctx context.Context, q *store.Queries, orgID uuid.UUID, message string) (int, error)
	ResumeApps(ctx context.Context, q *store.Queries, orgID uuid.UUID, message string) (int, error)
}

// Mailer queues mail in the caller's transaction; mail.Enqueuer implements it.
type Mailer interface {
	Enqueue(ctx context.Context, tx pgx.Tx, msg mail.Message) error
}

// RulesOptions configure the balance rules.
type RulesOptions struct {
	Store     *store.Store
	Suspender Suspender
	// Mail sends the warnings; nil sends none (activity events are written anyway).
	Mail Mailer
	// Threshold is the platform's low-balance threshold in minor units; organizations may
	// set their own.
	Threshold int64
	// Grace is how long a balance may stay negative before the apps are suspended.
	Grace time.Duration
	// PublicURL is the dashboard's address, for links in mail.
	PublicURL string
	Logger    *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// SweepInterval is how often every organization is checked, besides the checks a balance
	// change triggers (a grace period runs out without one). Default: a quarter of Grace,
	// between 1 second and 1 minute.
	SweepInterval time.Duration
}

// Rules keeps each organization's balance state: a low-balance warning (activity event and
// mail) when the balance falls to its threshold, a grace period when it goes negative, the
// suspension of its apps when the grace period ends, and their resumption once the balance
// is positive again. Every transition happens once, under the organization's billing
// account lock, with its activity event and mail in the same transaction.
type Rules struct {
	opts RulesOptions
}

// NewRules checks opts and returns the rules.
func NewRules(opts RulesOptions) (*Rules, error) {
	if opts.Store == nil || opts.Suspender == nil {
		return nil, errors.New("new balance rules: Store and Suspender are required")
	}
	if opts.Threshold < 0 || opts.Grace < 0 {
		return nil, errors.New("new balance rules: Threshold and Grace must not be negative")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SweepInterval <= 0 {
		// A quarter of the grace period, so a short one (tests, trials) ends on time.
		opts.SweepInterval = min(time.Minute, max(time.Second, opts.Grace/4))
	}
	return &Rules{opts: opts}, nil
}

// Threshold is the organization's low-balance threshold: its own, else the platform's.
func (r *Rules) Threshold(a store.BillingAccount) int64 {
	if a.LowBalanceThreshold != nil {
		return *a.LowBalanceThreshold
	}
	return r.opts.Threshold
}

// Status is a wallet's state as the API shows it.
type Status struct {
	State       string
	Threshold   int64
	GraceEndsAt *time.Time
}

// Status derives the state an account records (Check keeps it up to date with the balance).
func (r *Rules) Status(a store.BillingAccount) Status {
	s := Status{State: StateOK, Threshold: r.Threshold(a)}
	switch {
	case a.SuspendedAt != nil:
		s.State = StateSuspended
	case a.NegativeSince != nil:
		s.State = StateGrace
		end := a.NegativeSince.Add(r.opts.Grace)
		s.GraceEndsAt = &end
	case a.LowBalanceWarnedAt != nil:
		s.State = StateLow
	}
	return s
}

// Check brings one organization's state up to date with its balance, in one transaction.
func (r *Rules) Check(ctx context.Context, orgID uuid.UUID) error {
	err := r.opts.Store.InTx(ctx, func(q *store.Queries) error {
		a, err := q.LockBillingAccount(ctx, orgID)
		if err != nil {
			return err
		}
		next, err := r.applyBalance(ctx, q, a)
		if err != nil || next == a {
			return err
		}
		return q.UpdateBillingAccount(ctx, next)
	})
	if err != nil {
		return fmt.Errorf("check balance of organization %s: %w", orgID, err)
	}
	return nil
}

// applyBalance makes the transitions the organization's balance as it is now calls for on its
// locked account a, and returns the account after them (a itself when nothing was ever paid
// or charged).
func (r *Rules) applyBalance(ctx context.Context, q *store.Queries, a store.BillingAccount) (store.BillingAccount, error) {
	w, err := q.Wallet(ctx, a.OrganizationID)
	if errors.Is(err, store.ErrNotFound) {
		return a, nil
	}
	if err != nil {
		return a, err
	}
	spent, err := q.WalletHasTransactions(ctx, a.OrganizationID)
	if err != nil {
		return a, err
	}
	return r.apply(ctx, q, a, w, spent)
}

// apply makes the transitions the balance calls for and returns the account after them.
func (r *Rules) apply(ctx context.Context, q *store.Queries, a store.BillingAccount, w store.Wallet, spent bool) (store.BillingAccount, error) {
	now := r.opts.Now().UTC().Truncate(time.Second)
	threshold := r.Threshold(a)
	org, err := q.OrganizationByID(ctx, a.OrganizationID)
	if errors.Is(err, store.ErrNotFound) {
		return a, nil // deleted: its ledger stays, nothing runs
	}
	if err != nil {
		return a, err
	}
	money := strconv.FormatInt(w.Balance, 10)
	switch low := spent && w.Balance <= threshold; {
	case low && a.LowBalanceWarnedAt == nil:
		a.LowBalanceWarnedAt = &now
		err := r.tell(ctx, q, org, "wallet.low_balance", map[string]string{"balance": money, "currency": w.Currency,
			"threshold": strconv.FormatInt(threshold, 10)},
			"Low balance", fmt.Sprintf("The balance of %s is %s, at or under its warning threshold of %s.\n"+
				"Top up the wallet so that its apps keep running.", org.Name, mailMoney(w.Balance, w.Currency),
				mailMoney(threshold, w.Currency)))
		if err != nil {
			return a, err
		}
	case !low && a.LowBalanceWarnedAt != nil:
		a.LowBalanceWarnedAt = nil
	}
	switch {
	case w.Balance < 0 && a.NegativeSince == nil && a.SuspendedAt != nil:
		a.NegativeSince = &now // already suspended: nothing more to warn about
	case w.Balance < 0 && a.NegativeSince == nil:
		a.NegativeSince = &now
		ends := now.Add(r.opts.Grace)
		err := r.tell(ctx, q, org, "wallet.grace_started", map[string]string{"balance": money, "currency": w.Currency,
			"grace_ends_at": ends.Format(time.RFC3339)},
			"Balance negative: apps will be suspended", fmt.Sprintf("The balance of %s is %s. Its apps keep running "+
				"until %s; then they are suspended until the balance is positive again.\nTop up the wallet to keep them running.",
				org.Name, mailMoney(w.Balance, w.Currency), ends.Format("2006-01-02 15:04 MST")))
		if err != nil {
			return a, err
		}
	case w.Balance >= 0 && a.NegativeSince != nil:
		a.NegativeSince = nil
	}
	switch {
	case a.SuspendedAt == nil && a.NegativeSince != nil && !now.Before(a.NegativeSince.Add(r.opts.Grace)):
		e := store.ActivityEvent{ActorKind: store.ActorSystem, Metadata: map[string]string{"balance": money, "currency": w.Currency}}
		if err := r.suspension(ctx, q, org.ID, &a, true, store.SuspendedByBilling, "balance negative past the grace period", e); err != nil {
			return a, err
		}
		err := r.mail(ctx, q, org, "Apps suspended", fmt.Sprintf("The balance of %s stayed negative (%s) past its grace "+
			"period, so its apps are suspended. They start again by themselves once a top-up makes the balance positive.",
			org.Name, mailMoney(w.Balance, w.Currency)))
		if err != nil {
			return a, err
		}
	case a.SuspendedBy == store.SuspendedByBilling && w.Balance > 0:
		err := r.suspension(ctx, q, org.ID, &a, false, store.SuspendedByBilling, "the balance is positive again",
			store.ActivityEvent{ActorKind: store.ActorSystem})
		if err != nil {
			return a, err
		}
	}
	return a, nil
}

// Suspend suspends the organization's apps by an admin's decision, in the caller's
// transaction; only an admin resumes them. by is the admin's activity event (its actor);
// the organization's admins are told by mail. It returns the account after.
func (r *Rules) Suspend(ctx context.Context, q *store.Queries, orgID uuid.UUID, reason string, by store.ActivityEvent) (store.BillingAccount, error) {
	a, err := q.LockBillingAccount(ctx, orgID)
	if err != nil {
		return a, err
	}
	if a.SuspendedBy == store.SuspendedByAdmin {
		return a, fmt.Errorf("suspend organization: %w: already suspended by an admin", store.ErrConflict)
	}
	org, err := q.OrganizationByID(ctx, orgID)
	if err != nil {
		return a, err
	}
	if err := r.suspension(ctx, q, orgID, &a, true, store.SuspendedByAdmin, reason, by); err != nil {
		return a, err
	}
	if err := q.UpdateBillingAccount(ctx, a); err != nil {
		return a, err
	}
	return a, r.mail(ctx, q, org, "Apps suspended", fmt.Sprintf("A platform administrator suspended the apps of %s: %s.\n"+
		"They stay stopped until an administrator resumes them.", org.Name, reason))
}

// Resume ends a suspension by an admin's decision, in the caller's transaction, then applies
// the balance rules: a balance still negative gets a new grace period from now, with its
// warning, as when a balance first goes negative.
func (r *Rules) Resume(ctx context.Context, q *store.Queries, orgID uuid.UUID, reason string, by store.ActivityEvent) (store.BillingAccount, error) {
	a, err := q.LockBillingAccount(ctx, orgID)
	if err != nil {
		return a, err
	}
	if a.SuspendedAt == nil {
		return a, fmt.Errorf("resume organization: %w: it is not suspended", store.ErrConflict)
	}
	if err := r.suspension(ctx, q, orgID, &a, false, store.SuspendedByAdmin, reason, by); err != nil {
		return a, err
	}
	// The balance rules, from the balance as it is now (a top-up may not be checked yet): a
	// negative balance gets a grace period of its own from now, and the organization is told.
	a.NegativeSince = nil
	a, err = r.applyBalance(ctx, q, a)
	if err != nil {
		return a, err
	}
	return a, q.UpdateBillingAccount(ctx, a)
}

// suspension suspends (on) or resumes every app of the organization and records it on its
// locked account a (the caller writes a back), with the activity event e: the caller sets
// its actor and any metadata, this the rest.
func (r *Rules) suspension(ctx context.Context, q *store.Queries, orgID uuid.UUID, a *store.BillingAccount, on bool, by, reason string, e store.ActivityEvent) error {
	var n int
	var err error
	if on {
		n, err = r.opts.Suspender.SuspendApps(ctx, q, orgID, "suspended: "+reason)
		if a.SuspendedAt == nil {
			now := r.opts.Now().UTC().Truncate(time.Second)
			a.SuspendedAt = &now
		}
		a.SuspendedBy, a.SuspendReason, e.EventType = by, reason, "organization.suspended"
	} else {
		n, err = r.opts.Suspender.ResumeApps(ctx, q, orgID, "resumed: "+reason)
		a.SuspendedAt, a.SuspendedBy, a.SuspendReason, e.EventType = nil, "", "", "organization.resumed"
	}
	if err != nil {
		return err
	}
	e.OrganizationID, e.EntityType, e.EntityID = &orgID, "organization", orgID.String()
	if e.Metadata == nil {
		e.Metadata = map[string]string{}
	}
	e.Metadata["by"], e.Metadata["reason"], e.Metadata["apps"] = by, reason, strconv.Itoa(n)
	_, err = q.InsertActivity(ctx, e)
	return err
}

// tell writes an activity event and mails the organization's admins and owners.
func (r *Rules) tell(ctx context.Context, q *store.Queries, org store.Organization, eventType string, meta map[string]string, subject, text string) error {
	if _, err := q.InsertActivity(ctx, store.ActivityEvent{ActorKind: store.ActorSystem, OrganizationID: &org.ID,
		EventType: eventType, EntityType: "organization", EntityID: org.ID.String(), Metadata: meta}); err != nil {
		return err
	}
	return r.mail(ctx, q, org, subject, text)
}

// mail tells the organization's admins and owners, in the caller's transaction.
func (r *Rules) mail(ctx context.Context, q *store.Queries, org store.Organization, subject, text string) error {
	if r.opts.Mail == nil {
		return nil
	}
	admins, err := q.OrganizationAdmins(ctx, org.ID)
	if err != nil {
		return err
	}
	link := fmt.Sprintf("%s/o/%s/billing", r.opts.PublicURL, org.Slug)
	for _, m := range admins {
		msg := mail.Message{To: m.Email, Subject: "SkyPanel: " + subject + " for " + org.Name,
			Text: fmt.Sprintf("Hello,\n\n%s\n\nBilling: %s\n\n— SkyPanel\n", text, link)}
		if err := r.opts.Mail.Enqueue(ctx, q.Tx(), msg); err != nil {
			return err
		}
	}
	return nil
}

// Sweep checks every organization whose state may be due to change; it returns how many.
func (r *Rules) Sweep(ctx context.Context) (int, error) {
	ids, err := r.opts.Store.AccountsToCheck(ctx, r.opts.Threshold, r.opts.Now().Add(-r.opts.Grace))
	if err != nil {
		return 0, fmt.Errorf("sweep balances: %w", err)
	}
	var errs []error
	for _, id := range ids {
		errs = append(errs, r.Check(ctx, id))
	}
	return len(ids), errors.Join(errs...)
}

// Run applies the rules until ctx is done: at once for every balance change (notified by
// the database), and in a sweep every SweepInterval. Several control planes may run it: the
// account lock makes each transition happen once.
func (r *Rules) Run(ctx context.Context) {
	due := &dueSet{wake: make(chan struct{}, 1), ids: map[uuid.UUID]bool{}}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		store.KeepListening(ctx, r.opts.Logger, "balance listener", func(ctx context.Context) (bool, error) {
			return r.listen(ctx, due)
		})
	})
	tick := time.NewTicker(r.opts.SweepInterval)
	defer tick.Stop()
	sweep := func() {
		if _, err := r.Sweep(ctx); err != nil && ctx.Err() == nil {
			r.opts.Logger.Error("balance sweep failed", "err", err)
		}
	}
	sweep()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			sweep()
		case <-due.wake:
			for _, id := range due.take() {
				if err := r.Check(ctx, id); err != nil && ctx.Err() == nil {
					r.opts.Logger.Error("balance check failed", "organization_id", id, "err", err)
				}
			}
		}
	}
}

// listen holds one connection that LISTENs for balance changes and marks their
// organizations due, until the connection fails or ctx is done.
func (r *Rules) listen(ctx context.Context, due *dueSet) (bool, error) {
	conn, closeConn, err := r.opts.Store.Listen(ctx, BalanceChannel)
	if err != nil {
		return false, err
	}
	defer closeConn()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, fmt.Errorf("wait for notification: %w", err)
		}
		id, err := uuid.Parse(n.Payload)
		if err != nil {
			r.opts.Logger.Warn("ignoring a malformed balance notification", "payload", n.Payload)
			continue
		}
		due.add(id)
	}
}

// dueSet collects the organizations to check; a burst of changes (a metering batch debits
// a thousand wallets) is checked once per organization.
type dueSet struct {
	mu   sync.Mutex
	ids  map[uuid.UUID]bool
	wake chan struct{}
}

func (d *dueSet) add(id uuid.UUID) {
	d.mu.Lock()
	d.ids[id] = true
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dueSet) take() []uuid.UUID {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]uuid.UUID, 0, len(d.ids))
	for id := range d.ids {
		out = append(out, id)
	}
	clear(d.ids)
	return out
}

// mailMoney writes an amount for mail: "-12.50 USD".
func mailMoney(minor int64, currency string) string {
	return FormatAmountGrouped(minor, currency) + " " + currency
}
