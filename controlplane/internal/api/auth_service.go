package api

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	"skypanel/controlplane/internal/auth"
	"skypanel/controlplane/internal/mail"
	"skypanel/controlplane/internal/request"
	"skypanel/controlplane/internal/store"
	authv1 "skypanel/shared/gen/go/skypanel/auth/v1"
	"skypanel/shared/gen/go/skypanel/auth/v1/authv1connect"
)

const (
	// passwordResetTTL is how long a password reset link works.
	passwordResetTTL = time.Hour
	// passwordResetsPerHour caps the reset mails one account gets, so the form cannot be used
	// to flood someone's inbox. Requests beyond it succeed without sending anything.
	passwordResetsPerHour = 3
)

// The errors are made per call: a *connect.Error carries response metadata, so it is not
// shared between requests.

func errWrongCredentials() error {
	return connect.NewError(connect.CodeUnauthenticated, errors.New("email or password is wrong"))
}

func errRefreshInvalid() error {
	return connect.NewError(connect.CodeUnauthenticated, errors.New("refresh token is invalid or expired: log in again"))
}

func errResetTokenInvalid() error { return auth.FieldError("token", "is invalid or expired") }

func errRefreshReused() error {
	return connect.NewError(connect.CodeUnauthenticated, errors.New("refresh token was already used; the session has been ended for safety"))
}

// AuthService implements authv1connect.AuthServiceHandler: sign-up, log-in, sessions and
// passwords. Sessions are families of tokens: a short-lived access token for every call and a
// single-use refresh token for the next pair; ending the session ends them all.
type AuthService struct {
	authv1connect.UnimplementedAuthServiceHandler
	opts Options

	// decoyHash is hashed against on log-ins for unknown emails, so they take as long as
	// log-ins with a wrong password and do not tell which emails have accounts.
	decoyOnce sync.Once
	decoyHash string
}

// SignUp creates a user and signs it in.
func (s *AuthService) SignUp(ctx context.Context, req *connect.Request[authv1.SignUpRequest]) (*connect.Response[authv1.SignUpResponse], error) {
	hash, err := auth.HashPassword(req.Msg.GetPassword(), s.opts.PasswordParams)
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("sign up: %w", err))
	}
	var user store.User
	var tokens *authv1.Tokens
	err = s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		var err error
		user, err = q.CreateUser(ctx, req.Msg.GetEmail(), req.Msg.GetDisplayName(), hash, false)
		if errors.Is(err, store.ErrConflict) {
			return connect.NewError(connect.CodeAlreadyExists, errors.New("email: an account with this email exists"))
		} else if err != nil {
			return err
		}
		var sessionID uuid.UUID
		tokens, sessionID, err = s.startSession(ctx, q, user.ID)
		if err != nil {
			return err
		}
		_, err = q.InsertActivity(ctx, selfEvent(ctx, user, "auth.user.signed_up", map[string]string{"session_id": sessionID.String()}))
		return err
	})
	if err != nil {
		return nil, storeErr("sign up", err)
	}
	return connect.NewResponse(&authv1.SignUpResponse{User: authUser(user), Tokens: tokens}), nil
}

// LogIn checks an email and password and starts a session. Failures are throttled per account
// and per client address; every failure says the same, so it does not tell which emails have
// accounts.
func (s *AuthService) LogIn(ctx context.Context, req *connect.Request[authv1.LogInRequest]) (*connect.Response[authv1.LogInResponse], error) {
	email, addr := store.NormalizeEmail(req.Msg.GetEmail()), request.From(ctx).IP
	if wait, ok := s.opts.Limiter.Allow(email, addr); !ok {
		return nil, tooManyFailures(wait)
	}
	user, err := s.opts.Store.UserByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		_ = auth.VerifyPassword(req.Msg.GetPassword(), s.decoy())
		s.opts.Limiter.Failed(email, addr)
		return nil, errWrongCredentials()
	} else if err != nil {
		return nil, storeErr("log in", err)
	}
	if err := auth.VerifyPassword(req.Msg.GetPassword(), user.PasswordHash); errors.Is(err, auth.ErrPasswordMismatch) {
		s.opts.Limiter.Failed(email, addr)
		return nil, errWrongCredentials()
	} else if err != nil {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("log in: user %s: %w", user.ID, err))
	}
	// Only now, with the password right, may the caller learn that the account is disabled.
	if user.DisabledAt != nil {
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("this account is disabled"))
	}
	s.opts.Limiter.Succeeded(email)
	var tokens *authv1.Tokens
	err = s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		var sessionID uuid.UUID
		var err error
		tokens, sessionID, err = s.startSession(ctx, q, user.ID)
		if err != nil {
			return err
		}
		_, err = q.InsertActivity(ctx, selfEvent(ctx, user, "auth.user.logged_in", map[string]string{"session_id": sessionID.String()}))
		return err
	})
	if err != nil {
		return nil, storeErr("log in", err)
	}
	return connect.NewResponse(&authv1.LogInResponse{User: authUser(user), Tokens: tokens}), nil
}

