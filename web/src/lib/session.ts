// The browser's session: the access token lives in memory only, the refresh token in
// localStorage so a reload or a new tab can restore the session (see SECURITY.md).
// Refreshes are deduplicated in the tab and serialized across tabs with the Web Locks API,
// because refresh tokens work once and presenting a used one revokes the whole session.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { AuthService, type Tokens, type User } from "../gen/skypanel/auth/v1/auth_pb";

export const refreshKey = "skypanel.refresh";

export type SessionState =
  | { status: "loading" }
  | { status: "signedOut"; reason?: "expired" | "loggedOut" }
  | { status: "signedIn"; user: User };

// Procedures that take no credentials. They never get a bearer token (a stale one would
// only confuse them) and their unauthenticated errors are answers, not expired sessions.
const publicMethods = new Set([
  "SignUp",
  "LogIn",
  "Refresh",
  "RequestPasswordReset",
  "ResetPassword",
  "GetInvitation",
  "DeclineInvitation",
]);

// Refresh a little before the access token expires rather than waiting for a refusal.
const expirySlackMs = 20_000;

export class Session {
  private accessToken = "";
  private accessExpiresAt = 0;
  private refreshing: Promise<void> | null = null;
  private state: SessionState = { status: "loading" };
  private listeners = new Set<() => void>();
  private readonly auth;
  readonly transport: Transport;

  constructor(baseUrl: string) {
    // A transport without the auth interceptor for Refresh itself.
    const bare = createConnectTransport({ baseUrl });
    this.auth = createClient(AuthService, bare);
    this.transport = createConnectTransport({ baseUrl, interceptors: [this.interceptor] });
    window.addEventListener("storage", (e) => {
      // Another tab logged out: follow it.
      if (e.key === refreshKey && e.newValue === null && this.state.status === "signedIn") {
        this.clear("loggedOut");
      }
    });
  }

  subscribe = (fn: () => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  getState = () => this.state;

  private set(state: SessionState) {
    this.state = state;
    for (const fn of this.listeners) fn();
  }

  /** signedIn records the tokens and user from SignUp or LogIn. */
  signedIn(user: User, tokens: Tokens) {
    this.storeTokens(tokens);
    this.set({ status: "signedIn", user });
  }

  /** setUser replaces the signed-in user (after WhoAmI). */
  setUser(user: User) {
    if (this.state.status === "signedIn") this.set({ status: "signedIn", user });
  }

  private storeTokens(t: Tokens) {
    this.accessToken = t.accessToken;
    this.accessExpiresAt = t.accessTokenExpiresAt ? timestampDate(t.accessTokenExpiresAt).getTime() : 0;
    localStorage.setItem(refreshKey, t.refreshToken);
  }

  private clear(reason: "expired" | "loggedOut") {
    this.accessToken = "";
    this.accessExpiresAt = 0;
    localStorage.removeItem(refreshKey);
    this.set({ status: "signedOut", reason });
  }

  /** restore resumes the session kept in localStorage, if any; called once at start. */
  async restore() {
    if (!localStorage.getItem(refreshKey)) {
      this.set({ status: "signedOut" });
      return;
    }
    try {
      await this.refresh();
      const { user } = await createClient(AuthService, this.transport).whoAmI({});
      if (!user) throw new ConnectError("no user", Code.Unauthenticated);
      this.set({ status: "signedIn", user });
    } catch (err) {
      if (this.state.status !== "signedOut") {
        // A network failure keeps the refresh token for the next load; anything else ends it.
        if (err instanceof ConnectError && err.code === Code.Unavailable) this.set({ status: "signedOut" });
        else this.clear("expired");
      }
    }
  }

  /**
   * refresh trades the stored refresh token for a new pair. Concurrent callers in this tab
   * share one call; other tabs wait for the lock and then use the token this one stored.
   */
  refresh(): Promise<void> {
    if (!this.refreshing) {
      this.refreshing = this.withLock(() => this.doRefresh()).finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  private async withLock(fn: () => Promise<void>): Promise<void> {
    const locks = (navigator as Navigator & { locks?: LockManager }).locks;
    if (!locks) return fn();
    await locks.request(refreshKey, fn);
  }

  private async doRefresh() {
    // Read inside the lock: another tab may have rotated the token meanwhile.
    const refreshToken = localStorage.getItem(refreshKey);
    if (!refreshToken) {
      this.clear("expired");
      throw new ConnectError("session ended", Code.Unauthenticated);
    }
    try {
      const { tokens } = await this.auth.refresh({ refreshToken });
      if (!tokens) throw new ConnectError("no tokens in refresh response", Code.Internal);
      this.storeTokens(tokens);
    } catch (err) {
      const code = err instanceof ConnectError ? err.code : Code.Unknown;
      if (code === Code.Unauthenticated || code === Code.InvalidArgument || code === Code.NotFound || code === Code.PermissionDenied) {
        this.clear("expired");
      }
      throw err;
    }
  }

  /** logOut ends the session on the server (best effort) and forgets it here. */
  async logOut() {
    try {
      await createClient(AuthService, this.transport).logOut({});
    } catch {
      // The tokens are dropped either way.
    }
    this.clear("loggedOut");
  }

  /**
   * ensureFresh refreshes first when the access token is missing or about to expire, so a
   * call (or a live stream) does not start with a token the server will refuse.
   */
  async ensureFresh() {
    if (!localStorage.getItem(refreshKey)) return;
    if (!this.accessToken || Date.now() > this.accessExpiresAt - expirySlackMs) await this.refresh();
  }

  /** bearer is the current Authorization header value, or "" when signed out. */
  bearer(): string {
    return this.accessToken ? `Bearer ${this.accessToken}` : "";
  }

  private interceptor: Interceptor = (next) => async (req) => {
    if (publicMethods.has(req.method.name)) return next(req);
    await this.ensureFresh().catch(() => undefined);
    const bearer = this.bearer();
    if (bearer) req.header.set("Authorization", bearer);
    try {
      return await next(req);
    } catch (err) {
      // Once: an access token refused mid-life (revoked, server restarted with shorter TTL)
      // gets one refresh and one retry. A second refusal is the answer.
      if (err instanceof ConnectError && err.code === Code.Unauthenticated && !req.stream && localStorage.getItem(refreshKey)) {
        await this.refresh();
        req.header.set("Authorization", this.bearer());
        return await next(req);
      }
      throw err;
    }
  };
}
