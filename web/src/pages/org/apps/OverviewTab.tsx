// The app's overview: status, replicas (where they run, in what state), the deployment under
// way, and the everyday actions: scale, restart, stop or start, redeploy.
import { useQuery } from "@connectrpc/connect-query";
import { Play, RefreshCw, Rocket, Square } from "lucide-react";
import { useEffect, useState, type ReactNode } from "react";
import { Link } from "wouter";
import { Confirm } from "../../../components/dialog";
import { toast } from "../../../components/toast";
import { Banner, Button, Card, CardHeader, ErrorState, Field, Input, SkeletonRows } from "../../../components/ui";
import { AppService, AppStatus, DeploymentState } from "../../../gen/skypanel/app/v1/app_pb";
import { PlanService } from "../../../gen/skypanel/plan/v1/plan_pb";
import { apps, canOperate, formatCores, formatMiB, formatPricePerHour, isActive } from "../../../lib/apps";
import { useApiForm } from "../../../lib/forms";
import { formatRelative } from "../../../lib/format";
import { orgPath, useOrg } from "../../../lib/org";
import { refreshApp } from "./actions";
import { DeploymentProgress, DeploymentStateBadge, ReplicaList, deploymentTitle } from "./app-ui";
import type { TabProps } from "./AppDetail";

function Stat({ label, value, hint }: { label: string; value: ReactNode; hint?: ReactNode }) {
  return (
    <Card className="min-w-0 p-4">
      <div className="text-[13px] text-muted">{label}</div>
      <div className="mt-1 text-lg font-semibold break-words">{value}</div>
      {hint && <div className="mt-0.5 text-xs break-words text-muted">{hint}</div>}
    </Card>
  );
}

function Scale({ app }: TabProps) {
  const org = useOrg();
  const desired = app.spec?.replicas ?? 0;
  const [n, setN] = useState(String(desired));
  const form = useApiForm(["replicas"]);
  useEffect(() => setN(String(desired)), [desired]);
  return (
    <form
      noValidate
      className="flex flex-wrap items-end gap-2"
      onSubmit={async (e) => {
        e.preventDefault();
        const v = Number(n);
        if (!Number.isInteger(v) || v < 0 || v > 100) return form.setFieldError("replicas", "A whole number from 0 to 100.");
        const res = await form.run(() => apps.scaleApp({ organizationId: org.id, appId: app.id, replicas: v }));
        if (!res) return;
        await refreshApp();
        toast.success(`Scaling ${app.name} to ${v} ${v === 1 ? "replica" : "replicas"}`);
      }}
    >
      <Field label="Replicas" error={form.fields.replicas || form.formError || undefined} className="w-40">
        {(p) => <Input {...p} type="number" inputMode="numeric" min={0} max={100} value={n} onChange={(e) => setN(e.target.value)} />}
      </Field>
      <Button type="submit" loading={form.pending} disabled={n === String(desired)} className="mb-px">
        Scale
      </Button>
    </form>
  );
}