// Refresh trades a refresh token for a new pair. A refresh token works once: a second use
// means it leaked (or the client is confused), so the whole session ends, and whoever holds
// the newest pair has to log in again.
func (s *AuthService) Refresh(ctx context.Context, req *connect.Request[authv1.RefreshRequest]) (*connect.Response[authv1.RefreshResponse], error) {
	hash, err := auth.ParseToken(auth.KindRefresh, req.Msg.GetRefreshToken())
	if err != nil {
		return nil, errRefreshInvalid()
	}
	var tokens *authv1.Tokens
	var reused bool
	err = s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		// The row lock serialises trades of the same token: of two concurrent ones, the
		// second waits here and then finds the token used.
		t, err := q.LockRefreshToken(ctx, hash)
		if err != nil {
			return err
		}
		if t.Used {
			// Commit the revocation and its record; the caller gets the error afterwards.
			reused = true
			ended, err := q.RevokeSession(ctx, t.SessionID, store.RevokeRefreshTokenReused)
			if err != nil || !ended {
				return err
			}
			_, err = q.InsertActivity(ctx, event(ctx, uuid.Nil, "auth.session.refresh_token_reused", "session",
				t.SessionID.String(), map[string]string{"user_id": t.UserID.String(), "email": t.Email}))
			return err
		}
		if !t.Live {
			return store.ErrNotFound
		}
		if err := q.MarkRefreshTokenUsed(ctx, hash); err != nil {
			return err
		}
		tokens, err = s.issueTokens(ctx, q, t.SessionID, t.SessionExpiresAt)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errRefreshInvalid()
	case err != nil:
		return nil, storeErr("refresh", err)
	case reused:
		return nil, errRefreshReused()
	}
	return connect.NewResponse(&authv1.RefreshResponse{Tokens: tokens}), nil
}

// LogOut ends the caller's session.
func (s *AuthService) LogOut(ctx context.Context, req *connect.Request[authv1.LogOutRequest]) (*connect.Response[authv1.LogOutResponse], error) {
	p := mustPrincipal(ctx)
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		if _, err := q.RevokeSession(ctx, p.SessionID, store.RevokeLoggedOut); err != nil {
			return err
		}
		_, err := q.InsertActivity(ctx, event(ctx, uuid.Nil, "auth.user.logged_out", "user", p.UserID.String(),
			map[string]string{"session_id": p.SessionID.String()}))
		return err
	})
	if err != nil {
		return nil, storeErr("log out", err)
	}
	return connect.NewResponse(&authv1.LogOutResponse{}), nil
}

// WhoAmI returns the signed-in user; for an API token, the person who created it.
func (s *AuthService) WhoAmI(ctx context.Context, req *connect.Request[authv1.WhoAmIRequest]) (*connect.Response[authv1.WhoAmIResponse], error) {
	user, err := s.opts.Store.UserByID(ctx, mustPrincipal(ctx).UserID)
	if err != nil {
		return nil, storeErr("user", err)
	}
	return connect.NewResponse(&authv1.WhoAmIResponse{User: authUser(user)}), nil
}

