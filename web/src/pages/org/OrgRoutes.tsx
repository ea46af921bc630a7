// /o/<slug>/...: finds the organization by its slug among the caller's and shows its pages.
import { Building2 } from "lucide-react";
import { lazy, Suspense, useEffect } from "react";
import { Link, Route, Switch } from "wouter";
import { EmptyState, ErrorState, Spinner } from "../../components/ui";
import { OrgContext, rememberOrg, useOrganizations } from "../../lib/org";

const Overview = lazy(() => import("./Overview"));
const Members = lazy(() => import("./Members"));
const Tokens = lazy(() => import("./Tokens"));
const Activity = lazy(() => import("./Activity"));
const Settings = lazy(() => import("./Settings"));
const Apps = lazy(() => import("./apps/Apps"));
const NewApp = lazy(() => import("./apps/NewApp"));
const AppDetail = lazy(() => import("./apps/AppDetail"));
const Billing = lazy(() => import("./billing/Billing"));
const NotFound = lazy(() => import("../NotFound"));

export default function OrgRoutes({ params }: { params: { slug: string } }) {
  const slug = decodeURIComponent(params.slug);
  const q = useOrganizations();
  const org = q.data?.organizations.find((o) => o.slug === slug);
  useEffect(() => {
    if (org) rememberOrg(org.slug);
  }, [org]);

  if (q.isPending) return <Spinner />;
  if (q.isError) return <ErrorState error={q.error} onRetry={() => void q.refetch()} />;
  if (!org) {
    return (
      <EmptyState
        icon={<Building2 className="size-5" aria-hidden />}
        title="Organization not found"
        action={
          <Link href="/" className="text-sm font-medium text-accent hover:underline">
            Go to your organizations
          </Link>
        }
      >
        You're not a member of “{slug}”. It may have been deleted, or you may have left it.
      </EmptyState>
    );
  }
  return (
    <OrgContext.Provider value={org}>
      <Suspense fallback={<Spinner />}>
        <Switch>
          <Route path="/o/:slug" component={Overview} />
          <Route path="/o/:slug/members" component={Members} />
          <Route path="/o/:slug/tokens" component={Tokens} />
          <Route path="/o/:slug/activity" component={Activity} />
          <Route path="/o/:slug/settings" component={Settings} />
          <Route path="/o/:slug/billing" component={Billing} />
          <Route path="/o/:slug/apps" component={Apps} />
          <Route path="/o/:slug/apps/new" component={NewApp} />
          <Route path="/o/:slug/apps/:appId/:tab?" component={AppDetail} />
          <Route component={NotFound} />
        </Switch>
      </Suspense>
    </OrgContext.Provider>
  );
}
