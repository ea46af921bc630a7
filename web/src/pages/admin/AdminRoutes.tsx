// /admin/...: only platform admins see these pages; anyone else gets "not found", as the
// API refuses them anyway.
import { lazy, Suspense } from "react";
import { Redirect, Route, Switch } from "wouter";
import { Spinner } from "../../components/ui";
import { useUser } from "../../lib/api";

const Users = lazy(() => import("./Users"));
const Organizations = lazy(() => import("./Organizations"));
const PlatformActivity = lazy(() => import("./PlatformActivity"));
const Clusters = lazy(() => import("./Clusters"));
const Cluster = lazy(() => import("./Cluster"));
const Node = lazy(() => import("./Node"));
const Plans = lazy(() => import("./plans/Plans"));
const Billing = lazy(() => import("./billing/Billing"));
const Analytics = lazy(() => import("./analytics/Analytics"));
const NotFound = lazy(() => import("../NotFound"));

export default function AdminRoutes() {
  const user = useUser();
  if (!user.platformAdmin) return <NotFound />;
  return (
    <Suspense fallback={<Spinner />}>
      <Switch>
        <Route path="/admin">
          <Redirect to="/admin/users" replace />
        </Route>
        <Route path="/admin/users" component={Users} />
        <Route path="/admin/organizations" component={Organizations} />
        <Route path="/admin/activity" component={PlatformActivity} />
        <Route path="/admin/clusters" component={Clusters} />
        <Route path="/admin/clusters/:id" component={Cluster} />
        <Route path="/admin/nodes/:id" component={Node} />
        <Route path="/admin/plans" component={Plans} />
        <Route path="/admin/billing" component={Billing} />
        <Route path="/admin/analytics" component={Analytics} />
        <Route component={NotFound} />
      </Switch>
    </Suspense>
  );
}
