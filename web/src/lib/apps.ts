// Apps, plans and domains for the dashboard: API clients, states as words and colours, sizes
// and prices, the env-var rows the editors work on, and the two live streams of an app
// (a deployment's progress and its logs).
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { useEffect, useRef, useState } from "react";
import {
  AppService,
  AppStatus,
  DeploymentKind,
  DeploymentState,
  type AppSpec,
  type Deployment,
  type EnvVar,
  type HealthCheck,
  type LogLine,
  type Replica,
} from "../gen/skypanel/app/v1/app_pb";
import { CertificateState, DomainService, VerificationMethod } from "../gen/skypanel/domain/v1/domain_pb";
import { Role } from "../gen/skypanel/organization/v1/organization_pb";
import { PlanService, type Plan } from "../gen/skypanel/plan/v1/plan_pb";
import { session, transport } from "./api";
import type { FieldErrors } from "./errors";
import type { LiveStatus } from "./live";

export const apps = createClient(AppService, transport);
export const plans = createClient(PlanService, transport);
export const domains = createClient(DomainService, transport);

type Tone = "neutral" | "accent" | "success" | "warning" | "danger";

/** canOperate says whether a role may create, change and deploy apps (members and up). */
export const canOperate = (r: Role) => r >= Role.MEMBER;

export const appStatusInfo: Record<AppStatus, { label: string; tone: Tone; help: string }> = {
  [AppStatus.UNSPECIFIED]: { label: "Unknown", tone: "neutral", help: "" },
  [AppStatus.DEPLOYING]: { label: "Deploying", tone: "accent", help: "A deployment is in progress." },
  [AppStatus.RUNNING]: { label: "Running", tone: "success", help: "Every replica runs." },
  [AppStatus.DEGRADED]: { label: "Degraded", tone: "warning", help: "Some replicas do not run." },
  [AppStatus.STOPPED]: { label: "Stopped", tone: "neutral", help: "Scaled to zero replicas." },
  [AppStatus.FAILED]: { label: "Failed", tone: "danger", help: "The last deployment failed and nothing runs." },
  [AppStatus.DELETING]: { label: "Deleting", tone: "neutral", help: "Being removed." },
  [AppStatus.SUSPENDED]: { label: "Suspended", tone: "danger", help: "Stopped by the platform (billing or an admin)." },
};

export const deploymentStateInfo: Record<DeploymentState, { label: string; tone: Tone; step: string }> = {
  [DeploymentState.UNSPECIFIED]: { label: "Unknown", tone: "neutral", step: "" },
  [DeploymentState.PENDING]: { label: "Pending", tone: "neutral", step: "Accepted, waiting to start" },
  [DeploymentState.PREPARING]: { label: "Preparing", tone: "accent", step: "Making the organization's network ready" },
  [DeploymentState.APPLYING]: { label: "Applying", tone: "accent", step: "Sending the service to a manager" },
  [DeploymentState.ROLLING_OUT]: { label: "Rolling out", tone: "accent", step: "New replicas start and pass their health check" },
  [DeploymentState.SUCCEEDED]: { label: "Succeeded", tone: "success", step: "Done" },
  [DeploymentState.FAILED]: { label: "Failed", tone: "danger", step: "Failed" },
  [DeploymentState.ROLLED_BACK]: { label: "Rolled back", tone: "warning", step: "The new release failed; the previous one runs again" },
  [DeploymentState.SUPERSEDED]: { label: "Superseded", tone: "neutral", step: "A newer deployment took over" },
};

export const deploymentKindLabel: Record<DeploymentKind, string> = {
  [DeploymentKind.UNSPECIFIED]: "Deployment",
  [DeploymentKind.DEPLOY]: "Deploy",
  [DeploymentKind.ROLLBACK]: "Rollback",
  [DeploymentKind.SCALE]: "Scale",
  [DeploymentKind.RESTART]: "Restart",
  [DeploymentKind.STOP]: "Stop",
  [DeploymentKind.START]: "Start",
  [DeploymentKind.DELETE]: "Delete",
  [DeploymentKind.SUSPEND]: "Suspend",
  [DeploymentKind.RESUME]: "Resume",
};

