// The app's logs, live: the last lines of every replica, then new ones as they are written.
// Filter by replica, search (matches are highlighted), pause (new lines wait in a buffer),
// download what is shown. The view follows new lines until the reader scrolls up.
import { ArrowDown, Download, Pause, Play, Search, Trash2 } from "lucide-react";
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { LiveIndicator } from "../../../components/live";
import { Select } from "../../../components/select";
import { Badge, Banner, Button, Card, Input, cx } from "../../../components/ui";
import { download, useLogStream, type LogEntry } from "../../../lib/apps";
import { errorMessage } from "../../../lib/errors";
import { useOrg } from "../../../lib/org";
import type { TabProps } from "./AppDetail";

/** MAX_LINES caps what the page holds; the oldest lines go first. */
const MAX_LINES = 5000;
const tails = ["100", "500", "1000", "5000"];
const replicaColors = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#db2777", "#0891b2", "#65a30d", "#dc2626"];

const cap = (xs: LogEntry[]) => (xs.length > MAX_LINES ? xs.slice(xs.length - MAX_LINES) : xs);
const time = (ms: number) => {
  const d = new Date(ms);
  return `${d.toLocaleTimeString(undefined, { hour12: false })}.${String(d.getMilliseconds()).padStart(3, "0")}`;
};

function highlight(text: string, q: string): ReactNode {
  if (!q) return text;
  const lower = text.toLowerCase();
  const needle = q.toLowerCase();
  const out: ReactNode[] = [];
  let from = 0;
  for (let i = lower.indexOf(needle); i >= 0; i = lower.indexOf(needle, from)) {
    if (i > from) out.push(text.slice(from, i));
    out.push(
      <mark key={i} className="rounded-sm bg-warning-soft px-0.5 text-warning ring-1 ring-warning/40">
        {text.slice(i, i + needle.length)}
      </mark>,
    );
    from = i + needle.length;
  }
  out.push(text.slice(from));
  return out;
}

