// Billing for the dashboard: the API client, wallet states as words and colours, amounts typed
// in major units, and saving the files the API renders (invoices, usage exports).
import { createClient } from "@connectrpc/connect";
import { useQuery } from "@connectrpc/connect-query";
import type { ReactNode } from "react";
import { Link } from "wouter";
import { BillingService, type File as BillingFile, type Wallet } from "../gen/skypanel/billing/v1/billing_pb";
import { transport } from "../lib/api";
import { decimalToMinor, formatMoney } from "../lib/apps";
import { formatDateTime } from "../lib/format";
import { orgPath, useOrg } from "../lib/org";
import { Badge, Banner } from "./ui";

export const billing = createClient(BillingService, transport);

type Tone = "neutral" | "accent" | "success" | "warning" | "danger";

/** walletStates are the states a wallet is in (Wallet.state), as the filter offers them. */
export const walletStates = ["ok", "low", "grace", "suspended"] as const;

export const walletStateInfo: Record<string, { label: string; tone: Tone }> = {
  ok: { label: "OK", tone: "success" },
  low: { label: "Low balance", tone: "warning" },
  grace: { label: "Grace period", tone: "warning" },
  suspended: { label: "Suspended", tone: "danger" },
};

/** WalletStateBadge shows a wallet's state; a wallet never used yet counts as OK. */
export function WalletStateBadge({ wallet }: { wallet: Wallet | undefined }) {
  const state = wallet?.state || "ok";
  const info = walletStateInfo[state] ?? { label: state, tone: "neutral" as Tone };
  return (
    <span data-wallet-state={state}>
      <Badge tone={info.tone}>{info.label}</Badge>
    </span>
  );
}

/** walletCurrency is the wallet's currency, or fallback before its first use. */
export function walletCurrency(w: Wallet | undefined, fallback = "USD"): string {
  return w?.currency || fallback;
}

/** balanceText formats the wallet's balance in its currency. */
export function balanceText(w: Wallet | undefined): string {
  return formatMoney(w?.balance ?? 0n, walletCurrency(w));
}

/** stateNote says what a wallet's state means for the organization's apps, or nothing when all is well. */
export function stateNote(w: Wallet | undefined, { admin = false }: { admin?: boolean } = {}): ReactNode {
  switch (w?.state) {
    case "low":
      return `The balance is at or under the low-balance warning of ${formatMoney(w.lowBalanceThreshold, walletCurrency(w))}.`;
    case "grace":
      return `The balance is negative: apps will be suspended at ${formatDateTime(w.graceEndsAt)}${admin ? "" : " unless the wallet is topped up"}.`;
    case "suspended": {
      const why = w.suspendReason ? `: ${w.suspendReason}` : "";
      const by = w.suspendedBy === "admin" ? "by a platform administrator" : "because the grace period ran out";
      const next = admin ? "" : w.suspendedBy === "admin" ? " Contact the platform's administrators to resume them." : " Topping up resumes them.";
      return `Apps are suspended ${by} since ${formatDateTime(w.suspendedAt)}${why}.${next}`;
    }
    default:
      return null;
  }
}

/**
 * parseAmount reads an amount typed in major units ("20", "20.00") as minor units, or says
 * what is wrong. signed allows a leading minus (adjustments).
 */
export function parseAmount(text: string, currency: string, { signed = false } = {}): { minor?: bigint; error?: string } {
  const t = text.trim();
  if (!t) return { error: "Enter an amount." };
  const neg = signed && t.startsWith("-");
  const r = decimalToMinor(neg ? t.slice(1) : t, currency);
  if (r.minor === undefined) return { error: r.error?.replace("such as 0.05", signed ? "such as 10.00 or -2.50" : "such as 20.00") };
  return { minor: neg ? -r.minor : r.minor };
}

/** saveFile hands a file the API rendered to the browser as a download, under its own name. */
export function saveFile(f: BillingFile | undefined) {
  if (!f) throw new Error("The server sent no file.");
  // Copy into a fresh ArrayBuffer: the message's bytes may be a view into a larger buffer.
  const url = URL.createObjectURL(new Blob([f.content.slice()], { type: f.contentType || "application/octet-stream" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = f.filename || "download";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** formatUnitHours says how many unit-hours (replica-hours) unit-seconds are: "2 h", "0.5 h". */
export function formatUnitHours(unitSeconds: bigint | number): string {
  const h = Number(unitSeconds) / 3600;
  return `${h >= 100 ? Math.round(h).toLocaleString() : Number(h.toFixed(2)).toLocaleString()} h`;
}

/** monthLabel writes "2026-11" as "November 2026". */
export function monthLabel(month: string): string {
  const m = /^(\d{4})-(\d{2})$/.exec(month);
  if (!m) return month;
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, 1)).toLocaleDateString(undefined, { month: "long", year: "numeric", timeZone: "UTC" });
}

/**
 * BalanceNotice warns on the organization's pages while its apps are about to be suspended
 * (grace) or are suspended, with the way to the billing page.
 */
export function BalanceNotice() {
  const org = useOrg();
  const q = useQuery(BillingService.method.getWallet, { organizationId: org.id }, { refetchInterval: 30_000 });
  const w = q.data?.wallet;
  if (w?.state !== "grace" && w?.state !== "suspended") return null;
  return (
    <div className="mb-4" data-balance-notice={w.state}>
      <Banner tone={w.state === "suspended" ? "danger" : "warning"}>
        {stateNote(w)}{" "}
        <Link href={orgPath(org.slug, "billing")} className="font-medium underline">
          Billing
        </Link>
      </Banner>
    </div>
  );
}
