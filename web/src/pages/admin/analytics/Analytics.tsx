// /admin/analytics: the platform's revenue (usage charged) per day and month, payments
// received, apps by status, what apps reserve on each cluster, and the biggest spenders.
import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { useQuery } from "@tanstack/react-query";
import { useState, type ReactNode } from "react";
import { billing, monthLabel } from "../../../components/billing";
import { BarChart } from "../../../components/bar-chart";
import { RangePicker } from "../../../components/chart";
import { Card, CardHeader, ErrorState, PageHeader, Spinner } from "../../../components/ui";
import type { Revenue } from "../../../gen/skypanel/billing/v1/billing_pb";
import { formatMoney, tsMs } from "../../../lib/apps";
import { formatBytes } from "../../../lib/clusters";
import { UsageBar } from "../cluster-ui";

const ranges = [
  { key: "30d", label: "30 d", days: 30 },
  { key: "90d", label: "90 d", days: 90 },
  { key: "365d", label: "12 months", days: 365 },
] as const;
type RangeKey = (typeof ranges)[number]["key"];

const statusLabel: Record<string, string> = {
  running: "Running",
  deploying: "Deploying",
  degraded: "Degraded",
  stopped: "Stopped",
  failed: "Failed",
  deleting: "Deleting",
  suspended: "Suspended",
};
const label = (s: string) => statusLabel[s.toLowerCase().replace(/^app_status_/, "")] ?? s;

/** byCurrency groups revenue rows per currency, the biggest total first. */
function byCurrency(rows: Revenue[]): [string, Revenue[]][] {
  const m = new Map<string, Revenue[]>();
  for (const r of rows) m.set(r.currency, [...(m.get(r.currency) ?? []), r]);
  const sum = (rs: Revenue[]) => rs.reduce((n, r) => n + r.amount, 0n);
  return [...m.entries()].sort((a, b) => Number(sum(b[1]) - sum(a[1])));
}

function Stat({ label, children }: { label: string; children: ReactNode }) {
  return (
    <Card className="p-4">
      <div className="text-[13px] text-muted">{label}</div>
      <div className="mt-1 text-lg font-semibold tabular-nums">{children}</div>
    </Card>
  );
}

