// Routes. Every page is its own chunk (React.lazy); the shell around signed-in pages and the
// session logic load first.
import { lazy, Suspense, useEffect, useRef, type ReactNode } from "react";
import { Redirect, Route, Switch, useLocation, useSearch } from "wouter";
import { Spinner } from "./components/ui";
import { Shell } from "./components/shell";
import { toast } from "./components/toast";
import { useSession } from "./lib/api";
import { safeNext, withNext } from "./lib/nav";

const Login = lazy(() => import("./pages/auth/Login"));
const SignUp = lazy(() => import("./pages/auth/SignUp"));
const ForgotPassword = lazy(() => import("./pages/auth/ForgotPassword"));
const ResetPassword = lazy(() => import("./pages/auth/ResetPassword"));
const AcceptInvitation = lazy(() => import("./pages/auth/AcceptInvitation"));
const Home = lazy(() => import("./pages/Home"));
const NewOrganization = lazy(() => import("./pages/NewOrganization"));
const OrgRoutes = lazy(() => import("./pages/org/OrgRoutes"));
const Profile = lazy(() => import("./pages/Profile"));
const AdminRoutes = lazy(() => import("./pages/admin/AdminRoutes"));
const NotFound = lazy(() => import("./pages/NotFound"));

function PageFallback() {
  return <Spinner />;
}

/** PublicOnly sends a signed-in visitor of log-in or sign-up on to where they were going. */
function PublicOnly({ children }: { children: ReactNode }) {
  const s = useSession();
  const next = new URLSearchParams(useSearch()).get("next");
  if (s.status === "loading") return <Spinner label="Loading SkyPanel" />;
  if (s.status === "signedIn") return <Redirect to={safeNext(next)} replace />;
  return <>{children}</>;
}

/** RequireAuth sends a signed-out visitor to log in, and back here afterwards. */
function RequireAuth({ children }: { children: ReactNode }) {
  const s = useSession();
  const [location] = useLocation();
  const search = useSearch();
  const told = useRef(false);
  const expired = s.status === "signedOut" && s.reason === "expired";
  useEffect(() => {
    if (expired && !told.current) {
      told.current = true;
      toast.info("Your session ended", "Log in again to continue.");
    }
  }, [expired]);
  if (s.status === "loading") return <Spinner label="Loading SkyPanel" />;
  if (s.status === "signedOut") {
    const here = location + (search ? `?${search}` : "");
    const next = s.reason === "loggedOut" || here === "/" ? null : here;
    return <Redirect to={withNext("/login", next)} replace />;
  }
  return <>{children}</>;
}

export function App() {
  return (
    <Suspense fallback={<PageFallback />}>
      <Switch>
        <Route path="/login">
          <PublicOnly>
            <Login />
          </PublicOnly>
        </Route>
        <Route path="/signup">
          <PublicOnly>
            <SignUp />
          </PublicOnly>
        </Route>
        <Route path="/forgot-password">
          <PublicOnly>
            <ForgotPassword />
          </PublicOnly>
        </Route>
        <Route path="/reset-password" component={ResetPassword} />
        <Route path="/invitations/accept" component={AcceptInvitation} />
        <Route>
          <RequireAuth>
            <Shell>
              <Suspense fallback={<PageFallback />}>
                <Switch>
                  <Route path="/" component={Home} />
                  <Route path="/new" component={NewOrganization} />
                  <Route path="/o/:slug/*?" component={OrgRoutes} />
                  <Route path="/profile" component={Profile} />
                  <Route path="/admin/*?" component={AdminRoutes} />
                  <Route component={NotFound} />
                </Switch>
              </Suspense>
            </Shell>
          </RequireAuth>
        </Route>
      </Switch>
    </Suspense>
  );
}
