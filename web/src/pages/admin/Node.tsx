// /admin/nodes/:id: one node: its state live, facts, labels, drain/activate, removal, and its
// metrics over the last hour, day or week.
import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { useQuery } from "@connectrpc/connect-query";
import { useQuery as useTanQuery } from "@tanstack/react-query";
import { ArrowLeft, Pause, Play, Plus, Trash2, X } from "lucide-react";
import { useEffect, useMemo, useState, type ReactNode } from "react";
import { Link, useParams } from "wouter";
import { LineChart, type ChartPoint, RangePicker } from "../../components/chart";
import { Confirm } from "../../components/dialog";
import { LiveIndicator } from "../../components/live";
import { toast } from "../../components/toast";
import { Banner, Button, Card, CardHeader, ErrorState, Field, Input, Spinner, useTitle } from "../../components/ui";
import { ClusterService, NodeState, type Node as NodeMsg } from "../../gen/skypanel/cluster/v1/cluster_pb";
import { invalidate } from "../../lib/api";
import { ago, clusters, formatBytes, memoryPercent, roleName, useNow, useWatchNodes } from "../../lib/clusters";
import { formatDateTime } from "../../lib/format";
import { useApiForm } from "../../lib/forms";
import { HealthNote, NodeStateBadge, UsageBar } from "./cluster-ui";

const ranges = [
  { key: "1h", label: "1 h", ms: 3600_000, refresh: 10_000 },
  { key: "24h", label: "24 h", ms: 86400_000, refresh: 60_000 },
  { key: "7d", label: "7 d", ms: 7 * 86400_000, refresh: 300_000 },
] as const;
type RangeKey = (typeof ranges)[number]["key"];

const pct = (v: number) => `${Math.round(v)}%`;
const bytes = (v: number) => formatBytes(v, v < 10 * 1024 ** 3 ? 1 : 0);
const rate = (v: number) => `${formatBytes(v)}/s`;
const load = (v: number) => (v >= 10 ? v.toFixed(0) : v.toFixed(1));

function Metrics({ node }: { node: NodeMsg }) {
  const [range, setRange] = useState<RangeKey>("1h");
  const r = ranges.find((x) => x.key === range)!;
  const q = useTanQuery({
    queryKey: ["skypanel.nodeMetrics", node.id, range],
    queryFn: async ({ signal }) => {
      const until = Date.now();
      const since = until - r.ms;
      const res = await clusters.getNodeMetrics({ nodeId: node.id, since: timestampFromMs(since), until: timestampFromMs(until) }, { signal });
      const series: Record<string, ChartPoint[]> = {};
      for (const s of res.series) series[s.name] = s.points.map((p) => ({ t: p.at ? timestampDate(p.at).getTime() : 0, v: p.value }));
      return { since, until, series };
    },
    refetchInterval: node.state === NodeState.REMOVED ? false : r.refresh,
    placeholderData: (prev, prevQuery) => (prevQuery?.queryKey[2] === range ? prev : undefined),
  });

  const d = q.data;
  const get = (name: string) => d?.series[name] ?? [];
  // Network counters become rates: the difference between points over the time between them.
  // The newest step is still filling up: its average would read as a drop, so it waits.
  const perSecond = (pts: ChartPoint[]) => {
    const out: ChartPoint[] = [];
    const n = pts.length;
    const partial = n >= 2 && d !== undefined && d.until - pts[n - 1].t < pts[n - 1].t - pts[n - 2].t;
    for (let i = 1; i < n - (partial ? 1 : 0); i++) {
      const dt = (pts[i].t - pts[i - 1].t) / 1000;
      const dv = pts[i].v - pts[i - 1].v;
      if (dt > 0 && dv >= 0) out.push({ t: pts[i].t, v: dv / dt });
    }
    return out;
  };
  const memTotal = Number(node.memoryBytes || node.last?.memoryTotalBytes || 0n);
  const diskTotal = Number(node.last?.diskTotalBytes ?? 0n);
  const last = (pts: ChartPoint[], f: (v: number) => string) => (pts.length ? <span className="font-medium text-fg tabular-nums">{f(pts[pts.length - 1].v)}</span> : null);

  return (
    <Card className="mb-6">
      <CardHeader
        title="Metrics"
        description="Averages per interval from the node's heartbeats."
        actions={<RangePicker ranges={ranges} value={range} onChange={setRange} />}
      />
      <div className="p-4 sm:p-5">
        {q.isPending ? (
          <Spinner label="Loading metrics" />
        ) : q.isError ? (
          <ErrorState error={q.error} onRetry={() => void q.refetch()} title="Couldn't load the metrics" />
        ) : (
          d && (
            <div className="grid gap-6 md:grid-cols-2">
              <LineChart
                title="CPU"
                series={[{ name: "CPU", color: "var(--sp-accent)", points: get("cpu_percent") }]}
                since={d.since}
                until={d.until}
                min={0}
                max={100}
                format={pct}
                summary={last(get("cpu_percent"), pct)}
              />
              <LineChart
                title="Memory"
                series={[{ name: "Used", color: "#8b5cf6", points: get("memory_used_bytes") }]}
                since={d.since}
                until={d.until}
                min={0}
                max={memTotal > 0 ? memTotal : undefined}
                format={bytes}
                bytes
                summary={last(get("memory_used_bytes"), (v) => `${bytes(v)}${memTotal ? ` of ${bytes(memTotal)}` : ""}`)}
              />
              <LineChart
                title="Network"
                series={[
                  { name: "In", color: "var(--sp-success)", points: perSecond(get("net_rx_bytes")) },
                  { name: "Out", color: "var(--sp-warning)", points: perSecond(get("net_tx_bytes")) },
                ]}
                since={d.since}
                until={d.until}
                format={rate}
                bytes
                empty="Not enough data yet: rates need two samples."
              />
              <LineChart
                title="Load (1 min)"
                series={[{ name: "Load", color: "#0ea5e9", points: get("load1") }]}
                since={d.since}
                until={d.until}
                format={load}
                summary={last(get("load1"), load)}
              />
              <LineChart
                title="Disk used"
                series={[{ name: "Disk", color: "#64748b", points: get("disk_used_bytes") }]}
                since={d.since}
                until={d.until}
                min={0}
                max={diskTotal > 0 ? diskTotal : undefined}
                format={bytes}
                bytes
                summary={last(get("disk_used_bytes"), (v) => `${bytes(v)}${diskTotal ? ` of ${bytes(diskTotal)}` : ""}`)}
              />
            </div>
          )
        )}
      </div>
    </Card>
  );
}

