// /admin/clusters/:id: a cluster, its nodes live (WatchNodes), adding a node with an
// enrollment token, and the cluster's tokens.
import { useQuery } from "@connectrpc/connect-query";
import { ArrowLeft, CheckCircle2, KeyRound, Loader2, Lock, Plus, Server, Trash2 } from "lucide-react";
import { useEffect, useMemo, useRef, useState } from "react";
import { Link, useLocation, useParams } from "wouter";
import { CopyButton } from "../../components/copy";
import { Confirm, Dialog } from "../../components/dialog";
import { LiveIndicator } from "../../components/live";
import { Select } from "../../components/select";
import { toast } from "../../components/toast";
import { Badge, Banner, Button, Card, CardHeader, EmptyState, ErrorState, Field, Input, ListRow, PageHeader, Skeleton, SkeletonRows, Spinner, cx, useTitle } from "../../components/ui";
import { NodeRole } from "../../gen/skypanel/agent/v1/agent_pb";
import { ClusterService, NodeState, type Cluster as ClusterMsg, type EnrollmentToken, type Node } from "../../gen/skypanel/cluster/v1/cluster_pb";
import { invalidate } from "../../lib/api";
import { ago, clusters, formatBytes, memoryPercent, roleName, useNow, useWatchNodes } from "../../lib/clusters";
import { formatDate, formatDateTime, formatRelative, toDate } from "../../lib/format";
import { useApiForm } from "../../lib/forms";
import { ClusterStateBadge, HealthNote, NodeStateBadge, UsageBar } from "./cluster-ui";

const expiryOptions = [
  { value: "3600", label: "1 hour" },
  { value: "21600", label: "6 hours" },
  { value: "86400", label: "24 hours" },
  { value: "604800", label: "7 days" },
  { value: "2592000", label: "30 days" },
];

const labelKey = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** parseLabels reads "edge=true, zone=a" into a map, or says what is wrong. */
export function parseLabels(text: string): { labels: Record<string, string>; error?: string } {
  const labels: Record<string, string> = {};
  for (const part of text.split(/[,\n]/)) {
    const p = part.trim();
    if (!p) continue;
    const eq = p.indexOf("=");
    const k = (eq < 0 ? p : p.slice(0, eq)).trim();
    const v = eq < 0 ? "" : p.slice(eq + 1).trim();
    if (!labelKey.test(k)) return { labels, error: `“${k}” is not a label name: lower-case letters, digits, “.”, “_” and “-”, starting with a letter or digit.` };
    if (v.length > 63) return { labels, error: `The value of “${k}” is longer than 63 characters.` };
    labels[k] = v;
  }
  if (Object.keys(labels).length > 20) return { labels, error: "At most 20 labels." };
  return { labels };
}

export function LabelChips({ labels }: { labels: Record<string, string> }) {
  const entries = Object.entries(labels);
  if (!entries.length) return null;
  return (
    <span className="inline-flex flex-wrap gap-1">
      {entries.map(([k, v]) => (
        <code key={k} className="rounded bg-subtle px-1.5 py-0.5 font-mono text-[11px] font-normal text-muted">
          {k}
          {v ? `=${v}` : ""}
        </code>
      ))}
    </span>
  );
}

