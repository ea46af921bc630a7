package api_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/auth"
	"skypanel/controlplane/internal/config"
	"skypanel/controlplane/internal/testenv"
	authv1 "skypanel/shared/gen/go/skypanel/auth/v1"
	"skypanel/shared/gen/go/skypanel/auth/v1/authv1connect"
)

// authBundle is what the auth tests work with: a running control plane and a way to call its
// AuthService as anyone.
type authBundle struct {
	env *testenv.Env
	ctx context.Context
}

func setupAuth(t *testing.T, opts ...testenv.Option) *authBundle {
	t.Helper()
	t.Parallel()
	return &authBundle{env: testenv.Start(t, append([]testenv.Option{testenv.WithMail()}, opts...)...), ctx: context.Background()}
}

// as returns an AuthService client sending token as the bearer ("" for none).
func (b *authBundle) as(token string) authv1connect.AuthServiceClient {
	return testenv.Client(b.env, authv1connect.NewAuthServiceClient, token)
}

func (b *authBundle) signUp(t *testing.T, email, password string) *authv1.SignUpResponse {
	t.Helper()
	resp, err := b.as("").SignUp(b.ctx, connect.NewRequest(&authv1.SignUpRequest{Email: email, Password: password}))
	require.NoError(t, err)
	return resp.Msg
}

func (b *authBundle) logIn(t *testing.T, email, password string) *authv1.Tokens {
	t.Helper()
	resp, err := b.as("").LogIn(b.ctx, connect.NewRequest(&authv1.LogInRequest{Email: email, Password: password}))
	require.NoError(t, err)
	return resp.Msg.GetTokens()
}

func (b *authBundle) logInErr(email, password string) error {
	_, err := b.as("").LogIn(b.ctx, connect.NewRequest(&authv1.LogInRequest{Email: email, Password: password}))
	return err
}

func (b *authBundle) whoAmI(token string) (*authv1.User, error) {
	resp, err := b.as(token).WhoAmI(b.ctx, connect.NewRequest(&authv1.WhoAmIRequest{}))
	if err != nil {
		return nil, err
	}
	return resp.Msg.GetUser(), nil
}

func (b *authBundle) refresh(refreshToken string) (*authv1.Tokens, error) {
	resp, err := b.as("").Refresh(b.ctx, connect.NewRequest(&authv1.RefreshRequest{RefreshToken: refreshToken}))
	if err != nil {
		return nil, err
	}
	return resp.Msg.GetTokens(), nil
}

// requireSignedIn asserts that token works; requireSignedOut that it is refused.
func (b *authBundle) requireSignedIn(t *testing.T, token, email string) {
	t.Helper()
	u, err := b.whoAmI(token)
	require.NoError(t, err)
	require.Equal(t, email, u.GetEmail())
}

func (b *authBundle) requireSignedOut(t *testing.T, token string) {
	t.Helper()
	_, err := b.whoAmI(token)
	requireCode(t, err, connect.CodeUnauthenticated, "")
}

func requireCode(t *testing.T, err error, code connect.Code, msgContains string) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, connect.CodeOf(err), "error: %v", err)
	require.Contains(t, err.Error(), msgContains)
}

// activityRow is one activity_events row as the tests read it.
type activityRow struct {
	ActorKind   int16
	ActorUserID *uuid.UUID
	ActorEmail  string
	EntityType  string
	EntityID    string
	IP          string
	UserAgent   string
	Metadata    map[string]string
}