export default function LogsTab({ app }: TabProps) {
  const org = useOrg();
  const [tail, setTail] = useState("100");
  const [lines, setLines] = useState<LogEntry[]>([]);
  const [paused, setPaused] = useState(false);
  const [held, setHeld] = useState(0);
  const [replica, setReplica] = useState("all");
  const [query, setQuery] = useState("");
  const [onlyMatching, setOnlyMatching] = useState(false);
  const [stick, setStick] = useState(true);
  const pending = useRef<LogEntry[]>([]);
  const pausedRef = useRef(paused);
  pausedRef.current = paused;
  const box = useRef<HTMLDivElement>(null);

  const onLines = useCallback((batch: LogEntry[]) => {
    if (pausedRef.current) {
      pending.current = cap([...pending.current, ...batch]);
      setHeld(pending.current.length);
    } else setLines((prev) => cap([...prev, ...batch]));
  }, []);
  const stream = useLogStream(org.id, app.id, Number(tail), onLines);

  // A new tail size starts over.
  useEffect(() => {
    setLines([]);
    pending.current = [];
    setHeld(0);
  }, [tail]);

  function resume() {
    setLines((prev) => cap([...prev, ...pending.current]));
    pending.current = [];
    setHeld(0);
    setPaused(false);
    setStick(true);
  }

  const replicas = useMemo(() => [...new Set(lines.map((l) => l.replica))].sort((a, b) => a - b), [lines]);
  const q = query.trim();
  const shown = useMemo(
    () =>
      lines.filter(
        (l) => (replica === "all" || String(l.replica) === replica) && (!onlyMatching || !q || l.text.toLowerCase().includes(q.toLowerCase())),
      ),
    [lines, replica, onlyMatching, q],
  );
  const matches = useMemo(() => (q ? shown.filter((l) => l.text.toLowerCase().includes(q.toLowerCase())).length : 0), [shown, q]);

  useLayoutEffect(() => {
    const el = box.current;
    if (el && stick) el.scrollTop = el.scrollHeight;
  }, [shown, stick]);

  function onScroll() {
    const el = box.current;
    if (!el) return;
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
    if (atBottom !== stick) setStick(atBottom);
  }

  function save() {
    const text = shown.map((l) => `${new Date(l.at).toISOString()} [replica ${l.replica}] ${l.stream === "stderr" ? "(stderr) " : ""}${l.text}`).join("\n");
    const stamp = new Date().toISOString().replace(/[:]/g, "-").replace(/\..+$/, "");
    download(`${app.name}-${stamp}.log`, text + (text ? "\n" : ""));
  }

  return (
    <Card>
      <div className="flex flex-col gap-3 border-b border-line p-3 sm:p-4">
        <div className="flex flex-wrap items-end gap-2">
          <div className="relative min-w-0 flex-1 basis-48">
            <Search className="pointer-events-none absolute top-2.5 left-2.5 size-4 text-muted" aria-hidden />
            <Input type="search" aria-label="Search logs" placeholder="Search" value={query} onChange={(e) => setQuery(e.target.value)} className="pl-8" />
          </div>
          <Select
            aria-label="Replica"
            className="w-36"
            value={replica}
            onValueChange={setReplica}
            options={[{ value: "all", label: "All replicas" }, ...replicas.map((r) => ({ value: String(r), label: `Replica ${r}` }))]}
          />
          <Select aria-label="Lines to load" className="w-32" value={tail} onValueChange={setTail} options={tails.map((t) => ({ value: t, label: `Last ${t}` }))} />
        </div>
        <div className="flex flex-wrap items-center gap-2">
          {paused ? (
            <Button size="sm" variant="primary" icon={<Play className="size-3.5" aria-hidden />} onClick={resume}>
              Resume{held ? ` (${held} new)` : ""}
            </Button>
          ) : (
            <Button size="sm" icon={<Pause className="size-3.5" aria-hidden />} onClick={() => setPaused(true)}>
              Pause
            </Button>
          )}
          <Button size="sm" icon={<Download className="size-3.5" aria-hidden />} onClick={save} disabled={!shown.length}>
            Download
          </Button>
          <Button size="sm" variant="ghost" icon={<Trash2 className="size-3.5" aria-hidden />} onClick={() => setLines([])} disabled={!lines.length}>
            Clear
          </Button>
          <label className="inline-flex items-center gap-1.5 text-[13px] text-muted">
            <input type="checkbox" checked={onlyMatching} onChange={(e) => setOnlyMatching(e.target.checked)} className="size-3.5 accent-[var(--sp-accent)]" />
            Only matching lines
          </label>
          <span className="ml-auto flex items-center gap-2 text-xs text-muted">
            <span aria-live="polite" data-testid="log-count">
              {shown.length} {shown.length === 1 ? "line" : "lines"}
              {q && `, ${matches} matching`}
            </span>
            {paused && <Badge tone="warning">Paused</Badge>}
            <LiveIndicator status={stream.status} />
          </span>
        </div>
      </div>
      {stream.error !== undefined && (
        <div className="p-3 sm:p-4">
          <Banner>{errorMessage(stream.error)}</Banner>
        </div>
      )}
      <div className="relative">
        <div
          ref={box}
          onScroll={onScroll}
          role="log"
          aria-label="Log lines"
          aria-live="off"
          tabIndex={0}
          className="h-[28rem] overflow-auto bg-subtle/40 py-2 font-mono text-xs leading-5 sm:h-[32rem]"
        >
          {shown.length === 0 ? (
            <p className="px-4 py-6 text-center font-sans text-sm text-muted">
              {stream.status === "connecting" ? "Connecting to the logs…" : lines.length ? "No lines match." : "No log lines yet. New lines appear here as the app writes them."}
            </p>
          ) : (
            shown.map((l) => (
              <div key={l.id} className={cx("flex gap-2 px-3 hover:bg-subtle sm:px-4", l.stream === "stderr" && "text-danger")} data-log-replica={l.replica}>
                <span className="shrink-0 text-muted tabular-nums select-none">{time(l.at)}</span>
                <span className="shrink-0 font-semibold select-none" style={{ color: replicaColors[(l.replica - 1 + replicaColors.length) % replicaColors.length] }}>
                  r{l.replica}
                </span>
                <span className="min-w-0 break-all whitespace-pre-wrap">{highlight(l.text, q)}</span>
              </div>
            ))
          )}
        </div>
        {!stick && shown.length > 0 && (
          <Button
            size="sm"
            variant="primary"
            className="absolute right-4 bottom-3 shadow-lg"
            icon={<ArrowDown className="size-3.5" aria-hidden />}
            onClick={() => {
              setStick(true);
              const el = box.current;
              if (el) el.scrollTop = el.scrollHeight;
            }}
          >
            Jump to latest
          </Button>
        )}
      </div>
    </Card>
  );
}