export default function Analytics() {
  const [range, setRange] = useState<RangeKey>("30d");
  const days = ranges.find((r) => r.key === range)!.days;
  const q = useQuery({
    queryKey: ["skypanel.analytics", range],
    queryFn: async ({ signal }) => {
      const to = Date.now();
      const from = to - days * 86400_000;
      const res = await billing.getAnalytics({ from: timestampFromMs(from), to: timestampFromMs(to) }, { signal });
      return { res, from, to };
    },
    placeholderData: (prev) => prev,
  });
  const d = q.data?.res;
  const revenue = byCurrency(d?.revenueByDay ?? []);
  const months = [...(d?.revenueByMonth ?? [])].sort((a, b) => tsMs(b.start) - tsMs(a.start) || a.currency.localeCompare(b.currency));
  const totalApps = (d?.appsByStatus ?? []).reduce((n, a) => n + Number(a.count), 0);

  return (
    <>
      <PageHeader title="Analytics" description="Revenue is usage charged to wallets; top-ups are payments received." actions={<RangePicker ranges={ranges} value={range} onChange={setRange} />} />
      {q.isPending ? (
        <Spinner label="Loading analytics" />
      ) : q.isError ? (
        <Card>
          <ErrorState error={q.error} onRetry={() => void q.refetch()} />
        </Card>
      ) : (
        d && (
          <div className="space-y-6">
            <div className="grid gap-4 sm:grid-cols-3">
              <Stat label="Revenue in the range">
                {revenue.length ? revenue.map(([c, rs]) => <div key={c}>{formatMoney(rs.reduce((n, r) => n + r.amount, 0n), c)}</div>) : formatMoney(0, "USD")}
              </Stat>
              <Stat label="Top-ups received">
                <span data-testid="top-ups-total">
                  {d.topUps.length ? d.topUps.map((t) => <div key={t.currency}>{formatMoney(t.amount, t.currency)}</div>) : formatMoney(0, "USD")}
                </span>
              </Stat>
              <Stat label="Apps">{totalApps}</Stat>
            </div>

            <Card>
              <CardHeader title="Revenue per day" />
              <div className="space-y-6 p-4 sm:p-5">
                {(revenue.length ? revenue : [["USD", []] as [string, Revenue[]]]).map(([c, rs]) => (
                  <BarChart
                    integer
                    key={c}
                    title={`Revenue (${c})`}
                    bars={rs.map((r) => ({ t: tsMs(r.start), v: Number(r.amount) }))}
                    since={q.data.from}
                    until={q.data.to}
                    bucket={86400_000}
                    format={(v) => formatMoney(Math.round(v), c)}
                    empty="No usage charged in this range."
                  />
                ))}
              </div>
            </Card>

            <div className="grid gap-6 lg:grid-cols-2">
              <Card>
                <CardHeader title="Revenue per month" />
                <Table
                  label="Revenue per month"
                  head={["Month", "Amount"]}
                  rows={months.map((m) => [monthLabel(m.start ? timestampDate(m.start).toISOString().slice(0, 7) : ""), formatMoney(m.amount, m.currency)])}
                  empty="No revenue yet."
                />
              </Card>
              <Card>
                <CardHeader title="Top organizations" description="By usage charged in the range." />
                <Table
                  label="Top organizations"
                  head={["Organization", "Spent"]}
                  rows={d.topOrganizations.map((o) => [o.name || o.organizationId.slice(0, 8), formatMoney(o.amount, o.currency)])}
                  empty="No organization spent anything in this range."
                />
              </Card>
            </div>

            <div className="grid gap-6 lg:grid-cols-2">
              <Card>
                <CardHeader title="Apps by status" />
                <ul className="divide-y divide-line" aria-label="Apps by status">
                  {d.appsByStatus.length === 0 && <li className="px-4 py-6 text-center text-sm text-muted sm:px-5">No apps yet.</li>}
                  {d.appsByStatus.map((a) => (
                    <li key={a.status} className="flex items-center gap-3 px-4 py-2.5 text-sm sm:px-5" data-app-status={a.status}>
                      <span className="w-28 shrink-0">{label(a.status)}</span>
                      <div className="h-1.5 flex-1 overflow-hidden rounded-full bg-subtle" aria-hidden>
                        <div className="h-full rounded-full bg-accent" style={{ width: `${totalApps ? (Number(a.count) / totalApps) * 100 : 0}%` }} />
                      </div>
                      <span className="w-10 text-right tabular-nums">{String(a.count)}</span>
                    </li>
                  ))}
                </ul>
              </Card>
              <Card>
                <CardHeader title="Cluster capacity" description="What apps reserve of the ready nodes' CPU and memory." />
                {d.clusters.length === 0 ? (
                  <p className="px-4 py-6 text-center text-sm text-muted sm:px-5">No clusters yet.</p>
                ) : (
                  <ul className="divide-y divide-line" aria-label="Cluster capacity">
                    {d.clusters.map((c) => {
                      const cpu = Number(c.cpuMillisAvailable) ? (Number(c.cpuMillisAllocated) / Number(c.cpuMillisAvailable)) * 100 : undefined;
                      const mem = Number(c.memoryBytesAvailable) ? (Number(c.memoryBytesAllocated) / Number(c.memoryBytesAvailable)) * 100 : undefined;
                      return (
                        <li key={c.clusterId} className="space-y-1.5 px-4 py-3 sm:px-5" data-cluster-capacity={c.name}>
                          <div className="text-sm font-medium">{c.name}</div>
                          <div className="grid grid-cols-[4.5rem_1fr_auto] items-center gap-x-3 gap-y-1.5 text-xs text-muted">
                            <span>CPU</span>
                            <UsageBar label={`CPU allocated on ${c.name}`} percent={cpu} />
                            <span className="tabular-nums">
                              {(Number(c.cpuMillisAllocated) / 1000).toFixed(2)} / {(Number(c.cpuMillisAvailable) / 1000).toFixed(2)} CPUs
                            </span>
                            <span>Memory</span>
                            <UsageBar label={`Memory allocated on ${c.name}`} percent={mem} />
                            <span className="tabular-nums">
                              {formatBytes(c.memoryBytesAllocated)} / {formatBytes(c.memoryBytesAvailable)}
                            </span>
                          </div>
                        </li>
                      );
                    })}
                  </ul>
                )}
              </Card>
            </div>
          </div>
        )
      )}
    </>
  );
}

function Table({ label, head, rows, empty }: { label: string; head: [string, string]; rows: [string, string][]; empty: string }) {
  if (rows.length === 0) return <p className="px-4 py-6 text-center text-sm text-muted sm:px-5">{empty}</p>;
  return (
    <table className="w-full text-sm" aria-label={label}>
      <thead>
        <tr className="border-b border-line text-left text-xs text-muted">
          <th className="px-4 py-2 font-medium sm:pl-5">{head[0]}</th>
          <th className="px-4 py-2 text-right font-medium sm:pr-5">{head[1]}</th>
        </tr>
      </thead>
      <tbody className="divide-y divide-line">
        {rows.map(([a, b], i) => (
          <tr key={i}>
            <td className="px-4 py-2 sm:pl-5">{a}</td>
            <td className="px-4 py-2 text-right tabular-nums sm:pr-5">{b}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