function Actions({ app }: TabProps) {
  const org = useOrg();
  const [busy, setBusy] = useState("");
  const ids = { organizationId: org.id, appId: app.id };
  const stopped = app.status === AppStatus.STOPPED || (app.spec?.replicas ?? 0) === 0;
  const act = async (what: string, fn: () => Promise<unknown>, done: string) => {
    setBusy(what);
    try {
      await fn();
      await refreshApp();
      toast.success(done);
    } catch (err) {
      toast.error(`Couldn't ${what} ${app.name}`, err);
      throw err;
    } finally {
      setBusy("");
    }
  };
  return (
    <Card>
      <CardHeader title="Actions" description="Each makes a deployment you can follow below and on the Deployments tab." />
      <div className="space-y-4 p-4 sm:p-5">
        <Scale app={app} />
        <div className="flex flex-wrap gap-2">
          <Confirm
            trigger={
              <Button icon={<RefreshCw className="size-4" aria-hidden />} disabled={stopped}>
                Restart
              </Button>
            }
            title={`Restart ${app.name}?`}
            description="Every replica is replaced by a fresh one of the same release, one at a time. Requests to a replica being replaced may fail."
            confirmLabel="Restart app"
            onConfirm={() => act("restart", () => apps.restartApp(ids), `Restarting ${app.name}`)}
          />
          {stopped ? (
            <Button icon={<Play className="size-4" aria-hidden />} loading={busy === "start"} onClick={() => void act("start", () => apps.startApp(ids), `Starting ${app.name}`).catch(() => {})}>
              Start
            </Button>
          ) : (
            <Confirm
              trigger={<Button icon={<Square className="size-4" aria-hidden />}>Stop</Button>}
              title={`Stop ${app.name}?`}
              description="Every replica stops and the app stops answering. Start brings back as many replicas as it had."
              confirmLabel="Stop app"
              onConfirm={() => act("stop", () => apps.stopApp(ids), `Stopping ${app.name}`)}
            />
          )}
          <Button
            icon={<Rocket className="size-4" aria-hidden />}
            loading={busy === "redeploy"}
            onClick={() => void act("redeploy", () => apps.redeploy(ids), `Redeploying ${app.name}: the image is pulled again`).catch(() => {})}
          >
            Redeploy
          </Button>
        </div>
      </div>
    </Card>
  );
}

export default function OverviewTab({ app }: TabProps) {
  const org = useOrg();
  const reps = useQuery(AppService.method.listReplicas, { organizationId: org.id, appId: app.id }, { refetchInterval: 5000 });
  const pl = useQuery(PlanService.method.listPlans, { includeRetired: false });
  const plan = pl.data?.plans.find((p) => p.id === app.planId);
  const d = app.lastDeployment;
  const desired = app.spec?.replicas ?? 0;
  return (
    <div className="space-y-6">
      <div className="grid grid-cols-2 gap-3 sm:gap-4 lg:grid-cols-4">
        <Stat label="Replicas running" value={<span className="tabular-nums" data-testid="replicas-running">{`${app.runningReplicas} / ${desired}`}</span>} />
        <Stat label="Release" value={app.currentRelease ? `v${app.currentRelease}` : "—"} hint={<span className="font-mono">{app.spec?.image}</span>} />
        <Stat label="Plan" value={plan?.name ?? "—"} hint={plan ? `${formatCores(plan.cpuMillis)} · ${formatMiB(plan.memoryMib)} · ${formatPricePerHour(plan)}` : undefined} />
        <Stat
          label="Last deployment"
          value={d ? <DeploymentStateBadge state={d.state} /> : "—"}
          hint={d ? `${deploymentTitle(d)}, ${formatRelative(d.createdAt)}` : undefined}
        />
      </div>
      {d && isActive(d) ? (
        <Card>
          <CardHeader
            title="Deployment in progress"
            actions={
              <Link href={orgPath(org.slug, `apps/${app.id}/deployments`)} className="text-[13px] font-medium text-accent hover:underline">
                All deployments
              </Link>
            }
          />
          <DeploymentProgress organizationId={org.id} deploymentId={d.id} initial={d} />
        </Card>
      ) : (
        d &&
        (d.state === DeploymentState.FAILED || d.state === DeploymentState.ROLLED_BACK) && (
          <Banner tone={d.state === DeploymentState.FAILED ? "danger" : "warning"}>
            {deploymentTitle(d)} {d.state === DeploymentState.FAILED ? "failed" : "was rolled back"}
            {d.message ? `: ${d.message}` : "."}
          </Banner>
        )
      )}
      <Card>
        <CardHeader title="Replicas" description="Where each copy of the app runs, and in what state." />
        {reps.isPending ? (
          <SkeletonRows rows={2} label="Loading replicas" />
        ) : reps.isError && !reps.data ? (
          <ErrorState error={reps.error} onRetry={() => void reps.refetch()} />
        ) : (
          <ReplicaList replicas={reps.data?.replicas ?? []} empty={desired === 0 ? "The app is stopped: no replicas run." : "No replicas yet."} />
        )}
      </Card>
      {canOperate(org.role) && <Actions app={app} />}
    </div>
  );
}
