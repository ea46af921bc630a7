// The app's deployments: the one under way live, the history, and the releases with a
// rollback to any earlier one.
import { useInfiniteQuery, useQuery } from "@connectrpc/connect-query";
import { History, RotateCcw } from "lucide-react";
import { Confirm } from "../../../components/dialog";
import { toast } from "../../../components/toast";
import { Badge, Button, Card, CardHeader, EmptyState, ErrorState, ListRow, SkeletonRows } from "../../../components/ui";
import { AppService, type Deployment, type Release } from "../../../gen/skypanel/app/v1/app_pb";
import { apps, canOperate, isActive } from "../../../lib/apps";
import { useNow } from "../../../lib/clusters";
import { formatDateTime, formatRelative } from "../../../lib/format";
import { useOrg } from "../../../lib/org";
import { refreshApp } from "./actions";
import { AutoRollbackBadge, DeploymentProgress, DeploymentStateBadge, deploymentTitle, elapsed } from "./app-ui";
import type { TabProps } from "./AppDetail";

function DeploymentRow({ d, now }: { d: Deployment; now: number }) {
  return (
    <li className="px-4 py-3 sm:px-5" data-deployment={d.id}>
      <div className="flex flex-wrap items-center gap-2 text-sm">
        <span className="font-medium">{deploymentTitle(d)}</span>
        <DeploymentStateBadge state={d.state} />
        {d.automaticRollback && <AutoRollbackBadge />}
      </div>
      <div className="mt-0.5 flex flex-wrap gap-x-2 text-[13px] text-muted">
        <span title={formatDateTime(d.createdAt)}>{formatRelative(d.createdAt, now)}</span>
        {elapsed(d, now) && (
          <>
            <span aria-hidden>·</span>
            <span>
              {isActive(d) ? "running for" : "took"} {elapsed(d, now)}
            </span>
          </>
        )}
        <span aria-hidden>·</span>
        <span>
          {d.replicas} {d.replicas === 1 ? "replica" : "replicas"}
        </span>
        {d.createdByEmail && (
          <>
            <span aria-hidden>·</span>
            <span>by {d.createdByEmail}</span>
          </>
        )}
      </div>
      {d.message && <p className="mt-1 text-[13px] break-words text-muted">{d.message}</p>}
    </li>
  );
}

function ReleaseRow({ r, current, may, appName }: { r: Release; current: boolean; may: boolean; appName: string }) {
  const org = useOrg();
  return (
    <ListRow
      data-release={String(r.version)}
      lead={<span className="grid size-8 place-items-center rounded-full bg-subtle text-xs font-semibold text-muted">v{r.version}</span>}
      title={
        <>
          <span>Release {r.version}</span>
          {current && <Badge tone="success">Current</Badge>}
          {r.description && <Badge>{r.description}</Badge>}
        </>
      }
      details={
        <span className="flex flex-col gap-0.5">
          <code className="font-mono text-xs break-all">
            {r.image}
            {r.imageDigest && <span className="text-muted/80"> @{r.imageDigest.replace(/^sha256:/, "").slice(0, 12)}</span>}
          </code>
          <span title={formatDateTime(r.createdAt)}>
            {formatRelative(r.createdAt)}
            {r.createdByEmail && ` by ${r.createdByEmail}`}
          </span>
        </span>
      }
      controls={
        may &&
        !current && (
          <Confirm
            trigger={
              <Button size="sm" icon={<RotateCcw className="size-3.5" aria-hidden />} aria-label={`Roll back to release ${r.version}`}>
                Roll back
              </Button>
            }
            title={`Roll back ${appName} to release ${r.version}?`}
            description={`Release ${r.version} runs again exactly as it was: its image and its configuration, including environment variables. Changes made since stay in the newer releases.`}
            confirmLabel={`Roll back to v${r.version}`}
            onConfirm={async () => {
              try {
                await apps.rollback({ organizationId: org.id, appId: r.appId, releaseId: r.id });
                await refreshApp();
                toast.success(`Rolling back to release ${r.version}`);
              } catch (err) {
                toast.error("Couldn't roll back", err);
                throw err;
              }
            }}
          />
        )
      }
    />
  );
}

export default function DeploymentsTab({ app }: TabProps) {
  const org = useOrg();
  const now = useNow();
  const may = canOperate(org.role);
  const deps = useInfiniteQuery(
    AppService.method.listDeployments,
    { organizationId: org.id, appId: app.id, pageSize: 20, pageToken: "" },
    { pageParamKey: "pageToken", getNextPageParam: (last) => last.nextPageToken || undefined, refetchInterval: 5000 },
  );
  const rels = useQuery(AppService.method.listReleases, { organizationId: org.id, appId: app.id }, { refetchInterval: 10_000 });
  const list = deps.data?.pages.flatMap((p) => p.deployments) ?? [];
  const running = list.find(isActive) ?? (isActive(app.lastDeployment) ? app.lastDeployment : undefined);
  const releases = [...(rels.data?.releases ?? [])].sort((a, b) => b.version - a.version);

  return (
    <div className="space-y-6">
      {running && (
        <Card>
          <CardHeader title="In progress" />
          <DeploymentProgress organizationId={org.id} deploymentId={running.id} initial={running} />
        </Card>
      )}
      <Card>
        <CardHeader title="History" description="Every change to what runs: deploys, scaling, restarts, rollbacks." />
        {deps.isPending ? (
          <SkeletonRows label="Loading deployments" />
        ) : deps.isError && !deps.data ? (
          <ErrorState error={deps.error} onRetry={() => void deps.refetch()} />
        ) : list.length === 0 ? (
          <EmptyState icon={<History className="size-5" aria-hidden />} title="No deployments yet" />
        ) : (
          <>
            <ul className="divide-y divide-line" aria-label="Deployments">
              {list.map((d) => (
                <DeploymentRow key={d.id} d={d} now={now} />
              ))}
            </ul>
            {deps.hasNextPage && (
              <div className="border-t border-line p-3 text-center">
                <Button size="sm" variant="ghost" loading={deps.isFetchingNextPage} onClick={() => void deps.fetchNextPage()}>
                  Show older deployments
                </Button>
              </div>
            )}
          </>
        )}
      </Card>
      <Card>
        <CardHeader title="Releases" description="Snapshots of image and configuration. Rolling back runs one again as it was." />
        {rels.isPending ? (
          <SkeletonRows rows={2} label="Loading releases" />
        ) : rels.isError && !rels.data ? (
          <ErrorState error={rels.error} onRetry={() => void rels.refetch()} />
        ) : releases.length === 0 ? (
          <p className="px-4 py-5 text-sm text-muted sm:px-5">No releases yet.</p>
        ) : (
          <ul className="divide-y divide-line" aria-label="Releases">
            {releases.map((r) => (
              <ReleaseRow key={r.id} r={r} current={r.version === app.currentRelease} may={may} appName={app.name} />
            ))}
          </ul>
        )}
      </Card>
    </div>
  );
}
