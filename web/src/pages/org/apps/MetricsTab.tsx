// The app's metrics per replica over the last hour or day: CPU, memory, network in and out.
import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { LineChart, type ChartSeries, RangePicker } from "../../../components/chart";
import { Card, CardHeader, ErrorState, Spinner } from "../../../components/ui";
import { apps } from "../../../lib/apps";
import { formatBytes } from "../../../lib/clusters";
import { useOrg } from "../../../lib/org";
import type { TabProps } from "./AppDetail";

const ranges = [
  { key: "1h", label: "1 h", ms: 3600_000, refresh: 15_000 },
  { key: "24h", label: "24 h", ms: 86400_000, refresh: 60_000 },
] as const;
type RangeKey = (typeof ranges)[number]["key"];

const palette = ["var(--sp-accent)", "#8b5cf6", "#16a34a", "#d97706", "#db2777", "#0891b2", "#65a30d", "#dc2626"];
const pct = (v: number) => `${v >= 10 ? Math.round(v) : v.toFixed(1)}%`;
const bytes = (v: number) => formatBytes(v);
const rate = (v: number) => `${formatBytes(v)}/s`;

const charts = [
  { name: "cpu_percent", title: "CPU", format: pct, bytes: false },
  { name: "memory_bytes", title: "Memory", format: bytes, bytes: true },
  { name: "net_rx_bytes_per_second", title: "Network in", format: rate, bytes: true },
  { name: "net_tx_bytes_per_second", title: "Network out", format: rate, bytes: true },
] as const;

export default function MetricsTab({ app }: TabProps) {
  const org = useOrg();
  const [range, setRange] = useState<RangeKey>("1h");
  const r = ranges.find((x) => x.key === range)!;
  const q = useQuery({
    queryKey: ["skypanel.appMetrics", app.id, range],
    queryFn: async ({ signal }) => {
      const until = Date.now();
      const since = until - r.ms;
      const res = await apps.getAppMetrics({ organizationId: org.id, appId: app.id, from: timestampFromMs(since), to: timestampFromMs(until) }, { signal });
      const by: Record<string, ChartSeries[]> = {};
      const slots = [...new Set(res.series.map((s) => s.replica))].sort((a, b) => a - b);
      for (const s of res.series) {
        (by[s.name] ??= []).push({
          name: `Replica ${s.replica}`,
          color: palette[slots.indexOf(s.replica) % palette.length],
          points: s.points.map((p) => ({ t: p.at ? timestampDate(p.at).getTime() : 0, v: p.value })),
        });
      }
      for (const k of Object.keys(by)) by[k].sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
      return { since, until, by };
    },
    refetchInterval: r.refresh,
    placeholderData: (prev, prevQuery) => (prevQuery?.queryKey[2] === range ? prev : undefined),
  });
  const d = q.data;

  return (
    <Card>
      <CardHeader
        title="Metrics"
        description="Per replica, averaged per interval."
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
              {charts.map((c) => (
                <LineChart
                  key={c.name}
                  title={c.title}
                  series={d.by[c.name] ?? []}
                  since={d.since}
                  until={d.until}
                  min={0}
                  format={c.format}
                  bytes={c.bytes}
                  empty="No data in this range. Replicas report every few seconds while they run."
                />
              ))}
            </div>
          )
        )}
      </div>
    </Card>
  );
}