// ChangePassword sets a new password and ends every other session of the user: whoever else
// was signed in, perhaps with the old password, is signed out. Wrong current passwords count
// as failed log-ins, so a stolen access token cannot be used to guess the password.
func (s *AuthService) ChangePassword(ctx context.Context, req *connect.Request[authv1.ChangePasswordRequest]) (*connect.Response[authv1.ChangePasswordResponse], error) {
	p := mustPrincipal(ctx)
	current, next := req.Msg.GetCurrentPassword(), req.Msg.GetNewPassword()
	if next == current {
		return nil, auth.FieldError("new_password", "must differ from the current password")
	}
	addr := request.From(ctx).IP
	if wait, ok := s.opts.Limiter.Allow(p.Email, addr); !ok {
		return nil, tooManyFailures(wait)
	}
	user, err := s.opts.Store.UserByID(ctx, p.UserID)
	if err != nil {
		return nil, storeErr("user", err)
	}
	if err := auth.VerifyPassword(current, user.PasswordHash); errors.Is(err, auth.ErrPasswordMismatch) {
		s.opts.Limiter.Failed(p.Email, addr)
		return nil, auth.FieldError("current_password", "is wrong")
	} else if err != nil {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("change password: user %s: %w", user.ID, err))
	}
	hash, err := auth.HashPassword(next, s.opts.PasswordParams)
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("change password: %w", err))
	}
	err = s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		if err := q.ReplacePasswordHash(ctx, user.ID, user.PasswordHash, hash); errors.Is(err, store.ErrNotFound) {
			return failedPrecondition("change password: the password was changed meanwhile; try again")
		} else if err != nil {
			return err
		}
		ended, err := q.RevokeUserSessions(ctx, user.ID, p.SessionID, store.RevokePasswordChanged)
		if err != nil {
			return err
		}
		_, err = q.InsertActivity(ctx, event(ctx, uuid.Nil, "auth.user.password_changed", "user", user.ID.String(),
			map[string]string{"sessions_ended": fmt.Sprint(ended)}))
		return err
	})
	if err != nil {
		return nil, storeErr("change password", err)
	}
	return connect.NewResponse(&authv1.ChangePasswordResponse{}), nil
}

// RequestPasswordReset mails a reset link when the email belongs to an enabled user. It
// answers OK in every case, so it cannot be used to find accounts.
func (s *AuthService) RequestPasswordReset(ctx context.Context, req *connect.Request[authv1.RequestPasswordResetRequest]) (*connect.Response[authv1.RequestPasswordResetResponse], error) {
	ok := connect.NewResponse(&authv1.RequestPasswordResetResponse{})
	user, err := s.opts.Store.UserByEmail(ctx, req.Msg.GetEmail())
	if errors.Is(err, store.ErrNotFound) {
		return ok, nil
	} else if err != nil {
		return nil, storeErr("request password reset", err)
	}
	if user.DisabledAt != nil {
		return ok, nil
	}
	secret, hash := auth.NewToken(auth.KindReset)
	err = s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		created, err := q.CreatePasswordReset(ctx, user.ID, hash, time.Now().Add(passwordResetTTL), passwordResetsPerHour)
		if err != nil || !created {
			return err
		}
		if err := s.opts.Mail.Enqueue(ctx, q.Tx(), resetMail(user.Email, s.opts.PublicURL, secret)); err != nil {
			return err
		}
		_, err = q.InsertActivity(ctx, selfEvent(ctx, user, "auth.user.password_reset_requested", nil))
		return err
	})
	if err != nil {
		return nil, storeErr("request password reset", err)
	}
	return ok, nil
}

// ResetPassword sets a new password with the token from a reset mail and ends every session
// of the user. The token, and every other reset token of the user, works no more.
func (s *AuthService) ResetPassword(ctx context.Context, req *connect.Request[authv1.ResetPasswordRequest]) (*connect.Response[authv1.ResetPasswordResponse], error) {
	tokenHash, err := auth.ParseToken(auth.KindReset, req.Msg.GetToken())
	if err != nil {
		return nil, errResetTokenInvalid()
	}
	hash, err := auth.HashPassword(req.Msg.GetNewPassword(), s.opts.PasswordParams)
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("reset password: %w", err))
	}
	var user store.User
	err = s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		userID, err := q.UsePasswordReset(ctx, tokenHash)
		if err != nil {
			return err
		}
		if user, err = q.UserByID(ctx, userID); err != nil {
			return err
		}
		if user.DisabledAt != nil {
			// Rolls back: the token stays unused should the account be enabled again.
			return store.ErrNotFound
		}
		if err := q.SetPasswordHash(ctx, user.ID, hash); err != nil {
			return err
		}
		ended, err := q.RevokeUserSessions(ctx, user.ID, uuid.Nil, store.RevokePasswordReset)
		if err != nil {
			return err
		}
		_, err = q.InsertActivity(ctx, selfEvent(ctx, user, "auth.user.password_reset", map[string]string{"sessions_ended": fmt.Sprint(ended)}))
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errResetTokenInvalid()
	} else if err != nil {
		return nil, storeErr("reset password", err)
	}
	// Proving control of the mailbox lifts the account's log-in throttle.
	s.opts.Limiter.Succeeded(user.Email)
	return connect.NewResponse(&authv1.ResetPasswordResponse{}), nil
}

