package config

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func load(t *testing.T, args []string, env map[string]string) (*Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := Flags(fs)
	require.NoError(t, fs.Parse(args))
	if err := c.ApplyEnv(fs, func(k string) string { return env[k] }); err != nil {
		return nil, err
	}
	return c, c.ValidateServe()
}

func TestEnvironmentFillsFlagsNotGivenOnTheCommandLine(t *testing.T) {
	c, err := load(t, []string{"--listen", "127.0.0.1:9000"}, map[string]string{
		"SKYPANEL_DATABASE_URL":     "postgres://x@127.0.0.1/db",
		"SKYPANEL_MASTER_KEY_FILE":  "/etc/skypanel/master.key",
		"SKYPANEL_LISTEN":           "127.0.0.1:1111", // the flag wins
		"SKYPANEL_ACCESS_TOKEN_TTL": "5m",
	})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9000", c.Listen)
	require.Equal(t, 5*time.Minute, c.AccessTokenTTL)
	require.Equal(t, "http://127.0.0.1:9000", c.PublicURL, "the public URL defaults to the listener")
}

func TestBadSettingsAreRefusedNamingTheSetting(t *testing.T) {
	cases := map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"database url missing":  {nil, nil, "--database-url"},
		"env duration garbage":  {nil, map[string]string{"SKYPANEL_DATABASE_URL": "postgres://x", "SKYPANEL_MASTER_KEY_FILE": "k", "SKYPANEL_SESSION_TTL": "soon"}, "SKYPANEL_SESSION_TTL"},
		"listen without port":   {[]string{"--database-url", "postgres://x", "--master-key-file", "k", "--listen", "localhost"}, nil, "--listen"},
		"public url not http":   {[]string{"--database-url", "postgres://x", "--master-key-file", "k", "--public-url", "ftp://x"}, nil, "--public-url"},
		"log level unknown":     {[]string{"--database-url", "postgres://x", "--master-key-file", "k", "--log-level", "loud"}, nil, "--log-level"},
		"access token too long": {[]string{"--database-url", "postgres://x", "--master-key-file", "k", "--access-token-ttl", "48h"}, nil, "--access-token-ttl"},
		"smtp tls unknown":      {[]string{"--database-url", "postgres://x", "--master-key-file", "k", "--smtp-tls", "maybe"}, nil, "--smtp-tls"},
		"master key missing":    {[]string{"--database-url", "postgres://x"}, nil, "--master-key-file"},
		"agent url not https":   {[]string{"--database-url", "postgres://x", "--master-key-file", "k", "--agent-url", "http://x"}, nil, "--agent-url"},
		"node cert too long":    {[]string{"--database-url", "postgres://x", "--master-key-file", "k", "--node-cert-ttl", "200h"}, nil, "--node-cert-ttl"},
		"deploy poll too short": {[]string{"--database-url", "postgres://x", "--master-key-file", "k", "--deploy-poll", "1ms"}, nil, "--deploy-poll"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := load(t, tc.args, tc.env)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestHelpNeverShowsSecretsFromTheEnvironment(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var out strings.Builder
	fs.SetOutput(&out)
	c := Flags(fs)
	require.NoError(t, fs.Parse(nil))
	require.NoError(t, c.ApplyEnv(fs, func(k string) string {
		if k == "SKYPANEL_SMTP_PASSWORD" {
			return "hunter2-secret"
		}
		return ""
	}))
	require.Equal(t, "hunter2-secret", c.Mail.Password)
	fs.PrintDefaults()
	require.NotContains(t, out.String(), "hunter2-secret")
}
