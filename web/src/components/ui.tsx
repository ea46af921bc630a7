// The dashboard's small building blocks. Styling lives here so pages read as structure.
import {
  forwardRef,
  useEffect,
  useId,
  type ButtonHTMLAttributes,
  type InputHTMLAttributes,
  type ReactNode,
} from "react";
import { AlertTriangle, Loader2, RefreshCw } from "lucide-react";
import { Link } from "wouter";
import { errorMessage } from "../lib/errors";

export function cx(...parts: (string | false | null | undefined)[]) {
  return parts.filter(Boolean).join(" ");
}

type Variant = "primary" | "secondary" | "ghost" | "danger";
const variants: Record<Variant, string> = {
  primary: "bg-accent text-accent-fg hover:bg-accent-hover border border-transparent shadow-sm",
  secondary: "bg-surface text-fg border border-line hover:bg-subtle shadow-sm",
  ghost: "text-fg hover:bg-subtle border border-transparent",
  danger: "bg-danger text-white dark:text-[#1a0b0b] border border-transparent hover:opacity-90 shadow-sm",
};

export interface ButtonProps extends ButtonHTMLAttributes<HTMLButtonElement> {
  variant?: Variant;
  size?: "sm" | "md";
  loading?: boolean;
  icon?: ReactNode;
}

export const Button = forwardRef<HTMLButtonElement, ButtonProps>(function Button(
  { variant = "secondary", size = "md", loading, icon, className, children, disabled, type = "button", ...rest },
  ref,
) {
  return (
    <button
      ref={ref}
      type={type}
      disabled={disabled || loading}
      aria-busy={loading || undefined}
      className={cx(
        "inline-flex items-center justify-center gap-2 rounded-md font-medium whitespace-nowrap transition-colors",
        "disabled:cursor-not-allowed disabled:opacity-50",
        size === "sm" ? "h-8 px-2.5 text-[13px]" : "h-9 px-3.5 text-sm",
        variants[variant],
        className,
      )}
      {...rest}
    >
      {loading ? <Loader2 className="size-4 animate-spin" aria-hidden /> : icon}
      {children}
    </button>
  );
});

export const Input = forwardRef<HTMLInputElement, InputHTMLAttributes<HTMLInputElement> & { invalid?: boolean }>(
  function Input({ className, invalid, ...rest }, ref) {
    return (
      <input
        ref={ref}
        aria-invalid={invalid || undefined}
        className={cx(
          "h-9 w-full rounded-md border bg-surface px-3 text-sm text-fg placeholder:text-muted/70 shadow-sm",
          "transition-colors focus:border-accent focus-visible:outline-offset-0",
          "disabled:cursor-not-allowed disabled:bg-subtle disabled:text-muted",
          invalid ? "border-danger" : "border-line",
          className,
        )}
        {...rest}
      />
    );
  },
);

/**
 * Field labels an input and shows its hint or error beneath it. The child gets the id and
 * aria-describedby through the render function so screen readers read the error too.
 */
export function Field({
  label,
  aside,
  hint,
  error,
  children,
  className,
}: {
  label: ReactNode;
  /** aside sits at the label's right, outside it (e.g. a "Forgot password?" link). */
  aside?: ReactNode;
  hint?: ReactNode;
  error?: string;
  className?: string;
  children: (props: { id: string; "aria-describedby"?: string; invalid: boolean }) => ReactNode;
}) {
  const id = useId();
  const descId = `${id}-desc`;
  return (
    <div className={cx("space-y-1.5", className)}>
      <div className="flex items-baseline justify-between gap-2">
        <label htmlFor={id} className="block text-[13px] font-medium text-fg">
          {label}
        </label>
        {aside}
      </div>
      {children({ id, "aria-describedby": error || hint ? descId : undefined, invalid: !!error })}
      {error ? (
        <p id={descId} className="text-[13px] text-danger" role="alert" data-field-error>
          {error}
        </p>
      ) : hint ? (
        <p id={descId} className="text-[13px] text-muted">
          {hint}
        </p>
      ) : null}
    </div>
  );
}

export function Card({ className, children, ...rest }: { className?: string; children: ReactNode } & Record<string, unknown>) {
  return (
    <section className={cx("rounded-lg border border-line bg-surface shadow-sm", className)} {...rest}>
      {children}
    </section>
  );
}

