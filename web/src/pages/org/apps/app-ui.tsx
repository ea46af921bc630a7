// Pieces the app pages share: status badges, the replica list and a deployment's live progress.
import { Check, CheckCircle2, Circle, CircleAlert, Loader2, RotateCcw } from "lucide-react";
import type { ReactNode } from "react";
import { LiveIndicator } from "../../../components/live";
import { Badge, ErrorState, cx } from "../../../components/ui";
import { AppStatus, DeploymentState, type Deployment, type DeploymentEvent, type Replica } from "../../../gen/skypanel/app/v1/app_pb";
import type { Plan } from "../../../gen/skypanel/plan/v1/plan_pb";
import {
  appStatusInfo,
  deploymentKindLabel,
  deploymentStateInfo,
  formatCores,
  formatDuration,
  formatMiB,
  formatPricePerHour,
  isActive,
  replicaTone,
  tsMs,
  useWatchDeployment,
} from "../../../lib/apps";
import { useNow } from "../../../lib/clusters";
import { formatDateTime } from "../../../lib/format";

export function AppStatusBadge({ status }: { status: AppStatus }) {
  const s = appStatusInfo[status] ?? appStatusInfo[AppStatus.UNSPECIFIED];
  return (
    <span title={s.help} data-app-status={AppStatus[status]}>
      <Badge tone={s.tone}>
        {status === AppStatus.DEPLOYING && <Loader2 className="size-3 animate-spin" aria-hidden />}
        {s.label}
      </Badge>
    </span>
  );
}

export function DeploymentStateBadge({ state }: { state: DeploymentState }) {
  const s = deploymentStateInfo[state] ?? deploymentStateInfo[DeploymentState.UNSPECIFIED];
  return (
    <span data-deployment-state={DeploymentState[state]}>
      <Badge tone={s.tone}>{s.label}</Badge>
    </span>
  );
}

export function AutoRollbackBadge() {
  return (
    <Badge tone="warning">
      <RotateCcw className="size-3" aria-hidden /> Automatic rollback
    </Badge>
  );
}

/** deploymentTitle says "Deploy of release 3". */
export function deploymentTitle(d: Deployment): string {
  return `${deploymentKindLabel[d.kind]}${d.releaseVersion ? ` · release ${d.releaseVersion}` : ""}`;
}

/** elapsed is how long a deployment took, or has taken so far. */
export function elapsed(d: Deployment, now: number): string {
  const start = tsMs(d.createdAt);
  if (!start) return "";
  const end = tsMs(d.finishedAt) || (isActive(d) ? now : 0);
  return end ? formatDuration(end - start) : "";
}

export function ReplicaList({ replicas, empty }: { replicas: Replica[]; empty?: ReactNode }) {
  if (!replicas.length) return <p className="px-4 py-4 text-sm text-muted sm:px-5">{empty ?? "No replicas."}</p>;
  const sorted = [...replicas].sort((a, b) => a.slot - b.slot || tsMs(b.updatedAt) - tsMs(a.updatedAt));
  return (
    <ul className="divide-y divide-line" aria-label="Replica list">
      {sorted.map((r) => (
        <li key={r.taskId || `${r.slot}-${r.nodeId}`} className="flex flex-wrap items-center gap-x-3 gap-y-1 px-4 py-2.5 text-sm sm:px-5" data-replica={r.slot} data-replica-state={r.state}>
          <span className="font-medium">Replica {r.slot}</span>
          <Badge tone={replicaTone(r.state)}>{r.state || "unknown"}</Badge>
          {r.desiredState && r.desiredState !== r.state && <span className="text-xs text-muted">→ {r.desiredState}</span>}
          <span className="text-[13px] text-muted">on {r.nodeHostname || (r.nodeId ? r.nodeId.slice(0, 8) : "no node yet")}</span>
          {r.releaseVersion > 0 && <span className="text-[13px] text-muted">release {r.releaseVersion}</span>}
          <span className="ml-auto text-xs text-muted" title={formatDateTime(r.updatedAt)}>
            {formatDateTime(r.updatedAt)}
          </span>
          {r.error && <p className="w-full text-[13px] break-words text-danger">{r.error}</p>}
        </li>
      ))}
    </ul>
  );
}

const steps = [DeploymentState.PENDING, DeploymentState.PREPARING, DeploymentState.APPLYING, DeploymentState.ROLLING_OUT];