function AddNodeDialog({
  open,
  onOpenChange,
  cluster,
  nodes,
}: {
  open: boolean;
  onOpenChange: (o: boolean) => void;
  cluster: ClusterMsg;
  nodes: Node[] | undefined;
}) {
  const firstNode = cluster.managerCount + cluster.workerCount === 0;
  const [role, setRole] = useState<string>(String(firstNode ? NodeRole.MANAGER : NodeRole.WORKER));
  const [labelText, setLabelText] = useState("");
  const [ttl, setTtl] = useState("3600");
  const [limit, setLimit] = useState("1");
  const [result, setResult] = useState<{ command: string; token: EnrollmentToken; known: Set<string> } | null>(null);
  const form = useApiForm(["role", "labels", "ttl", "usage_limit"]);
  const announced = useRef(new Set<string>());

  useEffect(() => {
    if (open && !result) setRole(String(firstNode ? NodeRole.MANAGER : NodeRole.WORKER));
  }, [open, firstNode, result]);

  function close(o: boolean) {
    onOpenChange(o);
    if (!o) {
      setLabelText("");
      setTtl("3600");
      setLimit("1");
      setResult(null);
      announced.current = new Set();
      form.reset();
    }
  }

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const { labels, error } = parseLabels(labelText);
    const n = Number(limit);
    if (error) return form.setFieldError("labels", error);
    if (!Number.isInteger(n) || n < 1 || n > 1000) return form.setFieldError("usage_limit", "A whole number from 1 to 1000.");
    const known = new Set((nodes ?? []).map((x) => x.id));
    const res = await form.run(() =>
      clusters.createEnrollmentToken({
        clusterId: cluster.id,
        role: Number(role) as NodeRole,
        labels,
        ttl: { seconds: BigInt(ttl) },
        usageLimit: n,
      }),
    );
    if (!res?.token) return;
    await invalidate(ClusterService.method.listEnrollmentTokens);
    setResult({ command: res.setupCommand, token: res.token, known });
  }

  // Nodes that enrolled since the token was made, as WatchNodes reports them.
  const fresh = result ? (nodes ?? []).filter((x) => !result.known.has(x.id)) : [];
  useEffect(() => {
    for (const x of fresh) {
      if (!announced.current.has(x.id)) {
        announced.current.add(x.id);
        toast.success(`${x.hostname || "A node"} enrolled`, `It joins ${cluster.name} as a ${roleName[x.role].toLowerCase()}.`);
      }
    }
  });

  return (
    <Dialog
      open={open}
      onOpenChange={close}
      wide={!!result}
      title={result ? "Run this on the new server" : `Add a node to ${cluster.name}`}
      description={
        result ? undefined : "Make an enrollment token and get the command that installs the agent on a fresh Linux server and joins it to this cluster."
      }
    >
      {result ? (
        <div className="space-y-4">
          <Banner tone="warning">
            This is the only time this command is shown: it carries the enrollment token. It works{" "}
            {result.token.usageLimit === 1 ? "once" : `for ${result.token.usageLimit} nodes`}, until {formatDateTime(result.token.expiresAt)}.
          </Banner>
          <div>
            <div className="mb-1.5 flex items-end justify-between gap-3">
              <p className="text-[13px] text-muted">As root on the new server (Debian or Ubuntu with internet access):</p>
              <CopyButton text={result.command} label="Copy command" />
            </div>
            <pre className="max-h-48 overflow-auto rounded-md bg-subtle p-3 font-mono text-xs leading-relaxed break-all whitespace-pre-wrap" data-testid="setup-command">
              {result.command}
            </pre>
          </div>
          <div className="rounded-md border border-line p-3" aria-live="polite" data-testid="enroll-watch">
            {fresh.length === 0 ? (
              <div className="flex items-center gap-2 text-sm text-muted">
                <Loader2 className="size-4 animate-spin" aria-hidden />
                Waiting for the node to enroll… it appears here as soon as the agent connects.
              </div>
            ) : (
              <ul className="space-y-2">
                {fresh.map((x) => (
                  <li key={x.id} className="flex flex-wrap items-center gap-2 text-sm" data-enrolled-node={x.hostname}>
                    <CheckCircle2 className="size-4 text-success" aria-hidden />
                    <span className="font-medium">{x.hostname}</span>
                    <span className="text-muted">enrolled as a {roleName[x.role].toLowerCase()}</span>
                    <NodeStateBadge state={x.state} />
                    {x.state === NodeState.ENROLLING && <span className="text-[13px] text-muted">joining the swarm…</span>}
                  </li>
                ))}
              </ul>
            )}
          </div>
          <div className="flex justify-end">
            <Button variant="primary" onClick={() => close(false)}>
              Done
            </Button>
          </div>
        </div>
      ) : (
        <form onSubmit={submit} noValidate className="space-y-4">
          {form.formError && <Banner>{form.formError}</Banner>}
          <Field
            label="Role"
            hint={firstNode ? "The first node must be a manager: it creates the swarm." : "Managers run the swarm (keep an odd number: 1, 3 or 5); workers only run apps."}
            error={form.fields.role}
          >
            {(p) => (
              <Select
                {...p}
                value={role}
                onValueChange={setRole}
                options={[
                  { value: String(NodeRole.MANAGER), label: "Manager" },
                  { value: String(NodeRole.WORKER), label: "Worker", disabled: firstNode },
                ]}
              />
            )}
          </Field>
          <Field label="Labels" hint="Optional, comma-separated, e.g. “edge=true, zone=a”. Apps can be placed by them." error={form.fields.labels}>
            {(p) => <Input {...p} value={labelText} onChange={(e) => setLabelText(e.target.value)} placeholder="edge=true" className="font-mono text-[13px]" />}
          </Field>
          <div className="grid gap-4 sm:grid-cols-2">
            <Field label="Token expires after" error={form.fields.ttl}>
              {(p) => <Select {...p} value={ttl} onValueChange={setTtl} options={expiryOptions} />}
            </Field>
            <Field label="Usable by" hint="How many nodes may enroll with it." error={form.fields.usage_limit}>
              {(p) => (
                <div className="flex items-center gap-2">
                  <Input {...p} type="number" min={1} max={1000} value={limit} onChange={(e) => setLimit(e.target.value)} className="w-24" />
                  <span className="text-sm text-muted">{limit === "1" ? "node" : "nodes"}</span>
                </div>
              )}
            </Field>
          </div>
          <div className="flex flex-col-reverse gap-2 pt-1 sm:flex-row sm:justify-end">
            <Button onClick={() => close(false)}>Cancel</Button>
            <Button type="submit" variant="primary" loading={form.pending}>
              Get setup command
            </Button>
          </div>
        </form>
      )}
    </Dialog>
  );
}

