// Dates for people: absolute in the reader's locale, relative for recent things.
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const rel = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

export function toDate(ts: Timestamp | undefined): Date | undefined {
  return ts ? timestampDate(ts) : undefined;
}

export function formatDate(ts: Timestamp | undefined): string {
  const d = toDate(ts);
  return d ? dateFmt.format(d) : "—";
}

export function formatDateTime(ts: Timestamp | undefined): string {
  const d = toDate(ts);
  return d ? dateTimeFmt.format(d) : "—";
}

/** formatRelative says "3 minutes ago" or "in 2 days". */
export function formatRelative(ts: Timestamp | undefined, now = Date.now()): string {
  const d = toDate(ts);
  if (!d) return "—";
  const s = Math.round((d.getTime() - now) / 1000);
  const abs = Math.abs(s);
  if (abs < 45) return s <= 0 ? "just now" : "in a few seconds";
  if (abs < 3600) return rel.format(Math.round(s / 60), "minute");
  if (abs < 86400) return rel.format(Math.round(s / 3600), "hour");
  if (abs < 86400 * 30) return rel.format(Math.round(s / 86400), "day");
  if (abs < 86400 * 365) return rel.format(Math.round(s / (86400 * 30)), "month");
  return rel.format(Math.round(s / (86400 * 365)), "year");
}
