// Pieces shared by the cluster and node pages: state badges, usage bars, the health note.
import { AlertTriangle, CircleAlert, WifiOff } from "lucide-react";
import { Badge, cx } from "../../components/ui";
import { NodeState, type Cluster, type Node } from "../../gen/skypanel/cluster/v1/cluster_pb";
import { clusterStateInfo, nodeStateInfo } from "../../lib/clusters";

export function NodeStateBadge({ state }: { state: NodeState }) {
  const info = nodeStateInfo[state];
  const icon =
    state === NodeState.DOWN ? (
      <CircleAlert className="size-3" aria-hidden />
    ) : state === NodeState.UNREACHABLE ? (
      <WifiOff className="size-3" aria-hidden />
    ) : (
      <span aria-hidden className={cx("size-1.5 rounded-full bg-current", state === NodeState.ENROLLING && "animate-pulse")} />
    );
  return (
    <span title={info.help} data-node-state={info.label.toUpperCase()}>
      <Badge tone={info.tone}>
        {icon}
        {info.label}
      </Badge>
    </span>
  );
}

export function ClusterStateBadge({ cluster }: { cluster: Cluster }) {
  const info = clusterStateInfo[cluster.state];
  return (
    <span title={cluster.error || info.help} data-cluster-state={info.label.toUpperCase()}>
      <Badge tone={info.tone}>{info.label}</Badge>
    </span>
  );
}

/** UsageBar is a thin meter with its percentage, for CPU and memory. */
export function UsageBar({ label, percent, detail }: { label: string; percent: number | undefined; detail?: string }) {
  if (percent === undefined || Number.isNaN(percent)) return <span className="text-xs text-muted">—</span>;
  const p = Math.max(0, Math.min(100, percent));
  const tone = p >= 90 ? "bg-danger" : p >= 75 ? "bg-warning" : "bg-accent";
  return (
    <div className="flex min-w-24 items-center gap-2" title={detail ? `${label}: ${detail}` : undefined}>
      <div
        role="meter"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(p)}
        className="h-1.5 flex-1 overflow-hidden rounded-full bg-subtle"
      >
        <div className={cx("h-full rounded-full transition-[width] duration-500", tone)} style={{ width: `${p}%` }} />
      </div>
      <span className="w-9 text-right text-xs text-muted tabular-nums">{Math.round(p)}%</span>
    </div>
  );
}

/**
 * HealthNote explains a node without heartbeats: unreachable (only the control plane lost it)
 * or down (its peers lost it too), naming the peers whose gossip declared it dead.
 */
export function HealthNote({ node, peerName }: { node: Node; peerName?: (id: string) => string }) {
  if (node.state !== NodeState.UNREACHABLE && node.state !== NodeState.DOWN) return null;
  const unreachable = node.state === NodeState.UNREACHABLE;
  const peers = node.unreachableFrom.map((id) => peerName?.(id) ?? id.slice(0, 8));
  return (
    <div
      role="status"
      data-health-note
      className={cx("flex items-start gap-2 rounded-md px-3 py-2.5 text-sm", unreachable ? "bg-warning-soft text-warning" : "bg-danger-soft text-danger")}
    >
      {unreachable ? <WifiOff className="mt-0.5 size-4 shrink-0" aria-hidden /> : <AlertTriangle className="mt-0.5 size-4 shrink-0" aria-hidden />}
      <div>
        <strong className="font-semibold">{unreachable ? "Unreachable from the control plane." : "Down."}</strong>{" "}
        {unreachable
          ? "Peers can still reach it; only the control plane cannot. Its containers likely still run: check the network between this node and the control plane."
          : "Peers cannot reach it either: the server or its network is probably down."}
        {peers.length > 0 && <span className="block text-[13px] opacity-90">Declared dead by: {peers.join(", ")}.</span>}
      </div>
    </div>
  );
}
