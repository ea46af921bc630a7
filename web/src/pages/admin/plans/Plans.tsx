// /admin/plans: the sizes apps run at. Create and edit them (CPU in cores, memory in MiB, a
// price per replica-hour entered as an amount and sent in minor units), and retire them.
import { useQuery } from "@connectrpc/connect-query";
import { Archive, Pencil, Plus, Tags } from "lucide-react";
import { useState } from "react";
import { Confirm, Dialog } from "../../../components/dialog";
import { toast } from "../../../components/toast";
import { Badge, Banner, Button, Card, EmptyState, ErrorState, Field, Input, ListRow, PageHeader, SkeletonRows, Toggle } from "../../../components/ui";
import { PlanService, type Plan } from "../../../gen/skypanel/plan/v1/plan_pb";
import { invalidate } from "../../../lib/api";
import { decimalToMinor, formatCores, formatMiB, formatPricePerHour, minorToDecimal, plans } from "../../../lib/apps";
import { useApiForm } from "../../../lib/forms";
import { formatDate } from "../../../lib/format";

interface Draft {
  name: string;
  cores: string;
  memory: string;
  price: string;
  currency: string;
  maxReplicas: string;
  maxApps: string;
  description: string;
}

const blank: Draft = { name: "", cores: "0.5", memory: "512", price: "0.01", currency: "USD", maxReplicas: "3", maxApps: "10", description: "" };

const fieldOf: Record<keyof Draft, string> = {
  name: "plan.name",
  cores: "plan.cpu_millis",
  memory: "plan.memory_mib",
  price: "plan.price_per_hour",
  currency: "plan.currency",
  maxReplicas: "plan.max_replicas",
  maxApps: "plan.max_apps",
  description: "plan.description",
};

function draftOf(p: Plan): Draft {
  return {
    name: p.name,
    cores: String(p.cpuMillis / 1000),
    memory: String(p.memoryMib),
    price: minorToDecimal(p.pricePerHour, p.currency),
    currency: p.currency,
    maxReplicas: String(p.maxReplicas),
    maxApps: String(p.maxApps),
    description: p.description,
  };
}

