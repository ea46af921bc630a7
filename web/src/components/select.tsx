// Select is Radix's listbox styled like the inputs; RoleSelect picks an assignable role.
import * as S from "@radix-ui/react-select";
import { Check, ChevronDown } from "lucide-react";
import type { ReactNode } from "react";
import { Role } from "../gen/skypanel/organization/v1/organization_pb";
import { assignableRoles, roleDescription, roleLabel } from "../lib/roles";
import { cx } from "./ui";

export interface Option {
  value: string;
  label: ReactNode;
  description?: ReactNode;
  disabled?: boolean;
}

export function Select({
  value,
  onValueChange,
  options,
  id,
  disabled,
  className,
  "aria-label": ariaLabel,
  "aria-describedby": describedBy,
  size = "md",
  invalid,
}: {
  value: string;
  onValueChange: (v: string) => void;
  options: Option[];
  id?: string;
  disabled?: boolean;
  className?: string;
  "aria-label"?: string;
  "aria-describedby"?: string;
  size?: "sm" | "md";
  invalid?: boolean;
}) {
  return (
    <S.Root value={value} onValueChange={onValueChange} disabled={disabled}>
      <S.Trigger
        id={id}
        aria-label={ariaLabel}
        aria-describedby={describedBy}
        className={cx(
          "inline-flex items-center justify-between gap-2 rounded-md border bg-surface px-3 text-left text-sm shadow-sm",
          "data-[placeholder]:text-muted disabled:cursor-not-allowed disabled:opacity-60",
          size === "sm" ? "h-8" : "h-9",
          invalid ? "border-danger" : "border-line",
          className ?? "w-full",
        )}
      >
        <S.Value />
        <S.Icon>
          <ChevronDown className="size-4 text-muted" aria-hidden />
        </S.Icon>
      </S.Trigger>
      <S.Portal>
        <S.Content
          position="popper"
          sideOffset={4}
          className="z-[60] max-h-[var(--radix-select-content-available-height)] min-w-[var(--radix-select-trigger-width)] overflow-hidden rounded-lg border border-line bg-surface p-1 shadow-lg"
        >
          <S.Viewport>
            {options.map((o) => (
              <S.Item
                key={o.value}
                value={o.value}
                disabled={o.disabled}
                className="relative flex cursor-default items-start rounded-md py-1.5 pr-2 pl-7 text-sm outline-none select-none data-[disabled]:opacity-50 data-[highlighted]:bg-subtle"
              >
                <S.ItemIndicator className="absolute top-2 left-2">
                  <Check className="size-3.5 text-accent" aria-hidden />
                </S.ItemIndicator>
                <div>
                  <S.ItemText>{o.label}</S.ItemText>
                  {o.description && <div className="text-xs text-muted">{o.description}</div>}
                </div>
              </S.Item>
            ))}
          </S.Viewport>
        </S.Content>
      </S.Portal>
    </S.Root>
  );
}

/** RoleSelect offers viewer, member and admin; roles above max are shown but disabled. */
export function RoleSelect({
  value,
  onChange,
  max = Role.ADMIN,
  describe = true,
  ...rest
}: {
  value: Role;
  onChange: (r: Role) => void;
  max?: Role;
  describe?: boolean;
  id?: string;
  disabled?: boolean;
  className?: string;
  "aria-label"?: string;
  "aria-describedby"?: string;
  size?: "sm" | "md";
  invalid?: boolean;
}) {
  return (
    <Select
      value={String(value)}
      onValueChange={(v) => onChange(Number(v) as Role)}
      options={assignableRoles.map((r) => ({
        value: String(r),
        label: roleLabel[r],
        description: describe ? roleDescription[r] : undefined,
        disabled: r > max,
      }))}
      {...rest}
    />
  );
}
