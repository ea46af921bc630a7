// EnvEditor edits an app's environment variables: rows to add and remove, a secret toggle
// that masks the value, stored secrets shown as dots until replaced, and .env import (pasted
// or from a file, parsed by AppService.ParseDotenv).
import { Eye, EyeOff, FileUp, Lock, Plus, Trash2 } from "lucide-react";
import { useRef, useState } from "react";
import { apps, mergeRows, newRow, type EnvRow } from "../lib/apps";
import { errorMessage } from "../lib/errors";
import { Dialog } from "./dialog";
import { toast } from "./toast";
import { Banner, Button, Field, Input, Toggle, cx } from "./ui";

export function EnvEditor({
  rows,
  onChange,
  errors = {},
  organizationId,
  disabled,
}: {
  rows: EnvRow[];
  onChange: (rows: EnvRow[]) => void;
  /** errors by "<row index>.name" or "<row index>.value". */
  errors?: Record<string, string>;
  organizationId: string;
  disabled?: boolean;
}) {
  const [importing, setImporting] = useState(false);
  const set = (i: number, patch: Partial<EnvRow>) => onChange(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));

  return (
    <div className="space-y-3" data-env-editor>
      {rows.length === 0 ? (
        <p className="rounded-md border border-dashed border-line px-3 py-4 text-center text-sm text-muted">No variables yet.</p>
      ) : (
        <ul className="space-y-3 sm:space-y-2" aria-label="Environment variables">
          {rows.map((r, i) => (
            <EnvRowEditor key={r.key} row={r} n={i + 1} set={(p) => set(i, p)} remove={() => onChange(rows.filter((_, j) => j !== i))} nameError={errors[`${i}.name`]} valueError={errors[`${i}.value`]} disabled={disabled} />
          ))}
        </ul>
      )}
      <div className="flex flex-wrap gap-2">
        <Button size="sm" icon={<Plus className="size-3.5" aria-hidden />} onClick={() => onChange([...rows, newRow()])} disabled={disabled}>
          Add variable
        </Button>
        <Button size="sm" icon={<FileUp className="size-3.5" aria-hidden />} onClick={() => setImporting(true)} disabled={disabled}>
          Import .env
        </Button>
      </div>
      <ImportDialog
        open={importing}
        onOpenChange={setImporting}
        organizationId={organizationId}
        onImport={(vars) => {
          onChange(mergeRows(rows, vars));
          toast.success(`${vars.length} ${vars.length === 1 ? "variable" : "variables"} imported`, "Review them, then save.");
        }}
      />
    </div>
  );
}

