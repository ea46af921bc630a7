// Package mail sends the control plane's email (invitations, password resets) over SMTP.
// Messages are queued as durable jobs in the same transaction as the change that causes them,
// so a crash never loses a mail nor sends one for a change that rolled back.
package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// Config says how to reach the SMTP server.
type Config struct {
	// Addr is the SMTP server's host:port. Empty disables sending: mail is logged instead.
	Addr string
	// Username and Password authenticate with PLAIN auth when Username is set.
	Username string
	Password string
	// From is the sender address, e.g. "SkyPanel <noreply@example.com>".
	From string
	// TLS is "starttls" (default: upgrade when offered), "tls" (implicit TLS, port 465) or
	// "none" (plain text; for local test servers only).
	TLS string
}

// Validate checks the config.
func (c Config) Validate() error {
	switch c.TLS {
	case "", "starttls", "tls", "none":
	default:
		return fmt.Errorf("smtp-tls: %q is not one of starttls, tls, none", c.TLS)
	}
	if c.From != "" {
		if _, err := mail.ParseAddress(c.From); err != nil {
			return fmt.Errorf("smtp-from: %w", err)
		}
	}
	return nil
}

// Message is one plain-text email.
type Message struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
	Text    string `json:"text"`
}

// SendArgs is the durable job that sends one message.
type SendArgs struct {
	Message Message `json:"message"`
}

// Kind implements river.JobArgs.
func (SendArgs) Kind() string { return "mail.send" }

// InsertOpts retries for about a day before giving up.
func (SendArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 20, Queue: river.QueueDefault}
}

// Enqueuer queues messages inside a transaction.
type Enqueuer struct {
	client *river.Client[pgx.Tx]
}

// NewEnqueuer wraps the job client.
func NewEnqueuer(client *river.Client[pgx.Tx]) *Enqueuer { return &Enqueuer{client: client} }

// Enqueue queues msg in tx; it is sent once tx commits.
func (e *Enqueuer) Enqueue(ctx context.Context, tx pgx.Tx, msg Message) error {
	if tx == nil {
		return errors.New("enqueue mail: outside a transaction")
	}
	if _, err := e.client.InsertTx(ctx, tx, SendArgs{Message: msg}, nil); err != nil {
		return fmt.Errorf("enqueue mail to %s: %w", msg.To, err)
	}
	return nil
}

// Worker sends queued messages.
type Worker struct {
	river.WorkerDefaults[SendArgs]
	cfg    Config
	logger *slog.Logger
}

// NewWorker returns the worker that sends mail with cfg.
func NewWorker(cfg Config, logger *slog.Logger) *Worker {
	return &Worker{cfg: cfg, logger: logger.With("component", "mail")}
}

// Timeout bounds one delivery attempt.
func (w *Worker) Timeout(*river.Job[SendArgs]) time.Duration { return 30 * time.Second }

// Work implements river.Worker.
func (w *Worker) Work(ctx context.Context, job *river.Job[SendArgs]) error {
	msg := job.Args.Message
	if w.cfg.Addr == "" {
		w.logger.Warn("smtp not configured; mail not sent", "to", msg.To, "subject", msg.Subject)
		return nil
	}
	if err := Send(ctx, w.cfg, msg); err != nil {
		return err
	}
	w.logger.Info("mail sent", "to", msg.To, "subject", msg.Subject)
	return nil
}

// Send delivers one message now.
func Send(ctx context.Context, cfg Config, msg Message) error {
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return fmt.Errorf("send mail: from address: %w", err)
	}
	to, err := mail.ParseAddress(msg.To)
	if err != nil {
		return fmt.Errorf("send mail: to address: %w", err)
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return fmt.Errorf("send mail: smtp addr: %w", err)
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	var conn net.Conn
	if cfg.TLS == "tls" {
		conn, err = tls.DialWithDialer(dialer, "tcp", cfg.Addr, &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12})
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", cfg.Addr)
	}
	if err != nil {
		return fmt.Errorf("send mail: dial %s: %w", cfg.Addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("send mail: smtp hello: %w", err)
	}
	defer c.Close()
	if cfg.TLS == "" || cfg.TLS == "starttls" {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(&tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}); err != nil {
				return fmt.Errorf("send mail: starttls: %w", err)
			}
		}
	}
	if cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", cfg.Username, cfg.Password, host)); err != nil {
			return fmt.Errorf("send mail: auth: %w", err)
		}
	}
	if err := c.Mail(from.Address); err != nil {
		return fmt.Errorf("send mail: MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to.Address); err != nil {
		return fmt.Errorf("send mail: RCPT TO: %w", err)
	}
	wc, err := c.Data()
	if err != nil {
		return fmt.Errorf("send mail: DATA: %w", err)
	}
	if _, err := wc.Write(render(from, to, msg)); err != nil {
		return fmt.Errorf("send mail: write: %w", err)
	}
	if err := wc.Close(); err != nil {
		return fmt.Errorf("send mail: end data: %w", err)
	}
	return c.Quit()
}

func render(from, to *mail.Address, msg Message) []byte {
	var b strings.Builder
	b.WriteString("From: " + from.String() + "\r\n")
	b.WriteString("To: " + to.String() + "\r\n")
	b.WriteString("Subject: " + mime.QEncoding.Encode("utf-8", strings.Map(noControl, msg.Subject)) + "\r\n")
	b.WriteString("Date: " + time.Now().UTC().Format(time.RFC1123Z) + "\r\n")
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	b.WriteString("Content-Transfer-Encoding: 8bit\r\n\r\n")
	// Dot-stuffing is done by the DATA writer; normalise line ends here.
	b.WriteString(strings.ReplaceAll(strings.ReplaceAll(msg.Text, "\r\n", "\n"), "\n", "\r\n"))
	return []byte(b.String())
}

// noControl drops control characters, so a subject built from user input (an organization's
// name) cannot inject headers.
func noControl(r rune) rune {
	if r < 0x20 || r == 0x7f {
		return -1
	}
	return r
}
