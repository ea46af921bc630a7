// /o/<slug>/apps/<id>[/<tab>]: one app, refreshed every 3 s, with its sections as tabs:
// overview, deployments, environment, domains, logs, metrics and settings.
import { Code, ConnectError } from "@connectrpc/connect";
import { useQuery } from "@connectrpc/connect-query";
import { ArrowLeft, Boxes, ExternalLink } from "lucide-react";
import { lazy, Suspense } from "react";
import { Link } from "wouter";
import { Card, EmptyState, ErrorState, Skeleton, Spinner, Tabs, useTitle } from "../../../components/ui";
import { AppService, type App } from "../../../gen/skypanel/app/v1/app_pb";
import { appHost, appHref } from "../../../lib/apps";
import { orgPath, useOrg } from "../../../lib/org";
import { AppStatusBadge } from "./app-ui";

const OverviewTab = lazy(() => import("./OverviewTab"));
const DeploymentsTab = lazy(() => import("./DeploymentsTab"));
const EnvironmentTab = lazy(() => import("./EnvironmentTab"));
const DomainsTab = lazy(() => import("./DomainsTab"));
const LogsTab = lazy(() => import("./LogsTab"));
const MetricsTab = lazy(() => import("./MetricsTab"));
const SettingsTab = lazy(() => import("./SettingsTab"));

const tabs = [
  { key: "", label: "Overview", C: OverviewTab },
  { key: "deployments", label: "Deployments", C: DeploymentsTab },
  { key: "environment", label: "Environment", C: EnvironmentTab },
  { key: "domains", label: "Domains", C: DomainsTab },
  { key: "logs", label: "Logs", C: LogsTab },
  { key: "metrics", label: "Metrics", C: MetricsTab },
  { key: "settings", label: "Settings", C: SettingsTab },
] as const;

export interface TabProps {
  app: App;
}

export default function AppDetail({ params }: { params: { appId: string; tab?: string } }) {
  const org = useOrg();
  const q = useQuery(AppService.method.getApp, { organizationId: org.id, appId: params.appId }, { refetchInterval: 3000 });
  const app = q.data?.app;
  const tab = tabs.find((t) => t.key === (params.tab ?? "")) ?? tabs[0];
  useTitle(app ? `${app.name} · ${tab.label}` : "App");
  const base = orgPath(org.slug, `apps/${params.appId}`);

  const back = (
    <Link href={orgPath(org.slug, "apps")} className="mb-3 inline-flex items-center gap-1 text-[13px] text-muted hover:text-fg">
      <ArrowLeft className="size-3.5" aria-hidden /> Apps
    </Link>
  );
  if (q.isPending) {
    return (
      <>
        {back}
        <Skeleton className="mb-6 h-7 w-48" />
        <Spinner label="Loading the app" />
      </>
    );
  }
  if (!app) {
    const gone = q.error instanceof ConnectError && (q.error.code === Code.NotFound || q.error.code === Code.InvalidArgument);
    return (
      <>
        {back}
        <Card>
          {gone ? (
            <EmptyState icon={<Boxes className="size-5" aria-hidden />} title="App not found">
              It may have been deleted.
            </EmptyState>
          ) : (
            <ErrorState error={q.error} onRetry={() => void q.refetch()} />
          )}
        </Card>
      </>
    );
  }

  const C = tab.C;
  return (
    <>
      {back}
      <div className="mb-4 flex flex-wrap items-center gap-x-3 gap-y-1.5">
        <h1 className="text-xl font-semibold tracking-tight break-all">{app.name}</h1>
        <AppStatusBadge status={app.status} />
        {app.url && (
          <a href={appHref(app.url)} target="_blank" rel="noreferrer" className="inline-flex min-w-0 items-center gap-1 text-sm break-all text-accent hover:underline" data-app-url>
            {appHost(app.url)}
            <ExternalLink className="size-3.5 shrink-0" aria-hidden />
          </a>
        )}
      </div>
      <Tabs label="App sections" items={tabs.map((t) => ({ key: t.key || "overview", label: t.label, href: t.key ? `${base}/${t.key}` : base, current: t === tab }))} />
      <div role="tabpanel" aria-label={tab.label}>
        <Suspense fallback={<Spinner />}>
          <C app={app} />
        </Suspense>
      </div>
    </>
  );
}