function PlanDialog({ open, onOpenChange, plan }: { open: boolean; onOpenChange: (o: boolean) => void; plan?: Plan }) {
  const [d, setD] = useState<Draft>(plan ? draftOf(plan) : blank);
  const form = useApiForm((k) => k.startsWith("plan."));
  const f = form.fields;
  const set = (patch: Partial<Draft>) => {
    setD((x) => ({ ...x, ...patch }));
    // A field's error goes once it is edited.
    const gone = Object.keys(patch).map((k) => fieldOf[k as keyof Draft]);
    if (gone.some((k) => k in form.fields)) form.setFields(Object.fromEntries(Object.entries(form.fields).filter(([k]) => !gone.includes(k))));
  };

  function close(o: boolean) {
    onOpenChange(o);
    if (!o) {
      setD(plan ? draftOf(plan) : blank);
      form.reset();
    }
  }

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const errs: Record<string, string> = {};
    const currency = d.currency.trim().toUpperCase();
    const cores = Number(d.cores);
    const millis = Math.round(cores * 1000);
    const mem = Number(d.memory);
    const reps = Number(d.maxReplicas);
    const maxApps = Number(d.maxApps);
    if (!d.name.trim()) errs["plan.name"] = "Give the plan a name.";
    if (!(millis >= 10 && millis <= 64000)) errs["plan.cpu_millis"] = "From 0.01 to 64 cores.";
    if (!Number.isInteger(mem) || mem < 6 || mem > 262144) errs["plan.memory_mib"] = "A whole number of MiB from 6 to 262144.";
    if (!/^[A-Z]{3}$/.test(currency)) errs["plan.currency"] = "A three-letter ISO code, e.g. USD or EUR.";
    const price = decimalToMinor(d.price, /^[A-Z]{3}$/.test(currency) ? currency : "USD");
    if (price.error) errs["plan.price_per_hour"] = price.error;
    if (!Number.isInteger(reps) || reps < 1 || reps > 100) errs["plan.max_replicas"] = "A whole number from 1 to 100.";
    if (!Number.isInteger(maxApps) || maxApps < 1 || maxApps > 10000) errs["plan.max_apps"] = "A whole number from 1 to 10000.";
    if (d.description.length > 500) errs["plan.description"] = "At most 500 characters.";
    if (Object.keys(errs).length) return form.setFields(errs);
    const fields = {
      name: d.name.trim(),
      cpuMillis: millis,
      memoryMib: mem,
      pricePerHour: price.minor!,
      currency,
      maxReplicas: reps,
      maxApps,
      description: d.description.trim(),
    };
    const res = await form.run(async () => (plan ? (await plans.updatePlan({ planId: plan.id, plan: fields })).plan : (await plans.createPlan({ plan: fields })).plan));
    if (!res) return;
    await invalidate(PlanService.method.listPlans);
    toast.success(plan ? `Plan “${fields.name}” saved` : `Plan “${fields.name}” created`);
    close(false);
  }

  const cur = /^[A-Z]{3}$/.test(d.currency.trim().toUpperCase()) ? d.currency.trim().toUpperCase() : "USD";
  const preview = decimalToMinor(d.price, cur);
  return (
    <Dialog open={open} onOpenChange={close} wide title={plan ? `Edit ${plan.name}` : "Create a plan"} description="What each replica of an app on this plan gets, and costs.">
      <form onSubmit={submit} noValidate className="space-y-4">
        {form.formError && <Banner>{form.formError}</Banner>}
        {plan && <Banner tone="accent">Changes apply to new deployments; running apps keep their size until they next deploy.</Banner>}
        <Field label="Name" error={f["plan.name"]}>
          {(p) => <Input {...p} autoFocus value={d.name} onChange={(e) => set({ name: e.target.value })} placeholder="Small" maxLength={64} />}
        </Field>
        <div className="grid gap-4 sm:grid-cols-2">
          <Field label="CPU (cores)" hint={`${Math.round(Number(d.cores) * 1000) || 0} millicores per replica`} error={f["plan.cpu_millis"]}>
            {(p) => <Input {...p} type="number" inputMode="decimal" step="0.01" min={0.01} max={64} value={d.cores} onChange={(e) => set({ cores: e.target.value })} />}
          </Field>
          <Field label="Memory (MiB)" hint={Number(d.memory) > 0 ? `${formatMiB(Number(d.memory))} per replica` : undefined} error={f["plan.memory_mib"]}>
            {(p) => <Input {...p} type="number" inputMode="numeric" min={6} max={262144} value={d.memory} onChange={(e) => set({ memory: e.target.value })} />}
          </Field>
          <Field
            label="Price per hour"
            hint={preview.minor !== undefined ? `Per replica: ${formatPricePerHour({ pricePerHour: preview.minor, currency: cur })} (${preview.minor} minor units)` : undefined}
            error={f["plan.price_per_hour"]}
          >
            {(p) => <Input {...p} inputMode="decimal" value={d.price} onChange={(e) => set({ price: e.target.value })} placeholder="0.01" />}
          </Field>
          <Field label="Currency" error={f["plan.currency"]}>
            {(p) => <Input {...p} value={d.currency} onChange={(e) => set({ currency: e.target.value.toUpperCase() })} maxLength={3} placeholder="USD" className="w-24 font-mono uppercase" />}
          </Field>
          <Field label="Max replicas" hint="Per app." error={f["plan.max_replicas"]}>
            {(p) => <Input {...p} type="number" inputMode="numeric" min={1} max={100} value={d.maxReplicas} onChange={(e) => set({ maxReplicas: e.target.value })} />}
          </Field>
          <Field label="Max apps" hint="Per organization." error={f["plan.max_apps"]}>
            {(p) => <Input {...p} type="number" inputMode="numeric" min={1} max={10000} value={d.maxApps} onChange={(e) => set({ maxApps: e.target.value })} />}
          </Field>
        </div>
        <Field label="Description" hint="Optional; shown when choosing a plan." error={f["plan.description"]}>
          {(p) => (
            <textarea
              {...p}
              rows={2}
              maxLength={500}
              value={d.description}
              onChange={(e) => set({ description: e.target.value })}
              className="w-full rounded-md border border-line bg-surface px-3 py-2 text-sm shadow-sm focus:border-accent"
            />
          )}
        </Field>
        <div className="flex flex-col-reverse gap-2 pt-1 sm:flex-row sm:justify-end">
          <Button onClick={() => close(false)}>Cancel</Button>
          <Button type="submit" variant="primary" loading={form.pending}>
            {plan ? "Save plan" : "Create plan"}
          </Button>
        </div>
      </form>
    </Dialog>
  );
}