export function CardHeader({ title, description, actions }: { title: ReactNode; description?: ReactNode; actions?: ReactNode }) {
  return (
    <div className="flex flex-wrap items-start justify-between gap-3 border-b border-line px-4 py-3.5 sm:px-5">
      <div className="min-w-0">
        <h2 className="text-[15px] font-semibold">{title}</h2>
        {description && <p className="mt-0.5 text-[13px] text-muted">{description}</p>}
      </div>
      {actions && <div className="flex shrink-0 items-center gap-2">{actions}</div>}
    </div>
  );
}

/** useTitle names the browser tab after the page. */
export function useTitle(title: ReactNode) {
  useEffect(() => {
    if (typeof title === "string") document.title = `${title} · SkyPanel`;
  }, [title]);
}

export function PageHeader({ title, description, actions }: { title: ReactNode; description?: ReactNode; actions?: ReactNode }) {
  useTitle(title);
  return (
    <div className="mb-6 flex flex-wrap items-end justify-between gap-4">
      <div className="min-w-0">
        <h1 className="text-xl font-semibold tracking-tight">{title}</h1>
        {description && <p className="mt-1 text-sm text-muted">{description}</p>}
      </div>
      {actions && <div className="flex flex-wrap items-center gap-2">{actions}</div>}
    </div>
  );
}

type Tone = "neutral" | "accent" | "success" | "warning" | "danger";
const tones: Record<Tone, string> = {
  neutral: "bg-subtle text-muted border-line",
  accent: "bg-accent-soft text-accent border-transparent",
  success: "bg-success-soft text-success border-transparent",
  warning: "bg-warning-soft text-warning border-transparent",
  danger: "bg-danger-soft text-danger border-transparent",
};

export function Badge({ tone = "neutral", children, className }: { tone?: Tone; children: ReactNode; className?: string }) {
  return (
    <span className={cx("inline-flex items-center gap-1 rounded-full border px-2 py-0.5 text-xs font-medium whitespace-nowrap", tones[tone], className)}>
      {children}
    </span>
  );
}

export function Spinner({ label = "Loading" }: { label?: string }) {
  return (
    <div role="status" className="flex items-center justify-center gap-2 py-10 text-sm text-muted">
      <Loader2 className="size-4 animate-spin" aria-hidden />
      {label}…
    </div>
  );
}

export function Skeleton({ className }: { className?: string }) {
  return <div aria-hidden className={cx("rounded bg-subtle", className)} style={{ animation: "sp-pulse 1.6s ease-in-out infinite" }} />;
}

/** SkeletonRows stands in for a list while it loads. */
export function SkeletonRows({ rows = 3, label = "Loading" }: { rows?: number; label?: string }) {
  return (
    <div role="status" aria-label={label} className="divide-y divide-line">
      {Array.from({ length: rows }, (_, i) => (
        <div key={i} className="flex items-center gap-3 px-4 py-3.5 sm:px-5">
          <Skeleton className="size-8 rounded-full" />
          <div className="flex-1 space-y-2">
            <Skeleton className="h-3 w-1/3" />
            <Skeleton className="h-3 w-1/5" />
          </div>
        </div>
      ))}
    </div>
  );
}

export function EmptyState({
  icon,
  title,
  children,
  action,
}: {
  icon?: ReactNode;
  title: ReactNode;
  children?: ReactNode;
  action?: ReactNode;
}) {
  return (
    <div className="flex flex-col items-center px-6 py-12 text-center">
      {icon && <div className="mb-3 grid size-11 place-items-center rounded-full bg-accent-soft text-accent">{icon}</div>}
      <h3 className="text-[15px] font-semibold">{title}</h3>
      {children && <p className="mt-1 max-w-sm text-sm text-muted">{children}</p>}
      {action && <div className="mt-4">{action}</div>}
    </div>
  );
}

export function ErrorState({ error, onRetry, title = "Couldn't load this" }: { error: unknown; onRetry?: () => void; title?: string }) {
  return (
    <div role="alert" className="flex flex-col items-center px-6 py-10 text-center">
      <div className="mb-3 grid size-11 place-items-center rounded-full bg-danger-soft text-danger">
        <AlertTriangle className="size-5" aria-hidden />
      </div>
      <h3 className="text-[15px] font-semibold">{title}</h3>
      <p className="mt-1 max-w-md text-sm text-muted">{errorMessage(error)}</p>
      {onRetry && (
        <Button className="mt-4" onClick={onRetry} icon={<RefreshCw className="size-4" aria-hidden />}>
          Try again
        </Button>
      )}
    </div>
  );
}

