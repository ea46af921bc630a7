// /o/<slug>/apps: the organization's apps with their status, replicas, URL, plan and last
// deployment, refreshed every 3 s.
import { useQuery } from "@connectrpc/connect-query";
import { Boxes, ExternalLink, Plus } from "lucide-react";
import { Link } from "wouter";
import { BalanceNotice } from "../../../components/billing";
import { Card, EmptyState, ErrorState, PageHeader, SkeletonRows, cx } from "../../../components/ui";
import { AppService, type App } from "../../../gen/skypanel/app/v1/app_pb";
import { PlanService, type Plan } from "../../../gen/skypanel/plan/v1/plan_pb";
import { appHost, appHref, canOperate } from "../../../lib/apps";
import { formatRelative } from "../../../lib/format";
import { orgPath, useOrg } from "../../../lib/org";
import { AppStatusBadge, DeploymentStateBadge, deploymentTitle } from "./app-ui";

export function CreateAppLink({ className }: { className?: string }) {
  const org = useOrg();
  return (
    <Link
      href={orgPath(org.slug, "apps/new")}
      className={cx(
        "inline-flex h-9 items-center gap-2 rounded-md border border-transparent bg-accent px-3.5 text-sm font-medium whitespace-nowrap text-accent-fg shadow-sm hover:bg-accent-hover",
        className,
      )}
    >
      <Plus className="size-4" aria-hidden /> Create app
    </Link>
  );
}

function AppRow({ app, plan }: { app: App; plan: Plan | undefined }) {
  const org = useOrg();
  const desired = app.spec?.replicas ?? 0;
  const d = app.lastDeployment;
  return (
    <li className="flex flex-col gap-2 px-4 py-3 sm:flex-row sm:items-center sm:gap-4 sm:px-5" data-app={app.name}>
      <div className="min-w-0 flex-1">
        <div className="flex flex-wrap items-center gap-2">
          <Link href={orgPath(org.slug, `apps/${app.id}`)} className="text-sm font-medium hover:underline">
            {app.name}
          </Link>
          <AppStatusBadge status={app.status} />
        </div>
        <div className="mt-0.5 flex flex-wrap items-center gap-x-2 gap-y-0.5 text-[13px] text-muted">
          {app.url ? (
            <a href={appHref(app.url)} target="_blank" rel="noreferrer" className="inline-flex min-w-0 items-center gap-1 break-all text-accent hover:underline">
              {appHost(app.url)}
              <ExternalLink className="size-3 shrink-0" aria-hidden />
            </a>
          ) : (
            <span>No URL</span>
          )}
          <span aria-hidden>·</span>
          <span className="font-mono text-xs break-all">{app.spec?.image}</span>
        </div>
      </div>
      <dl className="grid shrink-0 grid-cols-3 gap-x-4 text-[13px] sm:flex sm:items-center sm:gap-5">
        <div>
          <dt className="text-xs text-muted">Replicas</dt>
          <dd className="font-medium tabular-nums" data-replicas={`${app.runningReplicas}/${desired}`}>
            {app.runningReplicas} / {desired}
          </dd>
        </div>
        <div className="min-w-0">
          <dt className="text-xs text-muted">Plan</dt>
          <dd className="truncate font-medium">{plan?.name ?? "—"}</dd>
        </div>
        <div className="min-w-0">
          <dt className="text-xs text-muted">Last deployment</dt>
          <dd className="flex flex-wrap items-center gap-1" title={d ? deploymentTitle(d) : undefined}>
            {d ? (
              <>
                <DeploymentStateBadge state={d.state} />
                <span className="text-xs text-muted">{formatRelative(d.createdAt)}</span>
              </>
            ) : (
              "—"
            )}
          </dd>
        </div>
      </dl>
    </li>
  );
}

export default function Apps() {
  const org = useOrg();
  const q = useQuery(AppService.method.listApps, { organizationId: org.id }, { refetchInterval: 3000 });
  const pl = useQuery(PlanService.method.listPlans, { includeRetired: false });
  const list = [...(q.data?.apps ?? [])].sort((a, b) => a.name.localeCompare(b.name));
  const planOf = (id: string) => pl.data?.plans.find((p) => p.id === id);
  const may = canOperate(org.role);
  return (
    <>
      <PageHeader title="Apps" description={`The applications ${org.name} runs.`} actions={may && list.length > 0 && <CreateAppLink />} />
      <BalanceNotice />
      <Card>
        {q.isPending ? (
          <SkeletonRows label="Loading apps" />
        ) : q.isError && !q.data ? (
          <ErrorState error={q.error} onRetry={() => void q.refetch()} />
        ) : list.length === 0 ? (
          <EmptyState icon={<Boxes className="size-5" aria-hidden />} title="No apps yet" action={may && <CreateAppLink />}>
            {may ? "Deploy a container image: pick a plan, set its environment, and it gets a URL." : "Members of this organization deploy apps here."}
          </EmptyState>
        ) : (
          <ul className="divide-y divide-line" aria-label="Apps">
            {list.map((a) => (
              <AppRow key={a.id} app={a} plan={planOf(a.planId)} />
            ))}
          </ul>
        )}
      </Card>
    </>
  );
}