function LabelsEditor({ node }: { node: NodeMsg }) {
  const initial = useMemo(() => Object.entries(node.labels).sort(([a], [b]) => a.localeCompare(b)), [node.labels]);
  const [rows, setRows] = useState<[string, string][]>(initial);
  const form = useApiForm(["labels"]);
  const key = JSON.stringify(initial);
  useEffect(() => setRows(JSON.parse(key) as [string, string][]), [key]);
  const dirty = JSON.stringify(rows.filter(([k]) => k.trim())) !== key;
  const removed = node.state === NodeState.REMOVED || node.state === NodeState.REMOVING;
  const set = (i: number, j: 0 | 1, v: string) => setRows(rows.map((r, x) => (x === i ? ((j === 0 ? [v, r[1]] : [r[0], v]) as [string, string]) : r)));

  async function save(e: React.FormEvent) {
    e.preventDefault();
    const labels: Record<string, string> = {};
    for (const [k, v] of rows) {
      const kk = k.trim();
      if (!kk) continue;
      if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(kk)) return form.setFieldError("labels", `“${kk}” is not a label name: lower-case letters, digits, “.”, “_” and “-”.`);
      if (kk in labels) return form.setFieldError("labels", `“${kk}” appears twice.`);
      labels[kk] = v.trim();
    }
    const res = await form.run(() => clusters.setNodeLabels({ nodeId: node.id, labels }));
    if (!res) return;
    await invalidate(ClusterService.method.getNode);
    toast.success("Labels saved", "The swarm node gets them from a manager.");
  }

  return (
    <Card>
      <CardHeader title="Labels" description="Swarm node labels, for placing apps (e.g. edge=true)." />
      <form onSubmit={save} className="space-y-3 p-4 sm:p-5" noValidate>
        {form.formError && <Banner>{form.formError}</Banner>}
        {rows.length === 0 && <p className="text-sm text-muted">No labels.</p>}
        <ul className="space-y-2" aria-label="Labels">
          {rows.map(([k, v], i) => (
            <li key={i} className="flex items-center gap-2" data-label-row>
              <Input aria-label="Label name" value={k} placeholder="name" onChange={(e) => set(i, 0, e.target.value)} disabled={removed} className="font-mono text-[13px]" />
              <span className="text-muted">=</span>
              <Input aria-label="Label value" value={v} placeholder="value" onChange={(e) => set(i, 1, e.target.value)} disabled={removed} className="font-mono text-[13px]" />
              <Button variant="ghost" size="sm" aria-label={`Remove label ${k}`} onClick={() => setRows(rows.filter((_, x) => x !== i))} disabled={removed}>
                <X className="size-4" aria-hidden />
              </Button>
            </li>
          ))}
        </ul>
        {form.fields.labels && (
          <p className="text-[13px] text-danger" role="alert">
            {form.fields.labels}
          </p>
        )}
        <div className="flex flex-wrap justify-between gap-2">
          <Button size="sm" icon={<Plus className="size-3.5" aria-hidden />} onClick={() => setRows([...rows, ["", ""]])} disabled={removed || rows.length >= 20}>
            Add label
          </Button>
          <Button size="sm" type="submit" variant="primary" disabled={!dirty || removed} loading={form.pending}>
            Save labels
          </Button>
        </div>
      </form>
    </Card>
  );
}

