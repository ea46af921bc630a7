package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Mailpit is a real SMTP server with an HTTP API to read what it caught.
type Mailpit struct {
	SMTPAddr string
	APIURL   string
}

// Mail is one caught message.
type Mail struct {
	ID      string
	Subject string
	To      string
	Text    string
}

// StartMailpit runs mailpit (SKYPANEL_MAILPIT_BIN, installed by `make test`) on free loopback
// ports until the test ends.
func StartMailpit(t testing.TB) *Mailpit {
	t.Helper()
	bin := os.Getenv("SKYPANEL_MAILPIT_BIN")
	if bin == "" {
		bin, _ = exec.LookPath("mailpit")
	}
	_, statErr := os.Stat(bin)
	Require(t, bin != "" && statErr == nil, "mailpit (SKYPANEL_MAILPIT_BIN)")
	smtpAddr, httpAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "--smtp", smtpAddr, "--listen", httpAddr,
		"--database", filepath.Join(t.TempDir(), "mailpit.db"),
		"--smtp-auth-accept-any", "--smtp-auth-allow-insecure", "--disable-version-check")
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	m := &Mailpit{SMTPAddr: smtpAddr, APIURL: "http://" + httpAddr}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(m.APIURL + "/api/v1/messages")
		if err == nil {
			resp.Body.Close()
			if c, err := net.Dial("tcp", smtpAddr); err == nil {
				c.Close()
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit did not start: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitFor waits until a message to the address whose subject contains subject arrives.
func (m *Mailpit) WaitFor(t testing.TB, to, subject string) Mail {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if mail, ok := m.find(t, to, subject); ok {
			return mail
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no mail to %s with subject containing %q within 30s", to, subject)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Count returns how many messages were sent to the address.
func (m *Mailpit) Count(t testing.TB, to string) int {
	t.Helper()
	return len(m.search(t, to))
}

type summary struct {
	ID      string
	Subject string
	To      []struct{ Address string }
}

func (m *Mailpit) search(t testing.TB, to string) []summary {
	t.Helper()
	resp, err := http.Get(m.APIURL + "/api/v1/search?query=" + url.QueryEscape("to:"+to))
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct{ Messages []summary }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return body.Messages
}

func (m *Mailpit) find(t testing.TB, to, subject string) (Mail, bool) {
	t.Helper()
	for _, s := range m.search(t, to) {
		if !strings.Contains(s.Subject, subject) {
			continue
		}
		resp, err := http.Get(m.APIURL + "/api/v1/message/" + s.ID)
		require.NoError(t, err)
		var full struct {
			Subject string
			Text    string
		}
		err = json.NewDecoder(resp.Body).Decode(&full)
		resp.Body.Close()
		require.NoError(t, err)
		return Mail{ID: s.ID, Subject: full.Subject, To: to, Text: full.Text}, true
	}
	return Mail{}, false
}

// Link returns the first URL in the text that starts with prefix.
func Link(t testing.TB, text, prefix string) string {
	t.Helper()
	for _, f := range strings.Fields(text) {
		if strings.HasPrefix(f, prefix) {
			return strings.TrimRight(f, ".,)>")
		}
	}
	t.Fatalf("no link starting with %s in:\n%s", prefix, text)
	return ""
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return fmt.Sprint(ln.Addr())
}