function EnvRowEditor({
  row: r,
  n,
  set,
  remove,
  nameError,
  valueError,
  disabled,
}: {
  row: EnvRow;
  n: number;
  set: (p: Partial<EnvRow>) => void;
  remove: () => void;
  nameError?: string;
  valueError?: string;
  disabled?: boolean;
}) {
  const [show, setShow] = useState(false);
  const masked = r.stored && !r.replacing;
  const nameId = `env-${r.key}-name`;
  const valueId = `env-${r.key}-value`;
  return (
    <li className="rounded-md border border-line p-2.5 sm:border-0 sm:p-0" data-env-row={n} data-env-name={r.name || undefined}>
      <div className="grid gap-2 sm:grid-cols-[minmax(0,2fr)_minmax(0,3fr)_auto] sm:items-start">
        <div>
          <Input
            id={nameId}
            aria-label={`Name of variable ${n}`}
            aria-invalid={!!nameError || undefined}
            aria-describedby={nameError ? `${nameId}-err` : undefined}
            invalid={!!nameError}
            value={r.name}
            placeholder="NAME"
            autoComplete="off"
            spellCheck={false}
            className="font-mono text-[13px]"
            disabled={disabled}
            onChange={(e) => set({ name: e.target.value })}
          />
          {nameError && (
            <p id={`${nameId}-err`} role="alert" data-field-error className="mt-1 text-[13px] text-danger">
              {nameError}
            </p>
          )}
        </div>
        <div>
          {masked ? (
            <div className="flex items-center gap-2">
              <span
                className="flex h-9 min-w-0 flex-1 items-center gap-2 rounded-md border border-line bg-subtle px-3 font-mono text-[13px] text-muted"
                aria-label={`Value of variable ${n}: stored secret`}
                data-secret-stored
              >
                <Lock className="size-3.5 shrink-0" aria-hidden />
                ••••••••
              </span>
              <Button size="sm" onClick={() => set({ replacing: true, value: "" })} disabled={disabled} aria-label={`Replace the value of variable ${n}`}>
                Replace
              </Button>
            </div>
          ) : (
            <div className="flex items-center gap-2">
              <Input
                id={valueId}
                aria-label={`Value of variable ${n}`}
                aria-describedby={valueError ? `${valueId}-err` : undefined}
                invalid={!!valueError}
                type={r.secret && !show ? "password" : "text"}
                value={r.value}
                placeholder={r.replacing ? "Type the new value" : "value"}
                autoComplete={r.secret ? "new-password" : "off"}
                spellCheck={false}
                className="font-mono text-[13px]"
                disabled={disabled}
                onChange={(e) => set({ value: e.target.value })}
              />
              {r.secret && (
                <button
                  type="button"
                  className="rounded p-1.5 text-muted hover:bg-subtle hover:text-fg"
                  aria-label={show ? `Hide the value of variable ${n}` : `Show the value of variable ${n}`}
                  onClick={() => setShow(!show)}
                >
                  {show ? <EyeOff className="size-4" aria-hidden /> : <Eye className="size-4" aria-hidden />}
                </button>
              )}
              {r.replacing && (
                <Button size="sm" variant="ghost" onClick={() => set({ replacing: false, value: "" })} disabled={disabled}>
                  Keep current
                </Button>
              )}
            </div>
          )}
          {valueError && (
            <p id={`${valueId}-err`} role="alert" data-field-error className="mt-1 text-[13px] text-danger">
              {valueError}
            </p>
          )}
        </div>
        <div className="flex h-9 items-center justify-between gap-3 sm:justify-end">
          <label className="inline-flex items-center gap-2 text-[13px] text-muted">
            <Toggle
              checked={r.secret}
              disabled={disabled}
              aria-label={`Secret: variable ${n}`}
              onChange={(v) => {
                // A stored secret made plain needs its value typed: the old one can't be read.
                if (!v && r.stored) set({ secret: false, stored: false, replacing: false, value: "" });
                else set({ secret: v });
              }}
            />
            <span aria-hidden>Secret</span>
          </label>
          <button
            type="button"
            disabled={disabled}
            className="rounded p-1.5 text-muted hover:bg-subtle hover:text-danger disabled:opacity-50"
            aria-label={`Remove variable ${n}${r.name ? ` ${r.name}` : ""}`}
            onClick={remove}
          >
            <Trash2 className="size-4" aria-hidden />
          </button>
        </div>
      </div>
    </li>
  );
}

function ImportDialog({
  open,
  onOpenChange,
  organizationId,
  onImport,
}: {
  open: boolean;
  onOpenChange: (o: boolean) => void;
  organizationId: string;
  onImport: (vars: Awaited<ReturnType<typeof apps.parseDotenv>>["env"]) => void;
}) {
  const [text, setText] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const file = useRef<HTMLInputElement>(null);

  function close(o: boolean) {
    onOpenChange(o);
    if (!o) {
      setText("");
      setError("");
    }
  }

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    // The dialog is portalled, but React still bubbles its submit to the form around the editor.
    e.stopPropagation();
    if (!text.trim()) return setError("Paste the file's content, or choose the file.");
    setBusy(true);
    setError("");
    try {
      const res = await apps.parseDotenv({ organizationId, content: text });
      if (!res.env.length) return setError("No variables found in it.");
      onImport(res.env);
      close(false);
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Dialog open={open} onOpenChange={close} wide title="Import a .env file" description="Lines such as NAME=value. Variables already listed get the new value.">
      <form onSubmit={submit} noValidate className="space-y-4">
        {error && <Banner>{error}</Banner>}
        <Field label=".env content">
          {(p) => (
            <textarea
              {...p}
              rows={8}
              value={text}
              spellCheck={false}
              onChange={(e) => setText(e.target.value)}
              placeholder={"DATABASE_URL=postgres://…\nLOG_LEVEL=info"}
              className={cx("w-full rounded-md border border-line bg-surface px-3 py-2 font-mono text-[13px] shadow-sm focus:border-accent")}
            />
          )}
        </Field>
        <div className="flex flex-wrap items-center gap-2 text-sm">
          <input
            ref={file}
            type="file"
            accept=".env,text/plain,*/*"
            aria-label="Choose a .env file"
            className="sr-only"
            onChange={async (e) => {
              const f = e.target.files?.[0];
              if (f) setText(await f.text());
              e.target.value = "";
            }}
          />
          <Button size="sm" onClick={() => file.current?.click()}>
            Choose file…
          </Button>
          <span className="text-muted">or paste it above.</span>
        </div>
        <div className="flex flex-col-reverse gap-2 pt-1 sm:flex-row sm:justify-end">
          <Button onClick={() => close(false)}>Cancel</Button>
          <Button type="submit" variant="primary" loading={busy}>
            Import variables
          </Button>
        </div>
      </form>
    </Dialog>
  );
}