function PlanRow({ p }: { p: Plan }) {
  const [editing, setEditing] = useState(false);
  return (
    <ListRow
      data-plan={p.name}
      lead={
        <div className="grid size-8 place-items-center rounded-full bg-subtle text-muted">
          <Tags className="size-4" aria-hidden />
        </div>
      }
      title={
        <>
          <span>{p.name}</span>
          {p.retired && <Badge>Retired</Badge>}
          <span className="font-normal text-muted">{formatPricePerHour(p)}</span>
        </>
      }
      details={
        <span className="flex flex-col gap-0.5">
          <span>
            {formatCores(p.cpuMillis)} · {formatMiB(p.memoryMib)} per replica · up to {p.maxReplicas} replicas · {p.maxApps} apps per organization
          </span>
          {p.description && <span>{p.description}</span>}
          <span className="text-xs">Created {formatDate(p.createdAt)}</span>
        </span>
      }
      controls={
        !p.retired && (
          <>
            <Button size="sm" icon={<Pencil className="size-3.5" aria-hidden />} onClick={() => setEditing(true)} aria-label={`Edit ${p.name}`}>
              Edit
            </Button>
            <Confirm
              trigger={
                <Button size="sm" icon={<Archive className="size-3.5" aria-hidden />} aria-label={`Retire ${p.name}`}>
                  Retire
                </Button>
              }
              title={`Retire ${p.name}?`}
              description="New apps can't choose it any more. Apps already on it keep running on it. This can't be undone."
              confirmLabel="Retire plan"
              onConfirm={async () => {
                try {
                  await plans.retirePlan({ planId: p.id });
                  await invalidate(PlanService.method.listPlans);
                  toast.success(`Plan “${p.name}” retired`);
                } catch (err) {
                  toast.error("Couldn't retire the plan", err);
                  throw err;
                }
              }}
            />
            {editing && <PlanDialog open={editing} onOpenChange={setEditing} plan={p} />}
          </>
        )
      }
    />
  );
}

export default function Plans() {
  const [showRetired, setShowRetired] = useState(false);
  const [creating, setCreating] = useState(false);
  const q = useQuery(PlanService.method.listPlans, { includeRetired: showRetired }, { placeholderData: (prev) => prev });
  const list = [...(q.data?.plans ?? [])].sort((a, b) => Number(a.retired) - Number(b.retired) || a.cpuMillis - b.cpuMillis || a.memoryMib - b.memoryMib);
  const create = (
    <Button variant="primary" icon={<Plus className="size-4" aria-hidden />} onClick={() => setCreating(true)}>
      Create plan
    </Button>
  );
  return (
    <>
      <PageHeader title="Plans" description="The sizes organizations can run apps at, and their prices." actions={create} />
      <div className="mb-3 flex justify-end">
        <label className="inline-flex items-center gap-2 text-sm text-muted">
          <Toggle checked={showRetired} onChange={setShowRetired} aria-label="Show retired plans" />
          <span aria-hidden>Show retired plans</span>
        </label>
      </div>
      <Card>
        {q.isPending ? (
          <SkeletonRows label="Loading plans" />
        ) : q.isError ? (
          <ErrorState error={q.error} onRetry={() => void q.refetch()} />
        ) : list.length === 0 ? (
          <EmptyState icon={<Tags className="size-5" aria-hidden />} title="No plans yet" action={create}>
            Organizations need at least one plan to create apps.
          </EmptyState>
        ) : (
          <ul className="divide-y divide-line" aria-label="Plans">
            {list.map((p) => (
              <PlanRow key={p.id} p={p} />
            ))}
          </ul>
        )}
      </Card>
      <PlanDialog open={creating} onOpenChange={setCreating} />
    </>
  );
}