function Fact({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="min-w-0">
      <dt className="text-xs text-muted">{label}</dt>
      <dd className="mt-0.5 text-sm break-words">{children || "—"}</dd>
    </div>
  );
}

function Actions({ node }: { node: NodeMsg }) {
  const [typed, setTyped] = useState("");
  const name = node.hostname || node.id;
  const gone = node.state === NodeState.REMOVED || node.state === NodeState.REMOVING;
  if (gone) return null;
  const draining = node.state === NodeState.DRAINING || node.availability === "drain";
  async function act(fn: () => Promise<unknown>, done: string, fail: string) {
    try {
      await fn();
      await invalidate(ClusterService.method.getNode);
      toast.success(done);
    } catch (err) {
      toast.error(fail, err);
      throw err;
    }
  }
  return (
    <>
      {draining ? (
        <Confirm
          trigger={<Button icon={<Play className="size-4" aria-hidden />}>Activate</Button>}
          title={`Activate ${name}?`}
          description="The swarm may schedule tasks on it again."
          confirmLabel="Activate"
          onConfirm={() => act(() => clusters.activateNode({ nodeId: node.id }), `${name} is active again`, "Couldn't activate the node")}
        />
      ) : (
        <Confirm
          trigger={<Button icon={<Pause className="size-4" aria-hidden />}>Drain</Button>}
          title={`Drain ${name}?`}
          description="Its tasks move to other nodes and no new ones start on it. Apps with a single replica restart elsewhere, briefly unavailable."
          confirmLabel="Drain node"
          onConfirm={() => act(() => clusters.drainNode({ nodeId: node.id }), `Draining ${name}`, "Couldn't drain the node")}
        />
      )}
      <Confirm
        trigger={
          <Button icon={<Trash2 className="size-4" aria-hidden />} className="text-danger">
            Remove
          </Button>
        }
        title={`Remove ${name} from the cluster?`}
        description={
          <>
            The node is drained, leaves the swarm and its certificate is revoked. To bring the server back, enroll it again with a new token.
          </>
        }
        confirmLabel="Remove node"
        confirmDisabled={typed !== name}
        onConfirm={() => act(() => clusters.removeNode({ nodeId: node.id }), `Removing ${name}`, "Couldn't remove the node")}
      >
        <Field label={<>Type <code className="font-mono">{name}</code> to confirm</>}>
          {(p) => <Input {...p} value={typed} onChange={(e) => setTyped(e.target.value)} autoComplete="off" spellCheck={false} data-testid="confirm-name" />}
        </Field>
      </Confirm>
    </>
  );
}

