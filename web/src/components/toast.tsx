// Toasts report the result of an action. toast() may be called from anywhere; <Toaster/>
// (in the app shell) renders them with Radix, which handles focus, swipe and the live region.
import * as T from "@radix-ui/react-toast";
import { CheckCircle2, AlertTriangle, Info, X } from "lucide-react";
import { useSyncExternalStore } from "react";
import { cx } from "./ui";
import { errorMessage } from "../lib/errors";

type Kind = "success" | "error" | "info";
interface Item {
  id: number;
  kind: Kind;
  title: string;
  description?: string;
}

let items: Item[] = [];
let nextId = 1;
const listeners = new Set<() => void>();
const emit = () => listeners.forEach((fn) => fn());

function push(kind: Kind, title: string, description?: string) {
  items = [...items.slice(-3), { id: nextId++, kind, title, description }];
  emit();
}

function remove(id: number) {
  items = items.filter((i) => i.id !== id);
  emit();
}

export const toast = {
  success: (title: string, description?: string) => push("success", title, description),
  info: (title: string, description?: string) => push("info", title, description),
  error: (title: string, err?: unknown) => push("error", title, err === undefined ? undefined : errorMessage(err)),
};

const icons = {
  success: <CheckCircle2 className="size-5 text-success" aria-hidden />,
  error: <AlertTriangle className="size-5 text-danger" aria-hidden />,
  info: <Info className="size-5 text-accent" aria-hidden />,
};

export function Toaster() {
  const list = useSyncExternalStore(
    (fn) => {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    () => items,
  );
  return (
    <T.Provider swipeDirection="right" duration={5000}>
      {list.map((t) => (
        <T.Root
          key={t.id}
          type={t.kind === "error" ? "foreground" : "background"}
          duration={t.kind === "error" ? 8000 : 5000}
          onOpenChange={(open) => !open && remove(t.id)}
          data-toast={t.kind}
          className={cx(
            "pointer-events-auto flex w-full items-start gap-3 rounded-lg border border-line bg-surface p-3.5 shadow-lg",
            "data-[swipe=move]:translate-x-[var(--radix-toast-swipe-move-x)] data-[swipe=end]:animate-none",
          )}
          style={{ animation: "sp-toast-in 160ms ease-out" }}
        >
          <span className="mt-px">{icons[t.kind]}</span>
          <div className="min-w-0 flex-1">
            <T.Title className="text-sm font-medium">{t.title}</T.Title>
            {t.description && <T.Description className="mt-0.5 text-[13px] text-muted break-words">{t.description}</T.Description>}
          </div>
          <T.Close aria-label="Dismiss" className="rounded p-0.5 text-muted hover:text-fg">
            <X className="size-4" aria-hidden />
          </T.Close>
        </T.Root>
      ))}
      <T.Viewport className="fixed right-0 bottom-0 z-[100] flex w-full max-w-sm flex-col gap-2 p-4 outline-none" />
    </T.Provider>
  );
}
