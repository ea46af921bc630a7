// A small SVG bar chart for amounts per period (an hour, a day): one bar per bucket on a time
// axis, a few round ticks, the bucket's value under the pointer. Sparse data stays honest: a
// bucket with nothing has no bar, where a line would run across it.
import { useState, type ReactNode } from "react";
import { useWidth } from "./chart";

export interface Bar {
  t: number; // the bucket's start, ms since the epoch
  v: number;
}

const H = 160;
const PAD = { top: 10, right: 12, bottom: 22, left: 62 };

/** roundTicks returns about n round values from 0 to at least hi; whole numbers if integer. */
function roundTicks(hi: number, integer: boolean, n = 4): number[] {
  if (hi <= 0) hi = 1;
  const raw = hi / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  if (integer) step = Math.max(1, Math.ceil(step));
  const out: number[] = [];
  for (let v = 0; v < hi + step; v += step) {
    out.push(Number(v.toPrecision(12)));
    if (v >= hi) break;
  }
  return out;
}

function timeLabel(t: number, span: number, bucket: number): string {
  const d = new Date(t);
  if (bucket >= 86400_000 || span > 2 * 86400_000) return d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  return d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

export function BarChart({
  title,
  bars,
  since,
  until,
  bucket,
  format,
  empty = "No data in this range.",
  summary,
  integer,
}: {
  title: string;
  bars: Bar[];
  since: number;
  until: number;
  /** bucket is how long each bar's period is, in ms. */
  bucket: number;
  format: (v: number) => string;
  empty?: ReactNode;
  summary?: ReactNode;
  /** integer keeps the ticks whole (minor units of money, counts). */
  integer?: boolean;
}) {
  const [ref, width] = useWidth<HTMLDivElement>();
  const [hover, setHover] = useState<Bar | null>(null);

  const shown = bars.filter((b) => b.v > 0 && b.t + bucket > since && b.t < until);
  const ticks = roundTicks(Math.max(0, ...shown.map((b) => b.v)) * 1.05, !!integer);
  const hi = ticks[ticks.length - 1] || 1;
  const iw = Math.max(10, width - PAD.left - PAD.right);
  const ih = H - PAD.top - PAD.bottom;
  const span = Math.max(1, until - since);
  const x = (t: number) => PAD.left + ((t - since) / span) * iw;
  const y = (v: number) => PAD.top + ih - (v / hi) * ih;
  const bw = Math.max(2, (bucket / span) * iw - (bucket / span) * iw * 0.2);
  const xTickCount = width < 420 ? 3 : 5;
  const xTicks = Array.from({ length: xTickCount }, (_, i) => since + (span * (i + 0.5)) / xTickCount);

  return (
    <figure className="min-w-0" data-chart={title} data-points={shown.length}>
      <figcaption className="mb-1.5 flex flex-wrap items-baseline justify-between gap-x-3 gap-y-0.5">
        <span className="text-[13px] font-medium">{title}</span>
        <span className="text-xs text-muted">{summary}</span>
      </figcaption>
      <div ref={ref} className="relative">
        {shown.length === 0 ? (
          <div className="grid place-items-center rounded-md border border-dashed border-line px-4 text-center text-sm text-muted" style={{ height: H }} data-empty>
            {empty}
          </div>
        ) : (
          width > 0 && (
            <>
              <svg width={width} height={H} role="img" aria-label={`${title} chart`} className="block select-none" onPointerLeave={() => setHover(null)}>
                {ticks.map((v) => (
                  <g key={v}>
                    <line x1={PAD.left} x2={PAD.left + iw} y1={y(v)} y2={y(v)} stroke="var(--sp-line)" strokeDasharray={v === 0 ? undefined : "3 3"} />
                    <text x={PAD.left - 6} y={y(v)} dy="0.32em" textAnchor="end" className="fill-muted text-[10px]">
                      {format(v)}
                    </text>
                  </g>
                ))}
                {xTicks.map((t) => (
                  <text key={t} x={x(t)} y={H - 6} textAnchor="middle" className="fill-muted text-[10px]">
                    {timeLabel(t, span, bucket)}
                  </text>
                ))}
                {shown.map((b) => {
                  const left = Math.max(PAD.left, x(b.t) + ((bucket / span) * iw - bw) / 2);
                  return (
                    <rect
                      key={b.t}
                      x={left}
                      y={y(b.v)}
                      width={Math.min(bw, PAD.left + iw - left)}
                      height={Math.max(1, y(0) - y(b.v))}
                      rx={Math.min(2, bw / 4)}
                      fill="var(--sp-accent)"
                      opacity={hover && hover.t !== b.t ? 0.55 : 1}
                      onPointerEnter={() => setHover(b)}
                    />
                  );
                })}
              </svg>
              {hover && (
                <div
                  role="status"
                  data-chart-tooltip
                  className="pointer-events-none absolute top-1 z-10 rounded-md border border-line bg-surface px-2 py-1 text-xs shadow-md"
                  style={x(hover.t) > width / 2 ? { right: width - x(hover.t) + 8 } : { left: x(hover.t) + bw + 8 }}
                >
                  <div className="text-muted">
                    {new Date(hover.t).toLocaleString(undefined, bucket >= 86400_000 ? { dateStyle: "medium" } : { dateStyle: "short", timeStyle: "short" })}
                  </div>
                  <div className="font-medium whitespace-nowrap">{format(hover.v)}</div>
                </div>
              )}
            </>
          )
        )}
      </div>
    </figure>
  );
}