// activity returns the rows of one event type, oldest first.
func (b *authBundle) activity(t *testing.T, eventType string) []activityRow {
	t.Helper()
	rows, err := b.env.Store.Pool().Query(b.ctx, `
		SELECT actor_kind, actor_user_id, actor_email, entity_type, entity_id, ip, user_agent, metadata
		FROM activity_events WHERE event_type = $1 ORDER BY id`, eventType)
	require.NoError(t, err)
	defer rows.Close()
	var out []activityRow
	for rows.Next() {
		var r activityRow
		require.NoError(t, rows.Scan(&r.ActorKind, &r.ActorUserID, &r.ActorEmail, &r.EntityType, &r.EntityID, &r.IP, &r.UserAgent, &r.Metadata))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

// requireUserActivity asserts exactly one eventType row, about and by the user.
func (b *authBundle) requireUserActivity(t *testing.T, eventType, userID, email string) activityRow {
	t.Helper()
	rows := b.activity(t, eventType)
	require.Len(t, rows, 1, eventType)
	r := rows[0]
	require.Equal(t, int16(1), r.ActorKind, "%s: actor is a user", eventType)
	require.NotNil(t, r.ActorUserID, eventType)
	require.Equal(t, userID, r.ActorUserID.String(), eventType)
	require.Equal(t, email, r.ActorEmail, eventType)
	require.Equal(t, "user", r.EntityType, eventType)
	require.Equal(t, userID, r.EntityID, eventType)
	require.Equal(t, "127.0.0.1", r.IP, eventType)
	return r
}

// queuedMails counts the mail jobs addressed to someone, sent or not.
func (b *authBundle) queuedMails(t *testing.T, to string) int {
	t.Helper()
	var n int
	require.NoError(t, b.env.Store.Pool().QueryRow(b.ctx,
		`SELECT count(*) FROM river_job WHERE kind = 'mail.send' AND args->'message'->>'to' = $1`, to).Scan(&n))
	return n
}

func (b *authBundle) requestReset(t *testing.T, email string) {
	t.Helper()
	_, err := b.as("").RequestPasswordReset(b.ctx, connect.NewRequest(&authv1.RequestPasswordResetRequest{Email: email}))
	require.NoError(t, err)
}

func (b *authBundle) resetPassword(token, password string) error {
	_, err := b.as("").ResetPassword(b.ctx, connect.NewRequest(&authv1.ResetPasswordRequest{Token: token, NewPassword: password}))
	return err
}

func TestAuthSignUpSignsTheUserIn(t *testing.T) {
	b := setupAuth(t)
	before := time.Now()
	resp, err := b.as("").SignUp(b.ctx, connect.NewRequest(&authv1.SignUpRequest{
		Email: "Ann@Example.COM", Password: "correct horse", DisplayName: "Ann",
	}))
	require.NoError(t, err)
	u, tok := resp.Msg.GetUser(), resp.Msg.GetTokens()
	require.Equal(t, "ann@example.com", u.GetEmail(), "emails are stored lower-cased")
	require.Equal(t, "Ann", u.GetDisplayName())
	require.False(t, u.GetDisabled())
	require.False(t, u.GetPlatformAdmin())
	require.True(t, strings.HasPrefix(tok.GetAccessToken(), "spat_"))
	require.True(t, strings.HasPrefix(tok.GetRefreshToken(), "sprt_"))
	cfg := b.env.Config
	require.WithinDuration(t, before.Add(cfg.AccessTokenTTL), tok.GetAccessTokenExpiresAt().AsTime(), time.Minute)
	require.WithinDuration(t, before.Add(cfg.SessionTTL), tok.GetRefreshTokenExpiresAt().AsTime(), time.Minute)

	me, err := b.whoAmI(tok.GetAccessToken())
	require.NoError(t, err)
	require.Equal(t, u.GetId(), me.GetId())
	require.Equal(t, "ann@example.com", me.GetEmail())

	r := b.requireUserActivity(t, "auth.user.signed_up", u.GetId(), "ann@example.com")
	require.NotEmpty(t, r.Metadata["session_id"])
}

func TestAuthSignUpRefusesAnEmailThatHasAnAccount(t *testing.T) {
	b := setupAuth(t)
	b.signUp(t, "ann@example.com", "correct horse")
	_, err := b.as("").SignUp(b.ctx, connect.NewRequest(&authv1.SignUpRequest{Email: "ANN@example.com", Password: "another password"}))
	requireCode(t, err, connect.CodeAlreadyExists, "email: an account with this email exists")
	require.Len(t, b.activity(t, "auth.user.signed_up"), 1, "the refused sign-up left no record")
}

func TestAuthSignUpRejectsBadInputNamingTheField(t *testing.T) {
	b := setupAuth(t)
	for _, tc := range []struct {
		name, email, password, field string
	}{
		{"an email without an at sign is refused", "ann.example.com", "correct horse", "email"},
		{"an empty email is refused", "", "correct horse", "email"},
		{"a password under 10 characters is refused", "ann@example.com", "short", "password"},
		{"a password over 256 characters is refused", "ann@example.com", strings.Repeat("x", 257), "password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.as("").SignUp(b.ctx, connect.NewRequest(&authv1.SignUpRequest{Email: tc.email, Password: tc.password}))
			requireCode(t, err, connect.CodeInvalidArgument, tc.field)
		})
	}
	var users int
	require.NoError(t, b.env.Store.Pool().QueryRow(b.ctx, `SELECT count(*) FROM users`).Scan(&users))
	require.Zero(t, users, "no bad sign-up created a user")
}

func TestAuthLogInChecksTheEmailAndPassword(t *testing.T) {
	b := setupAuth(t)
	u := b.signUp(t, "ann@example.com", "correct horse").GetUser()

	requireCode(t, b.logInErr("ann@example.com", "wrong horse!"), connect.CodeUnauthenticated, "email or password is wrong")
	requireCode(t, b.logInErr("nobody@example.com", "correct horse"), connect.CodeUnauthenticated, "email or password is wrong")

	before := time.Now()
	resp, err := b.as("").LogIn(b.ctx, connect.NewRequest(&authv1.LogInRequest{Email: "ANN@example.com", Password: "correct horse"}))
	require.NoError(t, err, "log-in ignores the email's case")
	require.Equal(t, u.GetId(), resp.Msg.GetUser().GetId())
	require.WithinDuration(t, before.Add(b.env.Config.AccessTokenTTL), resp.Msg.GetTokens().GetAccessTokenExpiresAt().AsTime(), time.Minute)
	b.requireSignedIn(t, resp.Msg.GetTokens().GetAccessToken(), "ann@example.com")

	r := b.requireUserActivity(t, "auth.user.logged_in", u.GetId(), "ann@example.com")
	require.Contains(t, r.UserAgent, "connect-go", "the log-in record names the client")
	require.NotEmpty(t, r.Metadata["session_id"])
}

func TestAuthLogInThrottlesFailuresPerAccountAndPerAddress(t *testing.T) {
	b := setupAuth(t, testenv.WithConfig(func(c *config.Config) {
		c.LoginFailuresPerAccount = 3
		c.LoginFailuresPerAddress = 10
	}))
	b.signUp(t, "ann@example.com", "correct horse")
	b.signUp(t, "bob@example.com", "correct horse")

	for range 3 {
		requireCode(t, b.logInErr("ann@example.com", "wrong horse!"), connect.CodeUnauthenticated, "email or password is wrong")
	}
	err := b.logInErr("ann@example.com", "correct horse")
	requireCode(t, err, connect.CodeResourceExhausted, "too many failed log-ins; try again in ")
	require.Regexp(t, `try again in \d+ s$`, err.Error())

	// Another account from the same address is not held back by Ann's failures...
	b.logIn(t, "bob@example.com", "correct horse")
	// ...until the address has used up its own budget, spread over many accounts.
	for i := range 7 {
		requireCode(t, b.logInErr(fmt.Sprintf("guess%d@example.com", i), "wrong horse!"), connect.CodeUnauthenticated, "")
	}
	requireCode(t, b.logInErr("bob@example.com", "correct horse"), connect.CodeResourceExhausted, "too many failed log-ins")
}

func TestAuthRefreshRotatesTheTokensAndReuseEndsTheSession(t *testing.T) {
	b := setupAuth(t)
	signedUp := b.signUp(t, "ann@example.com", "correct horse")
	u := signedUp.GetUser()
	first := b.logIn(t, "ann@example.com", "correct horse")

	second, err := b.refresh(first.GetRefreshToken())
	require.NoError(t, err)
	require.NotEqual(t, first.GetAccessToken(), second.GetAccessToken())
	require.NotEqual(t, first.GetRefreshToken(), second.GetRefreshToken())
	require.Equal(t, first.GetRefreshTokenExpiresAt().AsTime(), second.GetRefreshTokenExpiresAt().AsTime(),
		"refreshing does not extend the session")
	b.requireSignedIn(t, second.GetAccessToken(), "ann@example.com")

	third, err := b.refresh(second.GetRefreshToken())
	require.NoError(t, err)
	b.requireSignedIn(t, third.GetAccessToken(), "ann@example.com")

	// The first refresh token shows up again: someone else has a copy.
	_, err = b.refresh(first.GetRefreshToken())
	requireCode(t, err, connect.CodeUnauthenticated, "refresh token was already used; the session has been ended for safety")
	b.requireSignedOut(t, third.GetAccessToken())
	_, err = b.refresh(third.GetRefreshToken())
	requireCode(t, err, connect.CodeUnauthenticated, "")

	rows := b.activity(t, "auth.session.refresh_token_reused")
	require.Len(t, rows, 1)
	require.Equal(t, "session", rows[0].EntityType)
	require.Equal(t, u.GetId(), rows[0].Metadata["user_id"])

	// The sign-up started another session, which lives on.
	b.requireSignedIn(t, signedUp.GetTokens().GetAccessToken(), "ann@example.com")
}

func TestAuthRefreshRefusesWhatIsNotALiveRefreshToken(t *testing.T) {
	b := setupAuth(t)
	tokens := b.signUp(t, "ann@example.com", "correct horse").GetTokens()
	unknown, _ := auth.NewToken(auth.KindRefresh)
	for name, token := range map[string]string{
		"a malformed token":                 "sprt_not-a-token",
		"an access token":                   tokens.GetAccessToken(),
		"a well-formed token never issued":  unknown,
		"a refresh token with a wrong kind": "spat_" + strings.TrimPrefix(tokens.GetRefreshToken(), "sprt_"),
	} {
		_, err := b.refresh(token)
		requireCode(t, err, connect.CodeUnauthenticated, "")
		require.NotContains(t, err.Error(), "already used", name)
	}
	_, err := b.refresh(tokens.GetRefreshToken())
	require.NoError(t, err, "the real refresh token still works")

	// An expired one is refused without ending the session.
	expiring := b.logIn(t, "ann@example.com", "correct horse")
	_, err = b.env.Store.Pool().Exec(b.ctx, `UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1`,
		auth.HashToken(expiring.GetRefreshToken()))
	require.NoError(t, err)
	_, err = b.refresh(expiring.GetRefreshToken())
	requireCode(t, err, connect.CodeUnauthenticated, "refresh token is invalid or expired")
	b.requireSignedIn(t, expiring.GetAccessToken(), "ann@example.com")
}

func TestAuthConcurrentRefreshesWithOneTokenCannotBothSucceed(t *testing.T) {
	b := setupAuth(t)
	tokens := b.signUp(t, "ann@example.com", "correct horse").GetTokens()
	const n = 8
	var wg sync.WaitGroup
	results := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, results[i] = b.refresh(tokens.GetRefreshToken())
		}()
	}
	close(start)
	wg.Wait()
	succeeded := 0
	for _, err := range results {
		if err == nil {
			succeeded++
		} else {
			requireCode(t, err, connect.CodeUnauthenticated, "already used")
		}
	}
	require.Equal(t, 1, succeeded, "exactly one refresh wins; the others count as reuse")
}

