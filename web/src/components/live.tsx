import type { LiveStatus } from "../lib/live";
import { cx } from "./ui";

const text: Record<LiveStatus, string> = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  unavailable: "Live updates off",
};

export function LiveIndicator({ status }: { status: LiveStatus }) {
  return (
    <span role="status" data-live={status} className="inline-flex items-center gap-1.5 rounded-full border border-line bg-surface px-2.5 py-1 text-xs font-medium text-muted">
      <span
        aria-hidden
        className={cx(
          "size-2 rounded-full",
          status === "live" ? "bg-success" : status === "unavailable" ? "bg-muted" : "bg-warning",
        )}
        style={status === "live" ? undefined : { animation: "sp-pulse 1.2s ease-in-out infinite" }}
      />
      {text[status]}
    </span>
  );
}
