// Clusters and nodes for the admin area: the live node list (ClusterService.WatchNodes), states
// as words and colours, sizes, and a clock for "3 s ago" that ticks.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { useEffect, useRef, useState, useSyncExternalStore } from "react";
import { NodeRole } from "../gen/skypanel/agent/v1/agent_pb";
import { ClusterService, ClusterState, NodeState, type Node } from "../gen/skypanel/cluster/v1/cluster_pb";
import { session, transport } from "./api";
import type { LiveStatus } from "./live";
import { toDate } from "./format";
import type { Timestamp } from "@bufbuild/protobuf/wkt";

export const clusters = createClient(ClusterService, transport);

type Tone = "neutral" | "accent" | "success" | "warning" | "danger";

export const nodeStateInfo: Record<NodeState, { label: string; tone: Tone; help: string }> = {
  [NodeState.UNSPECIFIED]: { label: "Unknown", tone: "neutral", help: "" },
  [NodeState.ENROLLING]: { label: "Enrolling", tone: "accent", help: "Enrolled; joining the swarm." },
  [NodeState.READY]: { label: "Ready", tone: "success", help: "Reporting and in the swarm." },
  [NodeState.DOWN]: { label: "Down", tone: "danger", help: "No heartbeat, and its peers cannot reach it either." },
  [NodeState.UNREACHABLE]: {
    label: "Unreachable",
    tone: "warning",
    help: "No heartbeat, but its peers can still reach it: only the control plane cannot.",
  },
  [NodeState.DRAINING]: { label: "Draining", tone: "warning", help: "Its tasks move elsewhere; new ones stay off it." },
  [NodeState.REMOVING]: { label: "Removing", tone: "neutral", help: "Leaving the swarm." },
  [NodeState.REMOVED]: { label: "Removed", tone: "neutral", help: "Gone from the cluster; its certificate is revoked." },
};

export const clusterStateInfo: Record<ClusterState, { label: string; tone: Tone; help: string }> = {
  [ClusterState.UNSPECIFIED]: { label: "Unknown", tone: "neutral", help: "" },
  [ClusterState.PENDING]: { label: "Pending", tone: "neutral", help: "Waiting for its first manager to enroll." },
  [ClusterState.INITIALIZING]: { label: "Initializing", tone: "accent", help: "The first manager is creating the swarm." },
  [ClusterState.ACTIVE]: { label: "Active", tone: "success", help: "The swarm is up." },
  [ClusterState.ERROR]: { label: "Error", tone: "danger", help: "" },
};

export const roleName: Record<NodeRole, string> = {
  [NodeRole.UNSPECIFIED]: "—",
  [NodeRole.MANAGER]: "Manager",
  [NodeRole.WORKER]: "Worker",
};

/** formatBytes says "3.2 GB" (powers of 1024, as memory is sold). */
export function formatBytes(n: number | bigint, digits = 1): string {
  let v = Number(n);
  const units = ["B", "KB", "MB", "GB", "TB", "PB"];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? Math.round(v) : v.toFixed(v >= 100 ? 0 : digits).replace(/\.0+$/, "")} ${units[i]}`;
}

/** memoryPercent is the share of memory in use in the latest heartbeat, or undefined. */
export function memoryPercent(n: Node): number | undefined {
  const total = Number(n.last?.memoryTotalBytes ?? 0n);
  if (!n.last || total <= 0) return undefined;
  return (Number(n.last.memoryUsedBytes) / total) * 100;
}

// One clock for every "… ago" on screen, ticking once a second while anything reads it.
let now = Date.now();
const clockListeners = new Set<() => void>();
let timer: ReturnType<typeof setInterval> | undefined;
function subscribeClock(fn: () => void) {
  clockListeners.add(fn);
  if (!timer) {
    now = Date.now();
    timer = setInterval(() => {
      now = Date.now();
      clockListeners.forEach((l) => l());
    }, 1000);
  }
  return () => {
    clockListeners.delete(fn);
    if (!clockListeners.size && timer) {
      clearInterval(timer);
      timer = undefined;
    }
  };
}

/** useNow is the time, refreshed every second. */
export function useNow(): number {
  return useSyncExternalStore(subscribeClock, () => now);
}

/** ago says "3 s ago", "4 min ago", "2 h ago", "5 d ago", or "never". */
export function ago(ts: Timestamp | undefined, at: number): string {
  const d = toDate(ts);
  if (!d) return "never";
  const s = Math.max(0, Math.round((at - d.getTime()) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/**
 * useWatchNodes follows ClusterService.WatchNodes: the cluster's nodes now and on every change.
 * It reconnects with backoff when the stream ends or fails (refreshing the session when the
 * server refused the access token) and keeps showing the last list meanwhile.
 */
export function useWatchNodes(clusterId: string | undefined): { nodes: Node[] | undefined; status: LiveStatus; error: unknown } {
  const [nodes, setNodes] = useState<Node[] | undefined>(undefined);
  const [status, setStatus] = useState<LiveStatus>("connecting");
  const [error, setError] = useState<unknown>(undefined);
  const cur = useRef(clusterId);
  cur.current = clusterId;

  useEffect(() => {
    if (!clusterId) return;
    setNodes(undefined);
    setError(undefined);
    const ctrl = new AbortController();
    const { signal } = ctrl;
    let attempt = 0;
    const sleep = (ms: number) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        signal.addEventListener("abort", () => {
          clearTimeout(t);
          resolve();
        });
      });
    (async () => {
      while (!signal.aborted) {
        setStatus(attempt === 0 ? "connecting" : "reconnecting");
        try {
          await session.ensureFresh();
          for await (const msg of clusters.watchNodes({ clusterId }, { signal })) {
            attempt = 0;
            setStatus("live");
            setError(undefined);
            setNodes(msg.nodes);
          }
        } catch (err) {
          if (signal.aborted) return;
          const code = err instanceof ConnectError ? err.code : Code.Unknown;
          if (code === Code.Unauthenticated) {
            try {
              await session.refresh();
            } catch {
              return;
            }
          } else if (code === Code.PermissionDenied || code === Code.NotFound || code === Code.InvalidArgument || code === Code.Unimplemented) {
            setError(err);
            setStatus("unavailable");
            return;
          }
        }
        attempt++;
        await sleep(Math.min(30_000, 500 * 2 ** Math.min(attempt, 6)) * (0.75 + Math.random() / 2));
      }
    })();
    return () => ctrl.abort();
  }, [clusterId]);

  return { nodes, status, error };
}
