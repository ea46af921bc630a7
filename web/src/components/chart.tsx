// A small SVG line chart: time on x, a value on y, one or more lines, axes with a few ticks, and
// the values under the pointer. Drawn by hand to keep chart libraries out of the bundle.
import { useEffect, useId, useRef, useState, type ReactNode } from "react";
import { cx } from "./ui";

export interface ChartPoint {
  t: number; // ms since the epoch
  v: number;
}

export interface ChartSeries {
  name: string;
  /** color is a CSS colour (a var(--…) works). */
  color: string;
  points: ChartPoint[];
}

const H = 160;
const PAD = { top: 10, right: 12, bottom: 22, left: 62 };

/** niceTicks returns about n round values spanning [lo, hi]; with base 1024, round in KB/MB/GB. */
function niceTicks(lo: number, hi: number, n = 4, base = 10): number[] {
  if (base === 1024) {
    let unit = 1;
    while (Math.max(Math.abs(lo), Math.abs(hi)) / unit >= 1024) unit *= 1024;
    return niceTicks(lo / unit, hi / unit, n).map((v) => v * unit);
  }
  if (hi <= lo) hi = lo + 1;
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  let v = Math.floor(lo / step) * step;
  for (; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  // The top tick covers the highest value, so lines never run above the grid.
  if (out[out.length - 1] < hi - step * 1e-9) out.push(Number(v.toPrecision(12)));
  return out;
}

function timeLabel(t: number, span: number): string {
  const d = new Date(t);
  if (span > 2 * 86400_000) return d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  return d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

/** useWidth follows an element's width (0 until it is laid out). */
export function useWidth<T extends HTMLElement>(): [React.RefObject<T | null>, number] {
  const ref = useRef<T>(null);
  const [w, setW] = useState(0);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    setW(el.clientWidth);
    const ro = new ResizeObserver(() => setW(el.clientWidth));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  return [ref, w];
}

export function LineChart({
  title,
  series,
  since,
  until,
  format,
  min = 0,
  max,
  empty = "No data in this range.",
  summary,
  bytes,
}: {
  title: string;
  series: ChartSeries[];
  since: number;
  until: number;
  format: (v: number) => string;
  /** min and max fix the y range (e.g. 0–100 for percentages); otherwise it fits the data. */
  min?: number;
  max?: number;
  empty?: ReactNode;
  /** summary sits at the title's right, e.g. the latest value. */
  summary?: ReactNode;
  /** bytes rounds the y ticks in powers of 1024 (GB, MB…). */
  bytes?: boolean;
}) {
  const [ref, width] = useWidth<HTMLDivElement>();
  const [hover, setHover] = useState<number | null>(null);
  const clipId = useId();
  const has = series.some((s) => s.points.length > 0);

  const all = series.flatMap((s) => s.points.map((p) => p.v));
  let lo = min ?? Math.min(...all);
  let hi = max ?? Math.max(...all, lo + 1e-9);
  if (has && max === undefined) hi = hi + (hi - lo) * 0.1 || 1;
  const yTicks = has ? niceTicks(lo, hi, 4, bytes ? 1024 : 10) : [];
  if (yTicks.length) {
    lo = Math.min(lo, yTicks[0]);
    hi = Math.max(hi, yTicks[yTicks.length - 1]);
  }
  const iw = Math.max(10, width - PAD.left - PAD.right);
  const ih = H - PAD.top - PAD.bottom;
  const x = (t: number) => PAD.left + ((t - since) / (until - since)) * iw;
  const y = (v: number) => PAD.top + ih - ((v - lo) / (hi - lo || 1)) * ih;
  const xTickCount = width < 420 ? 3 : 5;
  const xTicks = Array.from({ length: xTickCount }, (_, i) => since + ((until - since) * (i + 0.5)) / xTickCount);

  // The point nearest the pointer, by time, in each series.
  const hovered =
    hover === null
      ? []
      : series
          .map((s) => {
            let best: ChartPoint | undefined;
            for (const p of s.points) if (!best || Math.abs(p.t - hover) < Math.abs(best.t - hover)) best = p;
            return best ? { s, p: best } : undefined;
          })
          .filter((h): h is { s: ChartSeries; p: ChartPoint } => !!h);
  const hoverT = hovered[0]?.p.t;

  function onMove(e: React.PointerEvent<SVGSVGElement>) {
    const r = e.currentTarget.getBoundingClientRect();
    const px = e.clientX - r.left;
    if (px < PAD.left || px > PAD.left + iw) return setHover(null);
    setHover(since + ((px - PAD.left) / iw) * (until - since));
  }

  return (
    <figure className="min-w-0" data-chart={title} data-points={series.reduce((n, s) => n + s.points.length, 0)}>
      <figcaption className="mb-1.5 flex flex-wrap items-baseline justify-between gap-x-3 gap-y-0.5">
        <span className="text-[13px] font-medium">{title}</span>
        <span className="flex flex-wrap items-center gap-x-3 text-xs text-muted">
          {series.length > 1 &&
            series.map((s) => (
              <span key={s.name} className="inline-flex items-center gap-1">
                <span aria-hidden className="inline-block h-0.5 w-3 rounded" style={{ background: s.color }} />
                {s.name}
              </span>
            ))}
          {summary}
        </span>
      </figcaption>
      <div ref={ref} className="relative">
        {!has ? (
          <div className="grid place-items-center rounded-md border border-dashed border-line text-sm text-muted" style={{ height: H }} data-empty>
            {empty}
          </div>
        ) : (
          width > 0 && (
            <>
              <svg
                width={width}
                height={H}
                role="img"
                aria-label={`${title} chart`}
                className="block touch-none select-none"
                onPointerMove={onMove}
                onPointerLeave={() => setHover(null)}
              >
                <defs>
                  <clipPath id={clipId}>
                    <rect x={PAD.left} y={PAD.top - 2} width={iw} height={ih + 4} />
                  </clipPath>
                </defs>
                {yTicks.map((v) => (
                  <g key={v}>
                    <line x1={PAD.left} x2={PAD.left + iw} y1={y(v)} y2={y(v)} stroke="var(--sp-line)" strokeDasharray={v === yTicks[0] ? undefined : "3 3"} />
                    <text x={PAD.left - 6} y={y(v)} dy="0.32em" textAnchor="end" className="fill-muted text-[10px]">
                      {format(v)}
                    </text>
                  </g>
                ))}
                {xTicks.map((t) => (
                  <text key={t} x={x(t)} y={H - 6} textAnchor="middle" className="fill-muted text-[10px]">
                    {timeLabel(t, until - since)}
                  </text>
                ))}
                <g clipPath={`url(#${clipId})`}>
                  {series.map((s) => {
                    const pts = [...s.points].sort((a, b) => a.t - b.t);
                    if (pts.length === 1) return <circle key={s.name} cx={x(pts[0].t)} cy={y(pts[0].v)} r={3} fill={s.color} />;
                    const d = pts.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join("");
                    const area = `${d}L${x(pts[pts.length - 1].t).toFixed(1)},${y(lo)}L${x(pts[0].t).toFixed(1)},${y(lo)}Z`;
                    return (
                      <g key={s.name}>
                        {series.length === 1 && <path d={area} fill={s.color} opacity={0.12} />}
                        <path d={d} fill="none" stroke={s.color} strokeWidth={1.75} strokeLinejoin="round" strokeLinecap="round" />
                      </g>
                    );
                  })}
                </g>
                {hoverT !== undefined && (
                  <g pointerEvents="none">
                    <line x1={x(hoverT)} x2={x(hoverT)} y1={PAD.top} y2={PAD.top + ih} stroke="var(--sp-muted)" strokeDasharray="2 2" />
                    {hovered.map(({ s, p }) => (
                      <circle key={s.name} cx={x(p.t)} cy={y(p.v)} r={3.5} fill="var(--sp-surface)" stroke={s.color} strokeWidth={2} />
                    ))}
                  </g>
                )}
              </svg>
              {hoverT !== undefined && (
                <div
                  role="status"
                  data-chart-tooltip
                  className={cx(
                    "pointer-events-none absolute top-1 z-10 rounded-md border border-line bg-surface px-2 py-1 text-xs shadow-md",
                  )}
                  style={x(hoverT) > width / 2 ? { right: width - x(hoverT) + 8 } : { left: x(hoverT) + 8 }}
                >
                  <div className="text-muted">{new Date(hoverT).toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" })}</div>
                  {hovered.map(({ s, p }) => (
                    <div key={s.name} className="flex items-center gap-1.5 font-medium whitespace-nowrap">
                      <span aria-hidden className="size-2 rounded-full" style={{ background: s.color }} />
                      {series.length > 1 && <span className="font-normal text-muted">{s.name}</span>}
                      {format(p.v)}
                    </div>
                  ))}
                </div>
              )}
            </>
          )
        )}
      </div>
    </figure>
  );
}

/** RangePicker chooses a chart's time range among a few. */
export function RangePicker<K extends string>({
  ranges,
  value,
  onChange,
}: {
  ranges: readonly { key: K; label: string }[];
  value: K;
  onChange: (key: K) => void;
}) {
  return (
    <div role="radiogroup" aria-label="Time range" className="inline-flex rounded-md border border-line p-0.5">
      {ranges.map((x) => (
        <button
          key={x.key}
          type="button"
          role="radio"
          aria-checked={value === x.key}
          onClick={() => onChange(x.key)}
          className={cx("rounded px-2.5 py-1 text-xs font-medium", value === x.key ? "bg-accent-soft text-accent" : "text-muted hover:text-fg")}
        >
          {x.label}
        </button>
      ))}
    </div>
  );
}