export const certificateStateInfo: Record<CertificateState, { label: string; tone: Tone }> = {
  [CertificateState.UNSPECIFIED]: { label: "Unknown", tone: "neutral" },
  [CertificateState.NONE]: { label: "No certificate", tone: "neutral" },
  [CertificateState.PENDING]: { label: "Certificate pending", tone: "accent" },
  [CertificateState.ISSUED]: { label: "Certificate issued", tone: "success" },
  [CertificateState.FAILED]: { label: "Certificate failed", tone: "danger" },
};

export const methodLabel: Record<VerificationMethod, string> = {
  [VerificationMethod.UNSPECIFIED]: "Default",
  [VerificationMethod.DNS_TXT]: "DNS TXT record",
  [VerificationMethod.HTTP]: "HTTP file",
};

const terminal = new Set([DeploymentState.SUCCEEDED, DeploymentState.FAILED, DeploymentState.ROLLED_BACK, DeploymentState.SUPERSEDED]);

/** isActive says whether a deployment is still under way. */
export function isActive(d: Deployment | undefined): boolean {
  return !!d && !terminal.has(d.state) && d.state !== DeploymentState.UNSPECIFIED;
}

/** replicaTone colours Swarm's task states. */
export function replicaTone(state: string): Tone {
  switch (state) {
    case "running":
      return "success";
    case "failed":
    case "rejected":
    case "orphaned":
      return "danger";
    case "complete":
    case "shutdown":
    case "remove":
      return "neutral";
    default:
      return "accent";
  }
}

// ---- sizes and prices ----

/** formatCores says "0.5 CPU", "2 CPUs". */
export function formatCores(millis: number): string {
  const c = millis / 1000;
  const s = Number(c.toFixed(3)).toString();
  return `${s} ${c === 1 ? "CPU" : "CPUs"}`;
}

/** formatMiB says "512 MiB" or "2 GiB". */
export function formatMiB(mib: number): string {
  if (mib >= 1024 && mib % 256 === 0) return `${Number((mib / 1024).toFixed(2))} GiB`;
  return `${mib} MiB`;
}

/** currencyDigits is how many minor-unit digits a currency has (USD 2, JPY 0). */
export function currencyDigits(currency: string): number {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

/** formatMoney formats an amount in minor units, e.g. (125n, "USD") is "$1.25". */
export function formatMoney(minor: bigint | number, currency: string): string {
  const digits = currencyDigits(currency);
  const v = Number(minor) / 10 ** digits;
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency, minimumFractionDigits: digits, maximumFractionDigits: digits }).format(v);
  } catch {
    return `${v.toFixed(digits)} ${currency}`;
  }
}

/** pricePerHour says "$0.02 / hour". */
export function formatPricePerHour(p: Pick<Plan, "pricePerHour" | "currency">): string {
  return `${formatMoney(p.pricePerHour, p.currency)} / hour`;
}

/** decimalToMinor reads "1.25" in a currency with 2 digits as 125n, or says what is wrong. */
export function decimalToMinor(text: string, currency: string): { minor?: bigint; error?: string } {
  const digits = currencyDigits(currency);
  const t = text.trim().replace(",", ".");
  const m = /^(\d+)(?:\.(\d*))?$/.exec(t);
  if (!m) return { error: "Enter an amount such as 0.05." };
  const frac = (m[2] ?? "").replace(/0+$/, "");
  if (frac.length > digits) {
    return { error: digits === 0 ? `${currency} has no decimals.` : `At most ${digits} decimal places in ${currency}.` };
  }
  return { minor: BigInt(m[1]) * 10n ** BigInt(digits) + BigInt((frac + "0".repeat(digits)).slice(0, digits) || "0") };
}

/** minorToDecimal writes 125n in a currency with 2 digits as "1.25". */
export function minorToDecimal(minor: bigint, currency: string): string {
  const digits = currencyDigits(currency);
  if (digits === 0) return minor.toString();
  const s = minor.toString().padStart(digits + 1, "0");
  return `${s.slice(0, -digits)}.${s.slice(-digits)}`;
}

