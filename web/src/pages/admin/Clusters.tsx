// /admin/clusters: every Docker Swarm cluster, and creating one.
import { Code, ConnectError } from "@connectrpc/connect";
import { useQuery } from "@connectrpc/connect-query";
import { ChevronRight, Lock, Plus, Server } from "lucide-react";
import { useState } from "react";
import { Link, useLocation } from "wouter";
import { parseAmount } from "../../components/billing";
import { Dialog } from "../../components/dialog";
import { Select } from "../../components/select";
import { toast } from "../../components/toast";
import { Badge, Banner, Button, Card, EmptyState, ErrorState, Field, Input, PageHeader, SkeletonRows, cx } from "../../components/ui";
import { AdminService } from "../../gen/skypanel/admin/v1/admin_pb";
import { ClusterService, type Cluster } from "../../gen/skypanel/cluster/v1/cluster_pb";
import { invalidate } from "../../lib/api";
import { clusters } from "../../lib/clusters";
import { formatDate } from "../../lib/format";
import { useApiForm } from "../../lib/forms";
import { ClusterStateBadge } from "./cluster-ui";

/** Switch is an on/off control (a button with role switch). */
export function Switch({ checked, onChange, id, ...rest }: { checked: boolean; onChange: (v: boolean) => void; id?: string; "aria-describedby"?: string }) {
  return (
    <button
      type="button"
      role="switch"
      id={id}
      aria-checked={checked}
      onClick={() => onChange(!checked)}
      className={cx("relative inline-flex h-5 w-9 shrink-0 items-center rounded-full border border-transparent transition-colors", checked ? "bg-accent" : "bg-line")}
      {...rest}
    >
      <span aria-hidden className={cx("inline-block size-4 rounded-full bg-white shadow transition-transform", checked ? "translate-x-4" : "translate-x-0.5")} />
    </button>
  );
}

function CreateClusterDialog({ open, onOpenChange }: { open: boolean; onOpenChange: (o: boolean) => void }) {
  const [, navigate] = useLocation();
  const [name, setName] = useState("");
  const [org, setOrg] = useState("shared");
  const [encrypt, setEncrypt] = useState(false);
  const [price, setPrice] = useState("");
  const form = useApiForm(["name", "dedicated_organization_id", "overlay_encryption", "price_per_hour", "currency"]);
  const orgs = useQuery(AdminService.method.listOrganizations, { query: "", pageSize: 200, pageToken: "" }, { enabled: open });

  function close(o: boolean) {
    onOpenChange(o);
    if (!o) {
      setName("");
      setOrg("shared");
      setEncrypt(false);
      setPrice("");
      form.reset();
    }
  }

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    // The price is typed in major units (e.g. 25.00) of the platform's usual currency; the
    // API takes minor units and checks the organization's wallet currency.
    const parsed = org === "shared" || price.trim() === "" ? { minor: 0n } : parseAmount(price, "USD");
    if (parsed.error) {
      form.setFieldError("price_per_hour", parsed.error);
      return;
    }
    let taken = false;
    const res = await form.run(async () => {
      try {
        return await clusters.createCluster({
          name: name.trim(),
          dedicatedOrganizationId: org === "shared" ? "" : org,
          overlayEncryption: encrypt,
          pricePerHour: parsed.minor ?? 0n,
        });
      } catch (err) {
        if (err instanceof ConnectError && err.code === Code.AlreadyExists) {
          taken = true;
          return undefined;
        }
        throw err;
      }
    });
    if (taken) form.setFieldError("name", "A cluster with this name exists already.");
    if (!res?.cluster) return;
    await invalidate(ClusterService.method.listClusters);
    toast.success(`Cluster “${res.cluster.name}” created`, "Add its first node: a manager.");
    close(false);
    navigate(`/admin/clusters/${res.cluster.id}`);
  }

  const options = [
    { value: "shared", label: "Shared", description: "Runs any organization's apps." },
    ...(orgs.data?.organizations ?? []).map((o) => ({ value: o.id, label: o.name, description: `Only ${o.slug}` })),
  ];
  return (
    <Dialog open={open} onOpenChange={close} title="Create a cluster" description="A cluster is one Docker Swarm. Its nodes join it with an enrollment token.">
      <form onSubmit={submit} noValidate className="space-y-4">
        {form.formError && <Banner>{form.formError}</Banner>}
        <Field label="Name" hint="e.g. “eu-west-1” or “edge”." error={form.fields.name}>
          {(p) => <Input {...p} autoFocus maxLength={64} value={name} onChange={(e) => setName(e.target.value)} />}
        </Field>
        <Field label="Organization" hint="A dedicated cluster runs one organization's apps only." error={form.fields.dedicated_organization_id}>
          {(p) => <Select {...p} value={org} onValueChange={setOrg} options={options} />}
        </Field>
        {org !== "shared" && (
          <Field
            label="Price per hour"
            hint="Billed to the organization hourly, in its wallet's currency, from now until the cluster is deleted. Empty: not billed."
            error={form.fields.price_per_hour ?? form.fields.currency}
          >
            {(p) => <Input {...p} inputMode="decimal" placeholder="25.00" value={price} onChange={(e) => setPrice(e.target.value)} />}
          </Field>
        )}
        <Field
          label="Encrypt overlay networks"
          hint="IPsec between nodes for app traffic. Needs kernel support (the ESP module) on every node; nodes without it report it."
          error={form.fields.overlay_encryption}
        >
          {(p) => (
            <div className="flex items-center gap-2.5">
              <Switch id={p.id} aria-describedby={p["aria-describedby"]} checked={encrypt} onChange={setEncrypt} />
              <span className="text-sm text-muted">{encrypt ? "On" : "Off"}</span>
            </div>
          )}
        </Field>
        <div className="flex flex-col-reverse gap-2 pt-1 sm:flex-row sm:justify-end">
          <Button onClick={() => close(false)}>Cancel</Button>
          <Button type="submit" variant="primary" loading={form.pending}>
            Create cluster
          </Button>
        </div>
      </form>
    </Dialog>
  );
}

