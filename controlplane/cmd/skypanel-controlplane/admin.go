package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/mail"

	"skypanel/controlplane/internal/auth"
	"skypanel/controlplane/internal/store"
)

// admin runs `admin create`: the way the first platform admin comes to exist.
func admin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("admin: the only subcommand is `create`")
	}
	var email, password string
	var ifMissing bool
	cfg, _, err := parse("admin create", args[1:], stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "the admin's email (required)")
		fs.StringVar(&password, "password", "", "the admin's password, at least 10 characters (default: generate one and print it)")
		fs.BoolVar(&ifMissing, "if-missing", false, "do nothing when a user with this email exists already")
	})
	if err != nil {
		return err
	}
	if _, err := mail.ParseAddress(email); err != nil || email == "" {
		return fmt.Errorf("--email: %q is not an email address", email)
	}
	generated := password == ""
	if generated {
		password = rand.Text()
	}
	if len(password) < 10 {
		return errors.New("--password: must be at least 10 characters")
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.MigrateUp(ctx); err != nil {
		return err
	}
	hash, err := auth.HashPassword(password, auth.DefaultPasswordParams())
	if err != nil {
		return err
	}
	err = st.InTx(ctx, func(q *store.Queries) error {
		u, err := q.UserByEmail(ctx, email)
		switch {
		case errors.Is(err, store.ErrNotFound):
			u, err = q.CreateUser(ctx, email, "Admin", hash, true)
			if err != nil {
				return fmt.Errorf("create admin: %w", err)
			}
			fmt.Fprintf(stdout, "created platform admin %s\n", u.Email)
			if generated {
				fmt.Fprintf(stdout, "password: %s\n", password)
			}
		case err != nil:
			return fmt.Errorf("create admin: %w", err)
		case ifMissing:
			fmt.Fprintf(stdout, "user %s exists already; left as it is\n", u.Email)
			return nil
		default:
			if _, err := q.SetPlatformAdmin(ctx, u.ID, true); err != nil {
				return fmt.Errorf("create admin: %w", err)
			}
			fmt.Fprintf(stdout, "made existing user %s a platform admin (password unchanged)\n", u.Email)
			return nil
		}
		_, err = q.InsertActivity(ctx, store.ActivityEvent{
			ActorKind: store.ActorSystem, EventType: "admin.user.created", EntityType: "user",
			EntityID: u.ID.String(), Metadata: map[string]string{"via": "cli"},
		})
		return err
	})
	return err
}
