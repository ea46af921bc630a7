// /o/<slug>/apps/new: the create-app wizard. Image and port, then a plan and replicas, then
// environment, command and health check, then a review; Create makes the app and opens it,
// where its first deployment runs live. Problems the API finds go next to their field, on
// the step that has it.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { useQuery } from "@connectrpc/connect-query";
import { ArrowLeft, ArrowRight, Check, Lock, Rocket } from "lucide-react";
import { useEffect, useState, type ReactNode } from "react";
import { Link, useLocation } from "wouter";
import { EnvEditor } from "../../../components/env-editor";
import { toast } from "../../../components/toast";
import { Banner, Button, Card, EmptyState, ErrorState, Field, Input, PageHeader, SkeletonRows, Toggle, cx } from "../../../components/ui";
import { AppService, type HealthCheckSchema } from "../../../gen/skypanel/app/v1/app_pb";
import { PlanService } from "../../../gen/skypanel/plan/v1/plan_pb";
import { invalidate } from "../../../lib/api";
import {
  apps,
  canOperate,
  checkAppName,
  checkRows,
  envErrors,
  envFromRows,
  formatCores,
  formatMiB,
  formatPricePerHour,
  splitCommand,
  type EnvRow,
} from "../../../lib/apps";
import { useApiForm } from "../../../lib/forms";
import { orgPath, useOrg } from "../../../lib/org";
import { PlanPicker } from "./app-ui";

const stepNames = ["Image", "Plan", "Environment", "Review"] as const;

/** stepOf is the wizard step that shows a request field, or -1 when none does. */
function stepOf(field: string): number {
  if (field === "name" || field === "spec.image" || field === "spec.port" || field.startsWith("spec.registry_auth")) return 0;
  if (field === "plan_id" || field === "spec.replicas") return 1;
  if (field.startsWith("spec.env") || field.startsWith("spec.command") || field.startsWith("spec.health_check")) return 2;
  return -1;
}

function Steps({ current }: { current: number }) {
  return (
    <ol className="mb-6 flex flex-wrap gap-x-2 gap-y-2 text-sm" aria-label="Steps">
      {stepNames.map((s, i) => (
        <li key={s} aria-current={i === current ? "step" : undefined} className="flex items-center gap-2">
          <span
            className={cx(
              "grid size-6 place-items-center rounded-full text-xs font-semibold",
              i < current ? "bg-success-soft text-success" : i === current ? "bg-accent text-accent-fg" : "bg-subtle text-muted",
            )}
            aria-hidden
          >
            {i < current ? <Check className="size-3.5" /> : i + 1}
          </span>
          <span className={cx(i === current ? "font-medium" : "text-muted", i !== current && "hidden sm:inline")}>{s}</span>
          {i < stepNames.length - 1 && <span aria-hidden className="mx-1 hidden h-px w-6 bg-line sm:block" />}
        </li>
      ))}
    </ol>
  );
}

function Review({ rows }: { rows: [string, ReactNode][] }) {
  return (
    <dl className="grid gap-x-6 gap-y-3 text-sm sm:grid-cols-[max-content_1fr]">
      {rows.map(([k, v]) => (
        <div key={k} className="contents">
          <dt className="text-muted">{k}</dt>
          <dd className="min-w-0 break-words">{v}</dd>
        </div>
      ))}
    </dl>
  );
}

const secs = (s: string) => (s.trim() === "" ? undefined : { seconds: BigInt(Math.round(Number(s))) });

