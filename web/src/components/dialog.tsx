// Modal dialogs (Radix): Dialog for forms, Confirm for destructive actions. Both trap focus,
// close on Escape and return focus to what opened them.
import * as D from "@radix-ui/react-dialog";
import * as A from "@radix-ui/react-alert-dialog";
import { X } from "lucide-react";
import { useState, type ReactNode } from "react";
import { Button, cx } from "./ui";

const overlay = "fixed inset-0 z-50 bg-black/40 backdrop-blur-[1px]";
const panel =
  "fixed top-1/2 left-1/2 z-50 max-h-[calc(100dvh-2rem)] w-[calc(100vw-2rem)] -translate-x-1/2 -translate-y-1/2 overflow-y-auto rounded-xl border border-line bg-surface p-5 shadow-xl focus:outline-none";

export function Dialog({
  open,
  onOpenChange,
  title,
  description,
  children,
  wide,
}: {
  open: boolean;
  onOpenChange: (open: boolean) => void;
  title: ReactNode;
  description?: ReactNode;
  children: ReactNode;
  wide?: boolean;
}) {
  return (
    <D.Root open={open} onOpenChange={onOpenChange}>
      <D.Portal>
        <D.Overlay className={overlay} style={{ animation: "sp-fade-in 120ms ease-out" }} />
        <D.Content
          className={cx(panel, wide ? "max-w-2xl" : "max-w-md")}
          style={{ animation: "sp-pop-in 140ms ease-out" }}
        >
          <div className="mb-4 flex items-start justify-between gap-4">
            <div>
              <D.Title className="text-base font-semibold">{title}</D.Title>
              {description ? (
                <D.Description className="mt-1 text-sm text-muted">{description}</D.Description>
              ) : (
                <D.Description className="sr-only">{title}</D.Description>
              )}
            </div>
            <D.Close aria-label="Close" className="-m-1 rounded p-1 text-muted hover:bg-subtle hover:text-fg">
              <X className="size-4" aria-hidden />
            </D.Close>
          </div>
          {children}
        </D.Content>
      </D.Portal>
    </D.Root>
  );
}

/**
 * Confirm asks before a destructive action. The action runs while the dialog stays open
 * (its button shows progress); the dialog closes when onConfirm resolves and stays open
 * when it throws, so the caller's error toast has context.
 */
export function Confirm({
  trigger,
  title,
  description,
  confirmLabel,
  onConfirm,
  children,
  confirmDisabled,
  open: openProp,
  onOpenChange,
}: {
  trigger?: ReactNode;
  title: ReactNode;
  description: ReactNode;
  confirmLabel: string;
  onConfirm: () => Promise<unknown>;
  children?: ReactNode;
  confirmDisabled?: boolean;
  open?: boolean;
  onOpenChange?: (open: boolean) => void;
}) {
  const [openState, setOpenState] = useState(false);
  const [busy, setBusy] = useState(false);
  const open = openProp ?? openState;
  const setOpen = onOpenChange ?? setOpenState;
  return (
    <A.Root open={open} onOpenChange={(o) => !busy && setOpen(o)}>
      {trigger && <A.Trigger asChild>{trigger}</A.Trigger>}
      <A.Portal>
        <A.Overlay className={overlay} style={{ animation: "sp-fade-in 120ms ease-out" }} />
        <A.Content className={cx(panel, "max-w-md")} style={{ animation: "sp-pop-in 140ms ease-out" }}>
          <A.Title className="text-base font-semibold">{title}</A.Title>
          <A.Description asChild>
            <div className="mt-2 text-sm text-muted">{description}</div>
          </A.Description>
          {children && <div className="mt-4">{children}</div>}
          <div className="mt-5 flex flex-col-reverse gap-2 sm:flex-row sm:justify-end">
            <A.Cancel asChild>
              <Button disabled={busy}>Cancel</Button>
            </A.Cancel>
            <Button
              variant="danger"
              loading={busy}
              disabled={confirmDisabled}
              onClick={async () => {
                setBusy(true);
                try {
                  await onConfirm();
                  setOpen(false);
                } catch {
                  // the caller reported it
                } finally {
                  setBusy(false);
                }
              }}
            >
              {confirmLabel}
            </Button>
          </div>
        </A.Content>
      </A.Portal>
    </A.Root>
  );
}