function ClusterRow({ c, orgName }: { c: Cluster; orgName?: string }) {
  const total = c.managerCount + c.workerCount;
  return (
    <li data-cluster={c.name}>
      <Link href={`/admin/clusters/${c.id}`} className="flex items-center gap-3 px-4 py-3 hover:bg-subtle/60 sm:px-5">
        <div className="grid size-8 shrink-0 place-items-center rounded-md bg-accent-soft text-accent">
          <Server className="size-4" aria-hidden />
        </div>
        <div className="min-w-0 flex-1">
          <div className="flex flex-wrap items-center gap-x-2 gap-y-1 text-sm font-medium">
            <span className="truncate">{c.name}</span>
            <ClusterStateBadge cluster={c} />
            {c.dedicatedOrganizationId && <Badge tone="accent">Dedicated{orgName ? `: ${orgName}` : ""}</Badge>}
            {c.overlayEncryption && (
              <Badge>
                <Lock className="size-3" aria-hidden /> Encrypted overlay
              </Badge>
            )}
          </div>
          <div className="mt-0.5 text-[13px] text-muted">
            {total === 0 ? "No nodes yet" : `${c.readyCount} of ${total} ${total === 1 ? "node" : "nodes"} ready · ${c.managerCount} ${c.managerCount === 1 ? "manager" : "managers"}, ${c.workerCount} ${c.workerCount === 1 ? "worker" : "workers"}`}{" "}
            · created {formatDate(c.createdAt)}
          </div>
          {c.error && <div className="mt-0.5 text-[13px] text-danger">{c.error}</div>}
        </div>
        <ChevronRight className="size-4 shrink-0 text-muted" aria-hidden />
      </Link>
    </li>
  );
}

export default function Clusters() {
  const [creating, setCreating] = useState(false);
  const q = useQuery(ClusterService.method.listClusters, {}, { refetchInterval: 15_000 });
  const orgs = useQuery(AdminService.method.listOrganizations, { query: "", pageSize: 200, pageToken: "" });
  const orgName = (id: string) => orgs.data?.organizations.find((o) => o.id === id)?.name;
  const list = q.data?.clusters ?? [];
  const create = (
    <Button variant="primary" icon={<Plus className="size-4" aria-hidden />} onClick={() => setCreating(true)}>
      Create cluster
    </Button>
  );
  return (
    <>
      <PageHeader title="Clusters" description="The Docker Swarm clusters apps run on, and their nodes." actions={create} />
      <Card>
        {q.isPending ? (
          <SkeletonRows rows={3} label="Loading clusters" />
        ) : q.isError ? (
          <ErrorState error={q.error} onRetry={() => void q.refetch()} />
        ) : list.length === 0 ? (
          <EmptyState icon={<Server className="size-5" aria-hidden />} title="No clusters yet" action={create}>
            Create a cluster, then add servers to it with a one-line setup command.
          </EmptyState>
        ) : (
          <ul className="divide-y divide-line" aria-label="Clusters">
            {list.map((c) => (
              <ClusterRow key={c.id} c={c} orgName={orgName(c.dedicatedOrganizationId)} />
            ))}
          </ul>
        )}
      </Card>
      <CreateClusterDialog open={creating} onOpenChange={setCreating} />
    </>
  );
}
