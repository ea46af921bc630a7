// The organization's usage over a range: charges per hour or day in a chart, totals per
// resource in a table, and the hourly rows as a CSV download.
import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { useQuery } from "@tanstack/react-query";
import { Download } from "lucide-react";
import { useState } from "react";
import { billing, formatUnitHours, saveFile } from "../../../components/billing";
import { BarChart } from "../../../components/bar-chart";
import { RangePicker } from "../../../components/chart";
import { toast } from "../../../components/toast";
import { Banner, Button, Card, CardHeader, ErrorState, Field, Input, Spinner } from "../../../components/ui";
import { formatMoney } from "../../../lib/apps";
import { useOrg } from "../../../lib/org";

const ranges = [
  { key: "24h", label: "24 h", ms: 86400_000 },
  { key: "7d", label: "7 d", ms: 7 * 86400_000 },
  { key: "30d", label: "30 d", ms: 30 * 86400_000 },
  { key: "custom", label: "Custom", ms: 0 },
] as const;
type RangeKey = (typeof ranges)[number]["key"];

const day = 86400_000;
const isoDay = (ms: number) => new Date(ms - new Date(ms).getTimezoneOffset() * 60_000).toISOString().slice(0, 10);

/** bounds turns the picked range into from and to (ms); a custom range covers whole local days. */
function bounds(range: RangeKey, from: string, to: string): { from: number; to: number } | { error: string } {
  if (range !== "custom") {
    const now = Date.now();
    return { from: now - ranges.find((r) => r.key === range)!.ms, to: now };
  }
  const f = new Date(`${from}T00:00`).getTime();
  const t = new Date(`${to}T00:00`).getTime() + day;
  if (Number.isNaN(f) || Number.isNaN(t)) return { error: "Pick both days." };
  if (t <= f) return { error: "The last day comes before the first." };
  if (t - f > 92 * day) return { error: "At most 92 days at a time." };
  return { from: f, to: Math.min(t, Date.now()) };
}