/** Banner is an inline message above a form: errors that belong to no single field. */
export function Banner({ tone = "danger", children }: { tone?: "danger" | "success" | "warning" | "accent"; children: ReactNode }) {
  const cls = {
    danger: "bg-danger-soft text-danger",
    success: "bg-success-soft text-success",
    warning: "bg-warning-soft text-warning",
    accent: "bg-accent-soft text-accent",
  }[tone];
  return (
    <div role={tone === "danger" ? "alert" : "status"} className={cx("rounded-md px-3 py-2.5 text-sm", cls)}>
      {children}
    </div>
  );
}

export function Avatar({ name, className }: { name: string; className?: string }) {
  // For an email, the part before the @ ("ada.lovelace@..." is AL, "ada@..." is A).
  const base = name.includes("@") ? name.slice(0, name.indexOf("@")) : name;
  const initials =
    base
      .split(/[\s._+-]+/)
      .filter(Boolean)
      .slice(0, 2)
      .map((s) => s[0]!.toUpperCase())
      .join("") || "?";
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) % 360;
  return (
    <span
      aria-hidden
      className={cx("grid size-8 shrink-0 place-items-center rounded-full text-xs font-semibold text-white", className)}
      style={{ background: `hsl(${h} 45% 45%)` }}
    >
      {initials}
    </span>
  );
}

/**
 * ListRow is one entry of a list card: a leading icon or avatar, a title and details, and
 * controls that sit at the right on wide screens and under the text on phones.
 */
export function ListRow({
  lead,
  title,
  details,
  controls,
  ...data
}: {
  lead: ReactNode;
  title: ReactNode;
  details?: ReactNode;
  controls?: ReactNode;
} & { [k: `data-${string}`]: string | undefined }) {
  return (
    <li className="flex gap-3 px-4 py-3 sm:px-5" {...data}>
      <div className="shrink-0 pt-0.5">{lead}</div>
      <div className="flex min-w-0 flex-1 flex-col gap-2 sm:flex-row sm:items-center sm:gap-4">
        <div className="min-w-0 flex-1">
          <div className="flex min-w-0 flex-wrap items-center gap-x-2 gap-y-1 text-sm font-medium">{title}</div>
          {details && <div className="mt-0.5 text-[13px] break-words text-muted">{details}</div>}
        </div>
        {controls && <div className="flex shrink-0 flex-wrap items-center gap-2">{controls}</div>}
      </div>
    </li>
  );
}

/** Toggle is an on/off control (a button with role switch), labelled by aria-label or a <label>. */
export function Toggle({
  checked,
  onChange,
  disabled,
  ...rest
}: {
  checked: boolean;
  onChange: (v: boolean) => void;
  disabled?: boolean;
  id?: string;
  "aria-label"?: string;
  "aria-describedby"?: string;
}) {
  return (
    <button
      type="button"
      role="switch"
      aria-checked={checked}
      disabled={disabled}
      onClick={() => onChange(!checked)}
      className={cx(
        "relative inline-flex h-5 w-9 shrink-0 items-center rounded-full border border-transparent transition-colors disabled:cursor-not-allowed disabled:opacity-50",
        checked ? "bg-accent" : "bg-line",
      )}
      {...rest}
    >
      <span aria-hidden className={cx("inline-block size-4 rounded-full bg-white shadow transition-transform", checked ? "translate-x-4" : "translate-x-0.5")} />
    </button>
  );
}

/** Tabs is a row of links that switch a page's sections; the current one is marked selected. */
export function Tabs({ label, items }: { label: string; items: { key: string; label: ReactNode; href: string; current: boolean }[] }) {
  return (
    <div role="tablist" aria-label={label} className="-mx-4 mb-6 flex gap-1 overflow-x-auto border-b border-line px-4 sm:mx-0 sm:px-0">
      {items.map((t) => (
        <Link
          key={t.key}
          role="tab"
          aria-selected={t.current}
          href={t.href}
          data-tab={t.key}
          className={cx(
            "-mb-px shrink-0 border-b-2 px-3 py-2 text-sm whitespace-nowrap transition-colors",
            t.current ? "border-accent font-medium text-accent" : "border-transparent text-muted hover:text-fg",
          )}
        >
          {t.label}
        </Link>
      ))}
    </div>
  );
}