function Timeline({ d }: { d: Deployment }) {
  // The events as they happened; states not reached yet are listed greyed while it runs.
  const seen = new Set(d.events.map((e) => e.state));
  const upcoming: DeploymentEvent[] = isActive(d) ? steps.filter((s) => !seen.has(s) && s > d.state).map((s) => ({ state: s }) as DeploymentEvent) : [];
  const events = [...d.events].sort((a, b) => tsMs(a.at) - tsMs(b.at));
  return (
    <ol className="space-y-2.5" aria-label="Deployment steps">
      {[...events, ...upcoming].map((e, i) => {
        const done = !!e.at;
        const current = done && i === events.length - 1 && isActive(d);
        const bad = e.state === DeploymentState.FAILED || e.state === DeploymentState.ROLLED_BACK;
        return (
          <li key={i} className="flex gap-2.5 text-sm" data-step={DeploymentState[e.state]} aria-current={current ? "step" : undefined}>
            {current ? (
              <Loader2 className="mt-0.5 size-4 shrink-0 animate-spin text-accent" aria-hidden />
            ) : bad ? (
              <CircleAlert className="mt-0.5 size-4 shrink-0 text-danger" aria-hidden />
            ) : done ? (
              <CheckCircle2 className="mt-0.5 size-4 shrink-0 text-success" aria-hidden />
            ) : (
              <Circle className="mt-0.5 size-4 shrink-0 text-muted/60" aria-hidden />
            )}
            <div className="min-w-0 flex-1">
              <div className={cx("font-medium", !done && "text-muted")}>{deploymentStateInfo[e.state]?.label ?? "Step"}</div>
              <div className="text-[13px] break-words text-muted">{e.message || deploymentStateInfo[e.state]?.step}</div>
            </div>
            {e.at && <time className="shrink-0 text-xs text-muted tabular-nums">{new Date(tsMs(e.at)).toLocaleTimeString()}</time>}
          </li>
        );
      })}
    </ol>
  );
}

/** DeploymentProgress follows one deployment live: its steps and its replicas. */
export function DeploymentProgress({ organizationId, deploymentId, initial }: { organizationId: string; deploymentId: string; initial?: Deployment }) {
  const w = useWatchDeployment(organizationId, deploymentId);
  const now = useNow();
  const d = w.deployment ?? initial;
  if (w.error && !d) return <ErrorState error={w.error} title="Couldn't follow the deployment" />;
  if (!d) {
    return (
      <div role="status" className="flex items-center gap-2 px-4 py-5 text-sm text-muted sm:px-5">
        <Loader2 className="size-4 animate-spin" aria-hidden /> Loading the deployment…
      </div>
    );
  }
  return (
    <div className="space-y-4 p-4 sm:p-5" data-deployment-progress={d.id} aria-live="polite">
      <div className="flex flex-wrap items-center gap-2">
        <span className="text-sm font-medium">{deploymentTitle(d)}</span>
        <DeploymentStateBadge state={d.state} />
        {d.automaticRollback && <AutoRollbackBadge />}
        <span className="text-[13px] text-muted tabular-nums">{elapsed(d, now)}</span>
        <span className="ml-auto">
          <LiveIndicator status={isActive(d) || w.status !== "live" ? w.status : "live"} />
        </span>
      </div>
      {d.message && <p className={cx("text-sm break-words", d.state === DeploymentState.FAILED ? "text-danger" : "text-muted")}>{d.message}</p>}
      <Timeline d={d} />
      {w.replicas.length > 0 && (
        <div className="-mx-4 border-t border-line sm:-mx-5">
          <ReplicaList replicas={w.replicas} />
        </div>
      )}
    </div>
  );
}

/** PlanPicker offers plans as radio cards: price, CPU, memory and the replica limit. */
export function PlanPicker({ plans, value, onChange, error }: { plans: Plan[]; value: string; onChange: (id: string) => void; error?: string }) {
  return (
    <div>
      <div role="radiogroup" aria-label="Plan" aria-describedby={error ? "plan-error" : undefined} className="grid gap-3 sm:grid-cols-2">
        {plans.map((p) => {
          const checked = p.id === value;
          return (
            <label
              key={p.id}
              data-plan={p.name}
              className={cx(
                "relative flex cursor-pointer flex-col gap-1 rounded-lg border p-3.5 transition-colors has-[:focus-visible]:outline-2 has-[:focus-visible]:outline-accent",
                checked ? "border-accent bg-accent-soft/40" : "border-line hover:bg-subtle",
              )}
            >
              <input type="radio" name="plan" value={p.id} checked={checked} onChange={() => onChange(p.id)} className="absolute inset-0 size-full cursor-pointer opacity-0" aria-label={p.name} aria-describedby={`plan-${p.id}-desc`} />
              <span className="flex items-center justify-between gap-2">
                <span className="font-medium">{p.name}</span>
                {checked && <Check className="size-4 text-accent" aria-hidden />}
              </span>
              <span id={`plan-${p.id}-desc`} className="text-[13px] text-muted">
                <span className="block font-medium text-fg">{formatPricePerHour(p)}</span>
                {formatCores(p.cpuMillis)} · {formatMiB(p.memoryMib)} per replica · up to {p.maxReplicas} {p.maxReplicas === 1 ? "replica" : "replicas"}
                {p.description && <span className="mt-1 block">{p.description}</span>}
              </span>
            </label>
          );
        })}
      </div>
      {error && (
        <p id="plan-error" className="mt-1.5 text-[13px] text-danger" role="alert" data-field-error>
          {error}
        </p>
      )}
    </div>
  );
}
