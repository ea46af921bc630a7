// Package testenv gives tests the real things: a fresh Postgres database per test (cloned from
// a migrated template), a running control plane on a loopback port, and a real SMTP server
// (mailpit) whose caught mail tests read. Prerequisites come from the environment `make test`
// sets; under CI=true a missing one fails the test instead of skipping it.
package testenv

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/store"
	"skypanel/migrations"
)

// Require fails the test under CI=true, and skips it otherwise, when a prerequisite is missing.
func Require(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("missing prerequisite: %s (run the tests with `make test`)", what)
	}
	t.Skipf("missing prerequisite: %s (run the tests with `make test`)", what)
}

// DatabaseURL returns a URL of a new, migrated, empty database, dropped when the test ends.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("SKYPANEL_TEST_DATABASE_URL")
	Require(t, base != "", "SKYPANEL_TEST_DATABASE_URL (a Postgres the tests may create databases in)")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	require.NoError(t, err, "connect to the test Postgres")
	defer admin.Close(ctx)

	tpl := templateName()
	ensureTemplate(t, ctx, admin, base, tpl)

	name := "t_" + strings.ToLower(rand.Text()[:16])
	// Cloning can fail while another clone of the same template is starting; retry briefly.
	for attempt := 0; ; attempt++ {
		_, err = admin.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, name, tpl))
		if err == nil || attempt == 50 || !strings.Contains(err.Error(), "being accessed by other users") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, err, "create test database")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, name)); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	return withDatabase(t, base, name)
}

// Store opens a store on a fresh database; closed when the test ends.
func Store(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{URL: DatabaseURL(t)})
	require.NoError(t, err)
	t.Cleanup(st.Close)
	return st
}

// templateName is derived from the migrations, so a changed migration gets a new template.
func templateName() string {
	h := sha256.New()
	_ = fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(migrations.FS, path)
			h.Write([]byte(path))
			h.Write(b)
		}
		return nil
	})
	return "tpl_" + hex.EncodeToString(h.Sum(nil))[:16]
}

// ensureTemplate creates and migrates the template once; test processes of several packages
// race here, so an advisory lock serialises them.
func ensureTemplate(t testing.TB, ctx context.Context, admin *pgx.Conn, base, tpl string) {
	t.Helper()
	_, err := admin.Exec(ctx, `SELECT pg_advisory_lock(4242)`)
	require.NoError(t, err)
	defer admin.Exec(context.Background(), `SELECT pg_advisory_unlock(4242)`) //nolint:errcheck
	var exists bool
	require.NoError(t, admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)`, tpl).Scan(&exists))
	if exists {
		return
	}
	building := tpl + "_build"
	_, err = admin.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, building))
	require.NoError(t, err)
	_, err = admin.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s`, building))
	require.NoError(t, err)
	st, err := store.Open(ctx, store.Options{URL: withDatabase(t, base, building)})
	require.NoError(t, err)
	_, err = st.MigrateUp(ctx)
	st.Close()
	require.NoError(t, err, "migrate the template database")
	_, err = admin.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %s RENAME TO %s`, building, tpl))
	require.NoError(t, err)
	_, err = admin.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %s WITH is_template = true`, tpl))
	require.NoError(t, err)
}

func withDatabase(t testing.TB, base, name string) string {
	t.Helper()
	u, err := url.Parse(base)
	require.NoError(t, err, "parse SKYPANEL_TEST_DATABASE_URL")
	u.Path = "/" + name
	return u.String()
}