export function Usage({ currency }: { currency: string }) {
  const org = useOrg();
  const [range, setRange] = useState<RangeKey>("24h");
  const [from, setFrom] = useState(() => isoDay(Date.now() - 6 * day));
  const [to, setTo] = useState(() => isoDay(Date.now()));
  const [exporting, setExporting] = useState(false);
  const b = bounds(range, from, to);
  const q = useQuery({
    queryKey: ["skypanel.usageReport", org.id, range, range === "custom" ? `${from}/${to}` : ""],
    enabled: !("error" in b),
    queryFn: async ({ signal }) => {
      const r = bounds(range, from, to);
      if ("error" in r) throw new Error(r.error);
      return billing.getUsageReport({ organizationId: org.id, from: timestampFromMs(r.from), to: timestampFromMs(r.to) }, { signal });
    },
    refetchInterval: range === "custom" ? false : 5 * 60_000,
    placeholderData: (prev, prevQuery) => (prevQuery?.queryKey[2] === range ? prev : undefined),
  });
  const d = q.data;
  const cur = d?.currency || currency;
  const money = (v: number) => formatMoney(Math.round(v), cur);

  async function exportCSV() {
    const r = bounds(range, from, to);
    if ("error" in r) return;
    setExporting(true);
    try {
      const res = await billing.exportUsage({ organizationId: org.id, from: timestampFromMs(r.from), to: timestampFromMs(r.to) });
      saveFile(res.file);
    } catch (err) {
      toast.error("Couldn't export the usage", err);
    } finally {
      setExporting(false);
    }
  }

  const since = d?.from ? timestampDate(d.from).getTime() : "error" in b ? 0 : b.from;
  const until = d?.to ? timestampDate(d.to).getTime() : "error" in b ? 1 : b.to;
  const points = (d?.points ?? []).map((p) => ({ t: p.start ? timestampDate(p.start).getTime() : 0, v: Number(p.amount) }));
  const resources = [...(d?.resources ?? [])].sort((x, y) => Number(y.amount - x.amount));

  return (
    <Card data-testid="usage">
      <CardHeader
        title="Usage"
        description={d ? `Charged per ${d.bucket || "hour"}, for complete hours.` : "What the organization's apps cost."}
        actions={
          <>
            <RangePicker ranges={ranges} value={range} onChange={setRange} />
            <Button size="sm" icon={<Download className="size-3.5" aria-hidden />} onClick={() => void exportCSV()} loading={exporting} disabled={"error" in b}>
              Export CSV
            </Button>
          </>
        }
      />
      <div className="space-y-5 p-4 sm:p-5">
        {range === "custom" && (
          <div className="flex flex-wrap items-end gap-3">
            <Field label="From">{(p) => <Input {...p} type="date" value={from} max={to} onChange={(e) => setFrom(e.target.value)} className="w-44" />}</Field>
            <Field label="To (inclusive)">{(p) => <Input {...p} type="date" value={to} min={from} max={isoDay(Date.now())} onChange={(e) => setTo(e.target.value)} className="w-44" />}</Field>
          </div>
        )}
        {"error" in b ? (
          <Banner>{b.error}</Banner>
        ) : q.isPending ? (
          <Spinner label="Loading usage" />
        ) : q.isError ? (
          <ErrorState error={q.error} onRetry={() => void q.refetch()} title="Couldn't load the usage" />
        ) : (
          <>
            <BarChart
              integer
              title="Charges"
              bars={points}
              since={since}
              until={until}
              bucket={d?.bucket === "day" ? day : 3600_000}
              format={money}
              summary={
                <span>
                  Total <strong data-testid="usage-total" className="font-semibold text-fg tabular-nums">{formatMoney(d?.total ?? 0n, cur)}</strong>
                </span>
              }
              empty="No usage in this range. Apps are charged once each hour they ran is over."
            />
            {resources.length > 0 && (
              <div className="-mx-4 overflow-x-auto sm:-mx-5">
                <table className="w-full min-w-[480px] text-sm" aria-label="Usage per resource">
                  <thead>
                    <tr className="border-y border-line text-left text-xs text-muted">
                      <th className="px-4 py-2 font-medium sm:pl-5">Resource</th>
                      <th className="px-3 py-2 font-medium">Kind</th>
                      <th className="px-3 py-2 text-right font-medium" title="Replicas × hours run">Unit-hours</th>
                      <th className="px-4 py-2 text-right font-medium sm:pr-5">Amount</th>
                    </tr>
                  </thead>
                  <tbody className="divide-y divide-line">
                    {resources.map((r) => (
                      <tr key={`${r.resourceType}/${r.resourceId}`} data-resource={r.name || r.resourceId} data-amount={String(r.amount)}>
                        <td className="px-4 py-2 sm:pl-5">{r.name || <span className="text-muted">Deleted ({r.resourceId.slice(0, 8)})</span>}</td>
                        <td className="px-3 py-2 text-muted">{r.resourceType === "app" ? "App" : r.resourceType === "cluster" ? "Cluster" : r.resourceType}</td>
                        <td className="px-3 py-2 text-right tabular-nums">{formatUnitHours(r.unitSeconds)}</td>
                        <td className="px-4 py-2 text-right tabular-nums sm:pr-5">{formatMoney(r.amount, cur)}</td>
                      </tr>
                    ))}
                  </tbody>
                  <tfoot>
                    <tr className="border-t border-line font-medium">
                      <td className="px-4 py-2 sm:pl-5" colSpan={3}>
                        Total
                      </td>
                      <td className="px-4 py-2 text-right tabular-nums sm:pr-5">{formatMoney(d?.total ?? 0n, cur)}</td>
                    </tr>
                  </tfoot>
                </table>
              </div>
            )}
          </>
        )}
      </div>
    </Card>
  );
}