func TestAuthLogOutEndsTheSession(t *testing.T) {
	b := setupAuth(t)
	u := b.signUp(t, "ann@example.com", "correct horse").GetUser()
	tokens := b.logIn(t, "ann@example.com", "correct horse")
	other := b.logIn(t, "ann@example.com", "correct horse")

	_, err := b.as(tokens.GetAccessToken()).LogOut(b.ctx, connect.NewRequest(&authv1.LogOutRequest{}))
	require.NoError(t, err)
	b.requireSignedOut(t, tokens.GetAccessToken())
	_, err = b.refresh(tokens.GetRefreshToken())
	requireCode(t, err, connect.CodeUnauthenticated, "")
	b.requireSignedIn(t, other.GetAccessToken(), "ann@example.com")

	b.requireUserActivity(t, "auth.user.logged_out", u.GetId(), "ann@example.com")
}

func TestAuthChangePasswordEndsEveryOtherSession(t *testing.T) {
	b := setupAuth(t)
	u := b.signUp(t, "ann@example.com", "correct horse").GetUser()
	here := b.logIn(t, "ann@example.com", "correct horse")
	elsewhere := b.logIn(t, "ann@example.com", "correct horse")
	change := func(current, next string) error {
		_, err := b.as(here.GetAccessToken()).ChangePassword(b.ctx, connect.NewRequest(&authv1.ChangePasswordRequest{
			CurrentPassword: current, NewPassword: next,
		}))
		return err
	}

	requireCode(t, change("wrong horse!", "battery staple"), connect.CodeInvalidArgument, "current_password: is wrong")
	requireCode(t, change("correct horse", "correct horse"), connect.CodeInvalidArgument, "new_password")
	requireCode(t, change("correct horse", "short"), connect.CodeInvalidArgument, "new_password")
	b.requireSignedIn(t, elsewhere.GetAccessToken(), "ann@example.com")

	require.NoError(t, change("correct horse", "battery staple"))
	b.requireSignedIn(t, here.GetAccessToken(), "ann@example.com")
	b.requireSignedOut(t, elsewhere.GetAccessToken())
	_, err := b.refresh(elsewhere.GetRefreshToken())
	requireCode(t, err, connect.CodeUnauthenticated, "")
	_, err = b.refresh(here.GetRefreshToken())
	require.NoError(t, err, "the current session goes on")

	requireCode(t, b.logInErr("ann@example.com", "correct horse"), connect.CodeUnauthenticated, "email or password is wrong")
	b.logIn(t, "ann@example.com", "battery staple")

	r := b.requireUserActivity(t, "auth.user.password_changed", u.GetId(), "ann@example.com")
	require.Equal(t, "2", r.Metadata["sessions_ended"], "the sign-up's session and the other log-in")
}