export default function Node() {
  const { id } = useParams<{ id: string }>();
  const q = useQuery(ClusterService.method.getNode, { nodeId: id }, { refetchInterval: 30_000 });
  const clusterId = q.data?.node?.clusterId;
  const cluster = useQuery(ClusterService.method.getCluster, { clusterId: clusterId ?? "" }, { enabled: !!clusterId });
  const watch = useWatchNodes(clusterId && q.data?.node?.state !== NodeState.REMOVED ? clusterId : undefined);
  const now = useNow();
  const fromWatch = watch.nodes?.find((n) => n.id === id);
  const node = fromWatch ?? q.data?.node;
  useTitle(node?.hostname || "Node");

  // A node that leaves the live list was removed: read it once more to show that.
  const gone = watch.nodes !== undefined && !fromWatch;
  useEffect(() => {
    if (gone) void q.refetch();
  }, [gone]); // eslint-disable-line react-hooks/exhaustive-deps

  if (q.isPending) return <Spinner label="Loading the node" />;
  if (q.isError || !node)
    return (
      <Card>
        <ErrorState error={q.error} title="Couldn't load the node" onRetry={() => void q.refetch()} />
      </Card>
    );

  const mem = memoryPercent(node);
  const removed = node.state === NodeState.REMOVED;
  return (
    <>
      <Link href={`/admin/clusters/${node.clusterId}`} className="mb-3 inline-flex items-center gap-1 text-[13px] text-muted hover:text-fg">
        <ArrowLeft className="size-3.5" aria-hidden /> {cluster.data?.cluster?.name ?? "Cluster"}
      </Link>
      <div className="mb-6 flex flex-wrap items-end justify-between gap-4">
        <div className="min-w-0">
          <h1 className="flex flex-wrap items-center gap-2 text-xl font-semibold tracking-tight">
            {node.hostname || node.id.slice(0, 8)} <NodeStateBadge state={node.state} />
          </h1>
          <p className="mt-1 text-sm text-muted">
            {roleName[node.role]} · {node.advertiseAddr || "no address"} ·{" "}
            <span data-last-seen title={formatDateTime(node.lastSeenAt)}>
              last seen {ago(node.lastSeenAt, now)}
            </span>
          </p>
        </div>
        <div className="flex flex-wrap items-center gap-2">
          {!removed && <LiveIndicator status={watch.status} />}
          <Actions node={node} />
        </div>
      </div>
      <div className="mb-4 empty:hidden">
        <HealthNote node={node} peerName={(pid) => watch.nodes?.find((p) => p.id === pid)?.hostname ?? pid.slice(0, 8)} />
      </div>
      {removed && (
        <div className="mb-4">
          <Banner tone="accent">This node was removed from the cluster. Its certificate is revoked; enroll the server again to bring it back.</Banner>
        </div>
      )}
      <Metrics node={node} />
      <div className="grid gap-6 lg:grid-cols-[1fr_340px]">
        <Card>
          <CardHeader title="Facts" description="What the agent reported when it enrolled, and its latest heartbeat." />
          <dl className="grid grid-cols-2 gap-x-4 gap-y-3 p-4 sm:grid-cols-3 sm:p-5">
            <Fact label="CPU now">
              <UsageBar label="CPU" percent={node.last && !removed ? node.last.cpuPercent : undefined} />
            </Fact>
            <Fact label="Memory now">
              <UsageBar label="Memory" percent={removed ? undefined : mem} />
            </Fact>
            <Fact label="Load">{node.last ? `${node.last.load1.toFixed(2)} · ${node.last.load5.toFixed(2)} · ${node.last.load15.toFixed(2)}` : "—"}</Fact>
            <Fact label="CPUs">{node.cpus || "—"}</Fact>
            <Fact label="Memory">{node.memoryBytes ? formatBytes(node.memoryBytes) : "—"}</Fact>
            <Fact label="Disk">{node.last?.diskTotalBytes ? `${formatBytes(node.last.diskUsedBytes)} of ${formatBytes(node.last.diskTotalBytes)}` : "—"}</Fact>
            <Fact label="OS">{node.os}</Fact>
            <Fact label="Kernel">{node.kernel}</Fact>
            <Fact label="Architecture">{node.arch}</Fact>
            <Fact label="Docker">{node.dockerVersion}</Fact>
            <Fact label="Agent">{node.agentVersion}</Fact>
            <Fact label="Availability">{node.availability}</Fact>
            <Fact label="Swarm node">{node.swarmNodeId && <code className="font-mono text-xs">{node.swarmNodeId}</code>}</Fact>
            <Fact label="Node ID">
              <code className="font-mono text-xs">{node.id}</code>
            </Fact>
            <Fact label="Enrolled">{formatDateTime(node.enrolledAt)}</Fact>
            <Fact label="Certificate expires">{formatDateTime(node.certificateExpiresAt)}</Fact>
          </dl>
        </Card>
        <div className="self-start">
          <LabelsEditor node={node} />
        </div>
      </div>
    </>
  );
}