// startSession starts a session for a user, from the caller's address, with its first pair.
func (s *AuthService) startSession(ctx context.Context, q *store.Queries, userID uuid.UUID) (*authv1.Tokens, uuid.UUID, error) {
	info := request.From(ctx)
	session, err := q.CreateSession(ctx, userID, info.IP, info.UserAgent, dbTime(time.Now().Add(s.opts.SessionTTL)))
	if err != nil {
		return nil, uuid.Nil, err
	}
	tokens, err := s.issueTokens(ctx, q, session.ID, session.ExpiresAt)
	return tokens, session.ID, err
}

// issueTokens stores and returns a new access and refresh token for a session. Neither
// outlives the session: refreshing keeps a session going until it expires, not longer.
func (s *AuthService) issueTokens(ctx context.Context, q *store.Queries, sessionID uuid.UUID, sessionExpiresAt time.Time) (*authv1.Tokens, error) {
	access, accessHash := auth.NewToken(auth.KindAccess)
	refresh, refreshHash := auth.NewToken(auth.KindRefresh)
	accessExpiresAt := dbTime(time.Now().Add(s.opts.AccessTokenTTL))
	if accessExpiresAt.After(sessionExpiresAt) {
		accessExpiresAt = sessionExpiresAt
	}
	if err := q.InsertAccessToken(ctx, sessionID, accessHash, accessExpiresAt); err != nil {
		return nil, err
	}
	if err := q.InsertRefreshToken(ctx, sessionID, refreshHash, sessionExpiresAt); err != nil {
		return nil, err
	}
	return &authv1.Tokens{
		AccessToken: access, AccessTokenExpiresAt: ts(accessExpiresAt),
		RefreshToken: refresh, RefreshTokenExpiresAt: ts(sessionExpiresAt),
	}, nil
}

// decoy returns a hash that no password matches, made with the service's costs.
func (s *AuthService) decoy() string {
	s.decoyOnce.Do(func() {
		secret, _ := auth.NewToken(auth.KindReset)
		s.decoyHash, _ = auth.HashPassword(secret, s.opts.PasswordParams)
	})
	return s.decoyHash
}

// selfEvent is an activity row for a public RPC, where the caller is not signed in (yet): the
// actor is the user the change is about.
func selfEvent(ctx context.Context, user store.User, eventType string, meta map[string]string) store.ActivityEvent {
	e := event(ctx, uuid.Nil, eventType, "user", user.ID.String(), meta)
	id := user.ID
	e.ActorKind, e.ActorUserID, e.ActorEmail = store.ActorUser, &id, user.Email
	return e
}

// dbTime rounds t down to what Postgres keeps (microseconds), so expiry times handed out
// equal the stored ones: a refreshed pair reports the same session expiry as the first.
func dbTime(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

func tooManyFailures(wait time.Duration) error {
	secs := (wait + time.Second - 1) / time.Second
	return connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("too many failed log-ins; try again in %d s", secs))
}

func resetMail(to, publicURL, secret string) mail.Message {
	return mail.Message{
		To:      to,
		Subject: "Reset your SkyPanel password",
		Text: "Someone, hopefully you, asked to reset the password of the SkyPanel account " + to + ".\n\n" +
			"To choose a new password, open this link within the next hour:\n\n" +
			publicURL + "/reset-password?token=" + secret + "\n\n" +
			"If it was not you, ignore this mail: your password stays as it is.\n",
	}
}

// authUser is a user as the API shows it (the admin service shows users the same way).
func authUser(u store.User) *authv1.User {
	return &authv1.User{
		Id: u.ID.String(), Email: u.Email, DisplayName: u.DisplayName, PlatformAdmin: u.PlatformAdmin,
		Disabled: u.DisabledAt != nil, CreatedAt: ts(u.CreatedAt),
	}
}