export default function NewApp() {
  const org = useOrg();
  const [, navigate] = useLocation();
  const plansQ = useQuery(PlanService.method.listPlans, { includeRetired: false });
  const planList = (plansQ.data?.plans ?? []).filter((p) => !p.retired);

  const [step, setStep] = useState(0);
  const [name, setName] = useState("");
  const [image, setImage] = useState("");
  const [port, setPort] = useState("8080");
  const [privateReg, setPrivateReg] = useState(false);
  const [regServer, setRegServer] = useState("");
  const [regUser, setRegUser] = useState("");
  const [regPass, setRegPass] = useState("");
  const [planId, setPlanId] = useState("");
  const [replicas, setReplicas] = useState("1");
  const [rows, setRows] = useState<EnvRow[]>([]);
  const [command, setCommand] = useState("");
  const [hc, setHc] = useState(false);
  const [hcCommand, setHcCommand] = useState("");
  const [hcInterval, setHcInterval] = useState("5");
  const [hcTimeout, setHcTimeout] = useState("3");
  const [hcRetries, setHcRetries] = useState("3");
  const [hcStart, setHcStart] = useState("0");
  const form = useApiForm((k) => stepOf(k) >= 0);
  const f = form.fields;

  const plan = planList.find((p) => p.id === planId) ?? (planList.length === 1 ? planList[0] : undefined);
  const { index } = envFromRows(rows);
  const rowErrors = envErrors(f, index);

  // After a failed Create, the first step with a problem is shown.
  useEffect(() => {
    const bad = Object.keys(f).map(stepOf).filter((s) => s >= 0);
    if (bad.length) setStep((cur) => Math.min(cur, ...bad));
  }, [f]);

  if (!canOperate(org.role)) {
    return (
      <>
        <PageHeader title="Create an app" />
        <Card>
          <EmptyState title="Viewers can't create apps">Ask an admin of {org.name} for the member role.</EmptyState>
        </Card>
      </>
    );
  }

  /** check finds problems on a step before moving on; true when there are none. */
  function check(s: number): boolean {
    const errs: Record<string, string> = {};
    if (s === 0) {
      const n = checkAppName(name.trim());
      if (n) errs.name = n;
      if (!image.trim()) errs["spec.image"] = "Enter the image to run, e.g. nginx:1.27.";
      else if (/\s/.test(image.trim())) errs["spec.image"] = "An image reference has no spaces.";
      const p = Number(port);
      if (port.trim() !== "" && (!Number.isInteger(p) || p < 0 || p > 65535)) errs["spec.port"] = "A port from 1 to 65535, or empty.";
      if (privateReg && !regUser.trim()) errs["spec.registry_auth.username"] = "Enter the user name.";
      if (privateReg && !regPass) errs["spec.registry_auth.password"] = "Enter the password or access token.";
    }
    if (s === 1) {
      if (!plan) errs.plan_id = "Choose a plan.";
      const r = Number(replicas);
      const max = plan?.maxReplicas ?? 100;
      if (!Number.isInteger(r) || r < 0 || r > max) errs["spec.replicas"] = `A whole number from 0 to ${max}.`;
    }
    if (s === 2) {
      const re = checkRows(rows);
      const idx = envFromRows(rows).index;
      for (const [k, v] of Object.entries(re)) {
        const [row, part] = k.split(".");
        const i = idx.indexOf(Number(row));
        errs[`spec.env[${i}].${part}`] = v;
      }
      const c = splitCommand(command);
      if (c.error) errs["spec.command"] = c.error;
      if (hc) {
        const h = splitCommand(hcCommand);
        if (h.error) errs["spec.health_check.command"] = h.error;
        else if (!h.args.length) errs["spec.health_check.command"] = "Enter the command that checks the app, e.g. curl -f http://localhost:8080/healthz.";
        for (const [k, v] of [
          ["interval", hcInterval],
          ["timeout", hcTimeout],
          ["start_period", hcStart],
        ] as const) {
          if (v.trim() !== "" && !(Number(v) >= 0)) errs[`spec.health_check.${k}`] = "A number of seconds.";
        }
        if (hcRetries.trim() !== "" && !(Number.isInteger(Number(hcRetries)) && Number(hcRetries) >= 0)) errs["spec.health_check.retries"] = "A whole number.";
      }
    }
    // Problems of other steps (from the API) stay until their step is checked again.
    form.setFields((prev) => ({ ...Object.fromEntries(Object.entries(prev).filter(([k]) => stepOf(k) !== s && stepOf(k) >= 0)), ...errs }));
    form.setFormError("");
    return Object.keys(errs).length === 0;
  }

  function next() {
    if (check(step)) setStep(step + 1);
  }

  async function create() {
    for (let s = 0; s < 3; s++) {
      if (!check(s)) return setStep(s);
    }
    const { env } = envFromRows(rows);
    const healthCheck: MessageInitShape<typeof HealthCheckSchema> | undefined = hc
      ? {
          command: splitCommand(hcCommand).args,
          interval: secs(hcInterval),
          timeout: secs(hcTimeout),
          retries: hcRetries.trim() === "" ? 0 : Number(hcRetries),
          startPeriod: secs(hcStart),
        }
      : undefined;
    const res = await form.run(() =>
      apps.createApp({
        organizationId: org.id,
        name: name.trim(),
        planId: plan!.id,
        spec: {
          image: image.trim(),
          port: port.trim() === "" ? 0 : Number(port),
          env,
          command: splitCommand(command).args,
          healthCheck,
          replicas: Number(replicas),
          registryAuth: privateReg ? { server: regServer.trim(), username: regUser.trim(), password: regPass } : undefined,
        },
      }),
    );
    if (!res) return;
    await invalidate(AppService.method.listApps);
    toast.success(`${res.app?.name ?? name} created`, res.deployment ? `Deploying release ${res.deployment.releaseVersion || 1}…` : undefined);
    navigate(orgPath(org.slug, `apps/${res.app?.id}`));
  }

  return (
    <>
      <Link href={orgPath(org.slug, "apps")} className="mb-3 inline-flex items-center gap-1 text-[13px] text-muted hover:text-fg">
        <ArrowLeft className="size-3.5" aria-hidden /> Apps
      </Link>
      <PageHeader title="Create an app" description="Run a container image with a URL of its own." />
      <Steps current={step} />
      <Card>
        <form
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            if (step < 3) next();
            else void create();
          }}
        >
          <div className="space-y-5 p-4 sm:p-5">
            {form.formError && (
              <Banner>
                <strong className="font-medium">Couldn't create the app.</strong> {form.formError}
              </Banner>
            )}
            {step === 0 && (
              <>
                <h2 className="text-[15px] font-semibold">Image</h2>
                <Field label="App name" hint="Lower-case letters, digits and hyphens; part of the app's address." error={f.name}>
                  {(p) => <Input {...p} autoFocus value={name} onChange={(e) => setName(e.target.value.toLowerCase())} placeholder="web" autoComplete="off" spellCheck={false} maxLength={30} />}
                </Field>
                <Field label="Image" hint="From Docker Hub or any registry, e.g. nginx:1.27 or ghcr.io/acme/api:v2." error={f["spec.image"]}>
                  {(p) => <Input {...p} value={image} onChange={(e) => setImage(e.target.value)} placeholder="nginx:1.27" autoComplete="off" spellCheck={false} className="font-mono text-[13px]" />}
                </Field>
                <Field label="Container port" hint="The port the app listens on for HTTP. Empty: not reachable from outside." error={f["spec.port"]}>
                  {(p) => <Input {...p} type="number" inputMode="numeric" min={1} max={65535} value={port} onChange={(e) => setPort(e.target.value)} className="w-32" />}
                </Field>
                <div className="space-y-3 rounded-md border border-line p-3.5">
                  <label className="flex items-center justify-between gap-3 text-sm font-medium">
                    <span className="inline-flex items-center gap-1.5">
                      <Lock className="size-3.5 text-muted" aria-hidden /> Private registry
                    </span>
                    <Toggle checked={privateReg} onChange={setPrivateReg} aria-label="Private registry" />
                  </label>
                  {privateReg && (
                    <div className="grid gap-3 sm:grid-cols-3">
                      <Field label="Registry server" hint="Empty: from the image." error={f["spec.registry_auth.server"]}>
                        {(p) => <Input {...p} value={regServer} onChange={(e) => setRegServer(e.target.value)} placeholder="ghcr.io" autoComplete="off" />}
                      </Field>
                      <Field label="Registry user name" error={f["spec.registry_auth.username"]}>
                        {(p) => <Input {...p} value={regUser} onChange={(e) => setRegUser(e.target.value)} autoComplete="off" />}
                      </Field>
                      <Field label="Registry password" error={f["spec.registry_auth.password"]}>
                        {(p) => <Input {...p} type="password" value={regPass} onChange={(e) => setRegPass(e.target.value)} autoComplete="new-password" />}
                      </Field>
                    </div>
                  )}
                </div>
              </>
            )}
            {step === 1 && (
              <>
                <h2 className="text-[15px] font-semibold">Plan</h2>
                {plansQ.isPending ? (
                  <SkeletonRows rows={2} label="Loading plans" />
                ) : plansQ.isError ? (
                  <ErrorState error={plansQ.error} onRetry={() => void plansQ.refetch()} title="Couldn't load the plans" />
                ) : planList.length === 0 ? (
                  <Banner tone="warning">There are no plans yet. A platform admin has to create one before apps can be created.</Banner>
                ) : (
                  <PlanPicker plans={planList} value={plan?.id ?? ""} onChange={setPlanId} error={f.plan_id} />
                )}
                <Field
                  label="Replicas"
                  hint={plan ? `How many copies run, up to ${plan.maxReplicas}. Each costs ${formatPricePerHour(plan)}.` : "How many copies run."}
                  error={f["spec.replicas"]}
                >
                  {(p) => <Input {...p} type="number" inputMode="numeric" min={0} max={plan?.maxReplicas} value={replicas} onChange={(e) => setReplicas(e.target.value)} className="w-24" />}
                </Field>
              </>
            )}
            {step === 2 && (
              <>
                <div>
                  <h2 className="text-[15px] font-semibold">Environment</h2>
                  <p className="text-[13px] text-muted">Secret values are encrypted and never shown again once saved.</p>
                </div>
                <EnvEditor rows={rows} onChange={setRows} errors={rowErrors} organizationId={org.id} />
                {f["spec.env"] && <Banner>{f["spec.env"]}</Banner>}
                <Field label="Command" hint="Optional: replaces the image's command, e.g. /app --port 8080 (or a JSON array)." error={f["spec.command"]}>
                  {(p) => <Input {...p} value={command} onChange={(e) => setCommand(e.target.value)} placeholder="Image default" autoComplete="off" spellCheck={false} className="font-mono text-[13px]" />}
                </Field>
                <div className="space-y-3 rounded-md border border-line p-3.5">
                  <label className="flex items-center justify-between gap-3 text-sm font-medium">
                    Health check
                    <Toggle checked={hc} onChange={setHc} aria-label="Health check" />
                  </label>
                  <p className="text-[13px] text-muted">A replica failing it gets no traffic, and an update failing it is rolled back.</p>
                  {hc && (
                    <>
                      <Field label="Health check command" hint="Run inside the container, without a shell." error={f["spec.health_check.command"]}>
                        {(p) => (
                          <Input {...p} value={hcCommand} onChange={(e) => setHcCommand(e.target.value)} placeholder="curl -f http://localhost:8080/healthz" spellCheck={false} className="font-mono text-[13px]" />
                        )}
                      </Field>
                      <div className="grid grid-cols-2 gap-3 sm:grid-cols-4">
                        <Field label="Interval (s)" error={f["spec.health_check.interval"]}>
                          {(p) => <Input {...p} type="number" min={1} value={hcInterval} onChange={(e) => setHcInterval(e.target.value)} />}
                        </Field>
                        <Field label="Timeout (s)" error={f["spec.health_check.timeout"]}>
                          {(p) => <Input {...p} type="number" min={1} value={hcTimeout} onChange={(e) => setHcTimeout(e.target.value)} />}
                        </Field>
                        <Field label="Retries" error={f["spec.health_check.retries"]}>
                          {(p) => <Input {...p} type="number" min={0} value={hcRetries} onChange={(e) => setHcRetries(e.target.value)} />}
                        </Field>
                        <Field label="Start period (s)" error={f["spec.health_check.start_period"]}>
                          {(p) => <Input {...p} type="number" min={0} value={hcStart} onChange={(e) => setHcStart(e.target.value)} />}
                        </Field>
                      </div>
                    </>
                  )}
                </div>
              </>
            )}
            {step === 3 && (
              <>
                <h2 className="text-[15px] font-semibold">Review</h2>
                <Review
                  rows={[
                    ["Name", <span className="font-medium">{name}</span>],
                    ["Image", <code className="font-mono text-[13px]">{image}</code>],
                    ["Port", port.trim() ? port : "Not reachable from outside"],
                    ["Registry", privateReg ? `${regUser} at ${regServer || "the image's registry"}` : "Public"],
                    ["Plan", plan ? `${plan.name}: ${formatCores(plan.cpuMillis)}, ${formatMiB(plan.memoryMib)}, ${formatPricePerHour(plan)} per replica` : "—"],
                    ["Replicas", replicas],
                    [
                      "Environment",
                      envFromRows(rows).env.length ? (
                        <ul className="space-y-0.5 font-mono text-[13px]">
                          {envFromRows(rows).env.map((e) => (
                            <li key={e.name} className="break-all">
                              {e.name}={e.secret ? "••••••" : e.value}
                            </li>
                          ))}
                        </ul>
                      ) : (
                        "None"
                      ),
                    ],
                    ["Command", command.trim() ? <code className="font-mono text-[13px]">{command}</code> : "Image default"],
                    ["Health check", hc ? <code className="font-mono text-[13px]">{hcCommand}</code> : "None"],
                  ]}
                />
              </>
            )}
          </div>
          <div className="flex flex-col-reverse gap-2 border-t border-line px-4 py-3 sm:flex-row sm:justify-between sm:px-5">
            {step > 0 ? (
              <Button onClick={() => setStep(step - 1)} icon={<ArrowLeft className="size-4" aria-hidden />}>
                Back
              </Button>
            ) : (
              <Link href={orgPath(org.slug, "apps")} className="inline-flex h-9 items-center justify-center rounded-md px-3.5 text-sm font-medium hover:bg-subtle">
                Cancel
              </Link>
            )}
            {step < 3 ? (
              <Button type="submit" variant="primary">
                Next <ArrowRight className="size-4" aria-hidden />
              </Button>
            ) : (
              <Button type="submit" variant="primary" loading={form.pending} icon={<Rocket className="size-4" aria-hidden />}>
                Create app
              </Button>
            )}
          </div>
        </form>
      </Card>
    </>
  );
}