function NodeTable({ nodes, now }: { nodes: Node[]; now: number }) {
  const [, navigate] = useLocation();
  const name = (id: string) => nodes.find((n) => n.id === id)?.hostname ?? id.slice(0, 8);
  return (
    <div className="overflow-x-auto">
      <table className="w-full min-w-[760px] text-sm" aria-label="Nodes">
        <thead>
          <tr className="border-b border-line text-left text-xs font-medium text-muted">
            <th className="px-4 py-2 font-medium sm:pl-5">Node</th>
            <th className="px-3 py-2 font-medium">State</th>
            <th className="px-3 py-2 font-medium">Role</th>
            <th className="px-3 py-2 font-medium">Address</th>
            <th className="w-32 px-3 py-2 font-medium">CPU</th>
            <th className="w-32 px-3 py-2 font-medium">Memory</th>
            <th className="px-3 py-2 pr-4 text-right font-medium sm:pr-5">Last seen</th>
          </tr>
        </thead>
        <tbody className="divide-y divide-line">
          {nodes.map((n) => {
            const mem = memoryPercent(n);
            const silent = n.state === NodeState.DOWN || n.state === NodeState.UNREACHABLE;
            return (
              <tr
                key={n.id}
                data-node={n.hostname}
                data-state={NodeState[n.state]}
                className="cursor-pointer align-middle hover:bg-subtle/60"
                onClick={(e) => {
                  if (!(e.target as HTMLElement).closest("a")) navigate(`/admin/nodes/${n.id}`);
                }}
              >
                <td className="px-4 py-2.5 sm:pl-5">
                  <Link href={`/admin/nodes/${n.id}`} className="font-medium hover:underline">
                    {n.hostname || n.id.slice(0, 8)}
                  </Link>
                  <div className="mt-0.5 flex flex-wrap items-center gap-1 text-xs text-muted">
                    {n.cpus > 0 && (
                      <span>
                        {n.cpus} CPU · {formatBytes(n.memoryBytes, 0)}
                      </span>
                    )}
                    <LabelChips labels={n.labels} />
                  </div>
                  {silent && (
                    <div className={cx("mt-1 text-xs", n.state === NodeState.DOWN ? "text-danger" : "text-warning")}>
                      {n.state === NodeState.UNREACHABLE
                        ? "Peers can still reach it; only the control plane cannot."
                        : `Peers cannot reach it either${n.unreachableFrom.length ? ` (${n.unreachableFrom.map(name).join(", ")})` : ""}.`}
                    </div>
                  )}
                </td>
                <td className="px-3 py-2.5">
                  <NodeStateBadge state={n.state} />
                </td>
                <td className="px-3 py-2.5">{roleName[n.role]}</td>
                <td className="px-3 py-2.5 font-mono text-xs">{n.advertiseAddr || "—"}</td>
                <td className="px-3 py-2.5">
                  <UsageBar label={`CPU of ${n.hostname}`} percent={n.last ? n.last.cpuPercent : undefined} />
                </td>
                <td className="px-3 py-2.5">
                  <UsageBar
                    label={`Memory of ${n.hostname}`}
                    percent={mem}
                    detail={n.last ? `${formatBytes(n.last.memoryUsedBytes)} of ${formatBytes(n.last.memoryTotalBytes)}` : undefined}
                  />
                </td>
                <td className={cx("px-3 py-2.5 pr-4 text-right text-xs whitespace-nowrap tabular-nums sm:pr-5", silent ? "text-danger" : "text-muted")} title={formatDateTime(n.lastSeenAt)} data-last-seen>
                  {ago(n.lastSeenAt, now)}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function TokenRow({ t }: { t: EnrollmentToken }) {
  const expired = (toDate(t.expiresAt)?.getTime() ?? 0) < Date.now();
  const usedUp = t.usageLimit > 0 && t.usageCount >= t.usageLimit;
  const live = !t.revoked && !expired && !usedUp;
  return (
    <ListRow
      data-token={t.id}
      lead={
        <div className="grid size-8 place-items-center rounded-full bg-subtle text-muted">
          <KeyRound className="size-4" aria-hidden />
        </div>
      }
      title={
        <>
          <span>{roleName[t.role]} token</span>
          {t.revoked ? <Badge tone="danger">Revoked</Badge> : expired ? <Badge>Expired</Badge> : usedUp ? <Badge>Used up</Badge> : <Badge tone="success">Active</Badge>}
          <LabelChips labels={t.labels} />
        </>
      }
      details={
        <span className="flex flex-wrap gap-x-2">
          <span>
            Used {t.usageCount} of {t.usageLimit || 1}
          </span>
          <span aria-hidden>·</span>
          <span title={formatDateTime(t.expiresAt)}>
            {expired ? "expired" : "expires"} {formatRelative(t.expiresAt)}
          </span>
          <span aria-hidden>·</span>
          <span title={formatDateTime(t.createdAt)}>
            created {formatDate(t.createdAt)} by {t.createdByEmail || "—"}
          </span>
        </span>
      }
      controls={
        live && (
          <Confirm
            trigger={<Button size="sm">Revoke</Button>}
            title="Revoke this enrollment token?"
            description="Servers that have not enrolled yet can't use it any more. Nodes that already enrolled with it stay."
            confirmLabel="Revoke token"
            onConfirm={async () => {
              try {
                await clusters.revokeEnrollmentToken({ tokenId: t.id });
                await invalidate(ClusterService.method.listEnrollmentTokens);
                toast.success("Enrollment token revoked");
              } catch (err) {
                toast.error("Couldn't revoke the token", err);
                throw err;
              }
            }}
          />
        )
      }
    />
  );
}

function Tokens({ clusterId }: { clusterId: string }) {
  const q = useQuery(ClusterService.method.listEnrollmentTokens, { clusterId });
  const [showOld, setShowOld] = useState(false);
  const list = q.data?.tokens ?? [];
  const isLive = (t: EnrollmentToken) => !t.revoked && (toDate(t.expiresAt)?.getTime() ?? 0) > Date.now() && !(t.usageLimit > 0 && t.usageCount >= t.usageLimit);
  const shown = showOld ? list : list.filter(isLive);
  const hidden = list.length - list.filter(isLive).length;
  return (
    <Card className="mt-6">
      <CardHeader
        title="Enrollment tokens"
        description="Tokens that let new servers join. Each setup command carries one."
        actions={
          hidden > 0 && (
            <Button size="sm" variant="ghost" onClick={() => setShowOld(!showOld)}>
              {showOld ? "Hide used and expired" : `Show used and expired (${hidden})`}
            </Button>
          )
        }
      />
      {q.isPending ? (
        <SkeletonRows rows={2} label="Loading enrollment tokens" />
      ) : q.isError ? (
        <ErrorState error={q.error} onRetry={() => void q.refetch()} />
      ) : shown.length === 0 ? (
        <p className="px-4 py-5 text-sm text-muted sm:px-5">No usable tokens. “Add node” makes one.</p>
      ) : (
        <ul className="divide-y divide-line" aria-label="Enrollment tokens">
          {shown.map((t) => (
            <TokenRow key={t.id} t={t} />
          ))}
        </ul>
      )}
    </Card>
  );
}

function Stat({ label, value, tone }: { label: string; value: React.ReactNode; tone?: string }) {
  return (
    <div className="min-w-0">
      <div className="text-xs text-muted">{label}</div>
      <div className={cx("text-lg font-semibold tabular-nums", tone)}>{value}</div>
    </div>
  );
}

export default function Cluster() {
  const { id } = useParams<{ id: string }>();
  const [, navigate] = useLocation();
  const [adding, setAdding] = useState(false);
  const q = useQuery(ClusterService.method.getCluster, { clusterId: id }, { refetchInterval: 15_000 });
  const watch = useWatchNodes(q.data?.cluster ? id : undefined);
  const now = useNow();
  const cluster = q.data?.cluster;
  const nodes = watch.nodes;
  useTitle(cluster?.name ?? "Cluster");

  // The counts in the header follow the live list.
  const nodeKey = nodes?.map((n) => `${n.id}:${n.state}`).join(",");
  useEffect(() => {
    if (nodeKey !== undefined) void invalidate(ClusterService.method.getCluster, ClusterService.method.listClusters, ClusterService.method.listEnrollmentTokens);
  }, [nodeKey]);

  const counts = useMemo(() => {
    const list = nodes ?? [];
    return {
      total: list.length,
      ready: list.filter((n) => n.state === NodeState.READY).length,
      managers: list.filter((n) => n.role === NodeRole.MANAGER).length,
      workers: list.filter((n) => n.role === NodeRole.WORKER).length,
      trouble: list.filter((n) => n.state === NodeState.DOWN || n.state === NodeState.UNREACHABLE).length,
    };
  }, [nodes]);

  if (q.isPending) return <Spinner label="Loading the cluster" />;
  if (q.isError || !cluster)
    return (
      <Card>
        <ErrorState error={q.error} title="Couldn't load the cluster" onRetry={() => void q.refetch()} />
      </Card>
    );

  const addNode = (
    <Button variant="primary" icon={<Plus className="size-4" aria-hidden />} onClick={() => setAdding(true)}>
      Add node
    </Button>
  );
  return (
    <>
      <Link href="/admin/clusters" className="mb-3 inline-flex items-center gap-1 text-[13px] text-muted hover:text-fg">
        <ArrowLeft className="size-3.5" aria-hidden /> Clusters
      </Link>
      <PageHeader
        title={
          <span className="flex flex-wrap items-center gap-2">
            {cluster.name} <ClusterStateBadge cluster={cluster} />
            {cluster.overlayEncryption && (
              <Badge>
                <Lock className="size-3" aria-hidden /> Encrypted overlay
              </Badge>
            )}
          </span>
        }
        description={cluster.swarmId ? `Swarm ${cluster.swarmId}` : "No swarm yet: its first manager creates it."}
        actions={
          <>
            <LiveIndicator status={watch.status} />
            <Confirm
              trigger={
                <Button icon={<Trash2 className="size-4" aria-hidden />} disabled={counts.total > 0} title={counts.total > 0 ? "Remove its nodes first" : undefined}>
                  Delete
                </Button>
              }
              title={`Delete ${cluster.name}?`}
              description="The cluster has no nodes left. Its unused enrollment tokens stop working."
              confirmLabel="Delete cluster"
              onConfirm={async () => {
                try {
                  await clusters.deleteCluster({ clusterId: cluster.id });
                  await invalidate(ClusterService.method.listClusters);
                  toast.success(`Cluster “${cluster.name}” deleted`);
                  navigate("/admin/clusters");
                } catch (err) {
                  toast.error("Couldn't delete the cluster", err);
                  throw err;
                }
              }}
            />
            {addNode}
          </>
        }
      />
      {cluster.error && (
        <div className="mb-4">
          <Banner>{cluster.error}</Banner>
        </div>
      )}
      <Card className="mb-6 grid grid-cols-2 gap-4 p-4 sm:grid-cols-4 sm:p-5">
        <Stat label="Nodes ready" value={nodes ? `${counts.ready} / ${counts.total}` : <Skeleton className="mt-1 h-5 w-12" />} />
        <Stat label="Managers" value={nodes ? counts.managers : <Skeleton className="mt-1 h-5 w-8" />} />
        <Stat label="Workers" value={nodes ? counts.workers : <Skeleton className="mt-1 h-5 w-8" />} />
        <Stat label="Down or unreachable" value={nodes ? counts.trouble : <Skeleton className="mt-1 h-5 w-8" />} tone={counts.trouble ? "text-danger" : undefined} />
      </Card>
      {nodes?.some((n) => n.state === NodeState.DOWN || n.state === NodeState.UNREACHABLE) && (
        <div className="mb-4 space-y-2">
          {nodes
            .filter((n) => n.state === NodeState.DOWN || n.state === NodeState.UNREACHABLE)
            .map((n) => (
              <div key={n.id}>
                <div className="mb-1 text-[13px] font-medium">{n.hostname}</div>
                <HealthNote node={n} peerName={(pid) => nodes.find((p) => p.id === pid)?.hostname ?? pid.slice(0, 8)} />
              </div>
            ))}
        </div>
      )}
      <Card>
        <CardHeader title="Nodes" description="Live: states and usage update as nodes report." />
        {nodes === undefined ? (
          watch.error ? (
            <ErrorState error={watch.error} />
          ) : (
            <SkeletonRows rows={3} label="Loading nodes" />
          )
        ) : nodes.length === 0 ? (
          <EmptyState icon={<Server className="size-5" aria-hidden />} title="No nodes yet" action={addNode}>
            Add a server: you get a one-line command to run on it, and it shows up here as soon as it enrolls.
          </EmptyState>
        ) : (
          <NodeTable nodes={nodes} now={now} />
        )}
      </Card>
      <Tokens clusterId={cluster.id} />
      <AddNodeDialog open={adding} onOpenChange={setAdding} cluster={cluster} nodes={nodes} />
    </>
  );
}