func TestAuthPasswordResetRoundTripThroughMail(t *testing.T) {
	b := setupAuth(t)
	u := b.signUp(t, "ann@example.com", "correct horse").GetUser()
	session := b.logIn(t, "ann@example.com", "correct horse")

	b.requestReset(t, "Ann@example.com")
	m := b.env.Mail.WaitFor(t, "ann@example.com", "Reset your SkyPanel password")
	link := testenv.Link(t, m.Text, b.env.Config.PublicURL+"/reset-password?token=")
	token := strings.TrimPrefix(link, b.env.Config.PublicURL+"/reset-password?token=")
	require.True(t, strings.HasPrefix(token, "sprst_"), "link: %s", link)
	b.requireUserActivity(t, "auth.user.password_reset_requested", u.GetId(), "ann@example.com")

	requireCode(t, b.resetPassword(token, "short"), connect.CodeInvalidArgument, "new_password")
	require.NoError(t, b.resetPassword(token, "battery staple"))

	requireCode(t, b.logInErr("ann@example.com", "correct horse"), connect.CodeUnauthenticated, "email or password is wrong")
	b.requireSignedOut(t, session.GetAccessToken())
	_, err := b.refresh(session.GetRefreshToken())
	requireCode(t, err, connect.CodeUnauthenticated, "")
	b.requireSignedIn(t, b.logIn(t, "ann@example.com", "battery staple").GetAccessToken(), "ann@example.com")

	requireCode(t, b.resetPassword(token, "a third password"), connect.CodeInvalidArgument, "token: is invalid or expired")
	b.logIn(t, "ann@example.com", "battery staple")

	r := b.requireUserActivity(t, "auth.user.password_reset", u.GetId(), "ann@example.com")
	require.Equal(t, "2", r.Metadata["sessions_ended"], "the sign-up's session and the log-in")
}