/** planSummary says "0.5 CPUs · 512 MiB · $0.01 / hour". */
export function planSummary(p: Plan): string {
  return `${formatCores(p.cpuMillis)} · ${formatMiB(p.memoryMib)} · ${formatPricePerHour(p)}`;
}

// ---- URLs, commands, files ----

/** appHref turns an app's url (a hostname or a URL) into a link. */
export function appHref(url: string): string {
  if (!url) return "";
  return /^https?:\/\//i.test(url) ? url : `https://${url}`;
}

/** appHost is the url without its scheme, for display. */
export function appHost(url: string): string {
  return url.replace(/^https?:\/\//i, "").replace(/\/$/, "");
}

/** appName says what is wrong with an app name (a DNS label of 1–30 characters), or "". */
export function checkAppName(name: string): string {
  if (!name) return "Give the app a name.";
  if (name.length > 30) return "At most 30 characters.";
  if (!/^[a-z]([a-z0-9-]*[a-z0-9])?$/.test(name)) return "Lower-case letters, digits and hyphens, starting with a letter and not ending with a hyphen.";
  return "";
}

/**
 * splitCommand reads a command line into exec-form arguments: a JSON array as it is, else
 * words split on spaces, with '…' and "…" quoting and \ escaping as in a shell.
 */
export function splitCommand(text: string): { args: string[]; error?: string } {
  const t = text.trim();
  if (!t) return { args: [] };
  if (t.startsWith("[")) {
    try {
      const v: unknown = JSON.parse(t);
      if (Array.isArray(v) && v.every((x) => typeof x === "string")) return { args: v };
    } catch {
      // not JSON: split it as words
    }
    return { args: [], error: 'A JSON array of strings, e.g. ["/app", "-port", "8080"].' };
  }
  const args: string[] = [];
  let cur = "";
  let inWord = false;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < t.length; i++) {
    const c = t[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === "\\" && quote === '"' && i + 1 < t.length) cur += t[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < t.length) {
      cur += t[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) args.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) return { args: [], error: `A ${quote === '"' ? "double" : "single"} quote is not closed.` };
  if (inWord) args.push(cur);
  return { args };
}

/** joinCommand writes exec-form arguments back as a command line splitCommand reads. */
export function joinCommand(args: string[]): string {
  return args.map((a) => (a !== "" && /^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'"'"'`)}'`)).join(" ");
}

/** download saves text as a file named name. */
export function download(name: string, text: string, type = "text/plain") {
  const url = URL.createObjectURL(new Blob([text], { type: `${type};charset=utf-8` }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function tsMs(ts: Timestamp | undefined): number {
  return ts ? timestampDate(ts).getTime() : 0;
}

/** duration says "42 s", "3 min 5 s" or "1 h 2 min". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ""}`;
  return `${Math.floor(s / 3600)} h${Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)} min` : ""}`;
}

// ---- environment variables ----

/** EnvRow is one variable as the editors hold it. */
export interface EnvRow {
  /** key identifies the row in React lists. */
  key: string;
  name: string;
  value: string;
  secret: boolean;
  /** stored: the server holds a value for this secret that it never returns. */
  stored: boolean;
  /** replacing: the user is typing a new value for a stored secret. */
  replacing: boolean;
}

let rowSeq = 0;
export function newRow(init: Partial<EnvRow> = {}): EnvRow {
  return { key: `r${++rowSeq}`, name: "", value: "", secret: false, stored: false, replacing: false, ...init };
}

/** rowsFromEnv makes editor rows from the API's variables (secret values come back empty). */
export function rowsFromEnv(env: EnvVar[]): EnvRow[] {
  return env.map((e) => newRow({ name: e.name, value: e.secret ? "" : e.value, secret: e.secret, stored: e.secret && e.hasValue }));
}

/**
 * envFromRows turns rows into the variables to send, skipping blank rows; index[i] is the row
 * of the i-th variable, so errors such as spec.env[2].name find their row. A stored secret the
 * user did not replace is sent with keep.
 */
export function envFromRows(rows: EnvRow[]): { env: EnvInit[]; index: number[] } {
  const env: EnvInit[] = [];
  const index: number[] = [];
  rows.forEach((r, i) => {
    if (!r.name.trim() && !r.value && !(r.stored && !r.replacing)) return;
    index.push(i);
    if (r.secret && r.stored && !r.replacing) env.push({ name: r.name.trim(), secret: true, keep: true });
    else env.push({ name: r.name.trim(), value: r.value, secret: r.secret });
  });
  return { env, index };
}

/** checkRows finds problems in rows before they are sent, keyed by "<row>.name" or "<row>.value". */
export function checkRows(rows: EnvRow[]): Record<string, string> {
  const out: Record<string, string> = {};
  const seen = new Map<string, number>();
  rows.forEach((r, i) => {
    const name = r.name.trim();
    if (!name && !r.value && !(r.stored && !r.replacing)) return;
    // The name's form is left to the API, which says what is wrong next to the row.
    if (!name) out[`${i}.name`] = "Give the variable a name.";
    else if (seen.has(name)) out[`${i}.name`] = `${name} is already set above.`;
    else seen.set(name, i);
    if (r.secret && (!r.stored || r.replacing) && !r.value) out[`${i}.value`] = "Enter the secret's value.";
  });
  return out;
}

/** mergeRows adds imported variables to rows: a name already present gets the new value. */
export function mergeRows(rows: EnvRow[], imported: EnvVar[]): EnvRow[] {
  const out = rows.filter((r) => r.name.trim() || r.value || r.stored);
  for (const e of imported) {
    const i = out.findIndex((r) => r.name.trim() === e.name);
    const secret = e.secret || (i >= 0 && out[i].secret);
    const row = newRow({ name: e.name, value: e.value, secret, stored: i >= 0 && out[i].stored, replacing: i >= 0 && out[i].stored });
    if (i >= 0) out[i] = { ...row, key: out[i].key };
    else out.push(row);
  }
  return out;
}

/** EnvInit is an EnvVar to send. */
export interface EnvInit {
  name: string;
  value?: string;
  secret?: boolean;
  keep?: boolean;
}

/** SpecInit is an AppSpec to send: what the dashboard sets, nothing it may not. */
export interface SpecInit {
  image: string;
  port: number;
  env: EnvInit[];
  command: string[];
  healthCheck?: HealthCheck;
  replicas: number;
  registryAuth?: { server: string; username: string; password: string };
}

/**
 * specForUpdate copies a spec from the API for sending back: stored secrets are kept (their
 * values never come back) and the registry password stays as stored (sent empty).
 */
export function specForUpdate(spec: AppSpec | undefined): SpecInit {
  if (!spec) return { image: "", port: 0, env: [], command: [], replicas: 0 };
  return {
    image: spec.image,
    port: spec.port,
    env: spec.env.map((e) => (e.secret && e.hasValue ? { name: e.name, secret: true, keep: true } : { name: e.name, value: e.value, secret: e.secret })),
    command: [...spec.command],
    healthCheck: spec.healthCheck,
    replicas: spec.replicas,
    registryAuth: spec.registryAuth ? { server: spec.registryAuth.server, username: spec.registryAuth.username, password: "" } : undefined,
  };
}

/** envErrors picks spec.env[i].name / .value violations and keys them by row. */
export function envErrors(fields: FieldErrors, index: number[], prefix = "spec.env"): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(fields)) {
    const m = new RegExp(`^${prefix.replace(/\./g, "\\.")}\\[(\\d+)\\](?:\\.(\\w+))?$`).exec(k);
    if (!m) continue;
    const row = index[Number(m[1])] ?? Number(m[1]);
    const part = m[2] === "value" ? "value" : "name";
    out[`${row}.${part}`] = v;
  }
  return out;
}

// ---- live streams ----

async function backoffLoop(signal: AbortSignal, setStatus: (s: LiveStatus) => void, body: (onLive: () => void) => Promise<"done" | "again">, onFatal: (err: unknown) => void) {
  let attempt = 0;
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      signal.addEventListener("abort", () => {
        clearTimeout(t);
        resolve();
      });
    });
  while (!signal.aborted) {
    setStatus(attempt === 0 ? "connecting" : "reconnecting");
    try {
      await session.ensureFresh();
      const r = await body(() => {
        attempt = 0;
        setStatus("live");
      });
      if (r === "done") return;
    } catch (err) {
      if (signal.aborted) return;
      const code = err instanceof ConnectError ? err.code : Code.Unknown;
      if (code === Code.Unauthenticated) {
        try {
          await session.refresh();
        } catch {
          return;
        }
      } else if (
        code === Code.PermissionDenied ||
        code === Code.NotFound ||
        code === Code.InvalidArgument ||
        code === Code.Unimplemented ||
        code === Code.FailedPrecondition
      ) {
        onFatal(err);
        setStatus("unavailable");
        return;
      }
    }
    attempt++;
    await sleep(Math.min(30_000, 500 * 2 ** Math.min(attempt, 6)) * (0.75 + Math.random() / 2));
  }
}

/**
 * useWatchDeployment follows AppService.WatchDeployment until the deployment ends, reconnecting
 * with backoff meanwhile. status is "live" while it follows, and stays so after the end.
 */
export function useWatchDeployment(
  organizationId: string,
  deploymentId: string | undefined,
): { deployment: Deployment | undefined; replicas: Replica[]; status: LiveStatus; error: unknown } {
  const [deployment, setDeployment] = useState<Deployment | undefined>(undefined);
  const [replicas, setReplicas] = useState<Replica[]>([]);
  const [status, setStatus] = useState<LiveStatus>("connecting");
  const [error, setError] = useState<unknown>(undefined);

  useEffect(() => {
    if (!deploymentId) return;
    setDeployment(undefined);
    setReplicas([]);
    setError(undefined);
    const ctrl = new AbortController();
    let ended = false;
    void backoffLoop(
      ctrl.signal,
      setStatus,
      async (onLive) => {
        for await (const msg of apps.watchDeployment({ organizationId, deploymentId }, { signal: ctrl.signal })) {
          onLive();
          if (msg.deployment) {
            setDeployment(msg.deployment);
            ended = !isActive(msg.deployment);
          }
          setReplicas(msg.replicas);
        }
        return ended ? "done" : "again";
      },
      setError,
    );
    return () => ctrl.abort();
  }, [organizationId, deploymentId]);

  return { deployment, replicas, status, error };
}

export interface LogEntry {
  id: number;
  at: number;
  replica: number;
  stream: string;
  text: string;
}

/**
 * useLogStream follows AppService.StreamLogs (tail then follow) and hands batches of lines to
 * onLines. After a dropped stream it reconnects from the newest line it saw.
 */
export function useLogStream(organizationId: string, appId: string, tail: number, onLines: (lines: LogEntry[]) => void): { status: LiveStatus; error: unknown } {
  const [status, setStatus] = useState<LiveStatus>("connecting");
  const [error, setError] = useState<unknown>(undefined);
  const cb = useRef(onLines);
  cb.current = onLines;

  useEffect(() => {
    setError(undefined);
    const ctrl = new AbortController();
    let seq = 0;
    let last: Timestamp | undefined;
    let lastKeys = new Set<string>();
    void backoffLoop(
      ctrl.signal,
      setStatus,
      async (onLive) => {
        onLive();
        const since = last;
        for await (const msg of apps.streamLogs({ organizationId, appId, tail, follow: true, since }, { signal: ctrl.signal })) {
          const out: LogEntry[] = [];
          for (const l of msg.lines) {
            const key = lineKey(l);
            // After a reconnect, lines at the very time we stopped may come again.
            if (since && tsMs(l.at) <= tsMs(since) && lastKeys.has(key)) continue;
            const at = tsMs(l.at);
            if (!last || at > tsMs(last)) {
              last = l.at;
              lastKeys = new Set();
            }
            if (at === tsMs(last)) lastKeys.add(key);
            out.push({ id: ++seq, at, replica: l.replica, stream: l.stream, text: l.text });
          }
          if (out.length) cb.current(out);
        }
        return "again";
      },
      setError,
    );
    return () => ctrl.abort();
  }, [organizationId, appId, tail]);

  return { status, error };
}

function lineKey(l: LogLine): string {
  return `${l.replica}|${l.stream}|${l.text}`;
}