func TestAuthResetPasswordRefusesBadExpiredAndSupersededTokens(t *testing.T) {
	b := setupAuth(t)
	b.signUp(t, "ann@example.com", "correct horse")
	never, _ := auth.NewToken(auth.KindReset)
	for _, token := range []string{"sprst_garbage-garbage", never, strings.Repeat("x", 20)} {
		requireCode(t, b.resetPassword(token, "battery staple"), connect.CodeInvalidArgument, "token: is invalid or expired")
	}

	b.requestReset(t, "ann@example.com")
	b.requestReset(t, "ann@example.com")
	tokens := b.queuedResetTokens(t, "ann@example.com")
	require.Len(t, tokens, 2)

	// Expire the first; using the second spends every other token too.
	_, err := b.env.Store.Pool().Exec(b.ctx, `UPDATE password_resets SET expires_at = now() - interval '1 second' WHERE token_hash = $1`,
		auth.HashToken(tokens[0]))
	require.NoError(t, err)
	requireCode(t, b.resetPassword(tokens[0], "battery staple"), connect.CodeInvalidArgument, "token: is invalid or expired")
	require.NoError(t, b.resetPassword(tokens[1], "battery staple"))

	b.requestReset(t, "ann@example.com")
	all := b.queuedResetTokens(t, "ann@example.com")
	require.Len(t, all, 3)
	newest := all[2]
	require.NoError(t, b.resetPassword(newest, "a third password"))
	requireCode(t, b.resetPassword(tokens[1], "a fourth password"), connect.CodeInvalidArgument, "token")
}

// queuedResetTokens returns the tokens of the reset mails queued for an address, oldest
// first. The mail round trip has its own test; here the queued text is read directly, so the
// order is certain and nothing waits for delivery.
func (b *authBundle) queuedResetTokens(t *testing.T, to string) []string {
	t.Helper()
	rows, err := b.env.Store.Pool().Query(b.ctx,
		`SELECT args->'message'->>'text' FROM river_job WHERE kind = 'mail.send' AND args->'message'->>'to' = $1 ORDER BY id`, to)
	require.NoError(t, err)
	defer rows.Close()
	prefix := b.env.Config.PublicURL + "/reset-password?token="
	var out []string
	for rows.Next() {
		var text string
		require.NoError(t, rows.Scan(&text))
		out = append(out, strings.TrimPrefix(testenv.Link(t, text, prefix), prefix))
	}
	require.NoError(t, rows.Err())
	return out
}

func TestAuthRequestPasswordResetForAnUnknownEmailSendsNothing(t *testing.T) {
	b := setupAuth(t)
	b.signUp(t, "ann@example.com", "correct horse")
	b.requestReset(t, "nobody@example.com")
	require.Zero(t, b.queuedMails(t, "nobody@example.com"), "no mail was queued")

	// A mail queued afterwards arrives; by then one for the unknown address would have too.
	b.requestReset(t, "ann@example.com")
	b.env.Mail.WaitFor(t, "ann@example.com", "Reset your SkyPanel password")
	require.Zero(t, b.env.Mail.Count(t, "nobody@example.com"))
	require.Len(t, b.activity(t, "auth.user.password_reset_requested"), 1, "only Ann's request was recorded")
}

func TestAuthRequestPasswordResetSendsAtMostThreeMailsAnHour(t *testing.T) {
	b := setupAuth(t)
	b.signUp(t, "ann@example.com", "correct horse")
	for range 5 {
		b.requestReset(t, "ann@example.com")
	}
	require.Equal(t, 3, b.queuedMails(t, "ann@example.com"))
	var resets int
	require.NoError(t, b.env.Store.Pool().QueryRow(b.ctx, `SELECT count(*) FROM password_resets`).Scan(&resets))
	require.Equal(t, 3, resets)
	require.Len(t, b.activity(t, "auth.user.password_reset_requested"), 3)
}

func TestAuthDisabledUserCannotLogInAndItsTokensStopWorking(t *testing.T) {
	b := setupAuth(t)
	tokens := b.signUp(t, "ann@example.com", "correct horse").GetTokens()
	_, err := b.env.Store.Pool().Exec(b.ctx, `UPDATE users SET disabled_at = now() WHERE email = 'ann@example.com'`)
	require.NoError(t, err)

	b.requireSignedOut(t, tokens.GetAccessToken())
	_, err = b.refresh(tokens.GetRefreshToken())
	requireCode(t, err, connect.CodeUnauthenticated, "")
	requireCode(t, b.logInErr("ann@example.com", "correct horse"), connect.CodePermissionDenied, "this account is disabled")
	requireCode(t, b.logInErr("ann@example.com", "wrong horse!"), connect.CodeUnauthenticated, "email or password is wrong")

	b.requestReset(t, "ann@example.com")
	require.Zero(t, b.queuedMails(t, "ann@example.com"), "a disabled account gets no reset mail")
}

func TestAuthWhoAmIWithAnAPITokenReturnsItsCreator(t *testing.T) {
	b := setupAuth(t)
	u := b.signUp(t, "ann@example.com", "correct horse").GetUser()
	secret, hash := auth.NewToken(auth.KindAPI)
	_, err := b.env.Store.Pool().Exec(b.ctx, `
		WITH org AS (INSERT INTO organizations (name, slug) VALUES ('Acme', 'acme') RETURNING id),
		     m AS (INSERT INTO memberships (organization_id, user_id, role) SELECT id, $1, 4 FROM org)
		INSERT INTO api_tokens (organization_id, name, role, token_hash, prefix, created_by)
		SELECT id, 'ci', 2, $2, $3, $1 FROM org`, uuid.MustParse(u.GetId()), hash, auth.TokenPrefix(secret))
	require.NoError(t, err)

	me, err := b.whoAmI(secret)
	require.NoError(t, err)
	require.Equal(t, u.GetId(), me.GetId())
	require.Equal(t, "ann@example.com", me.GetEmail())
}
