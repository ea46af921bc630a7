// /admin/billing: every organization's wallet and state. Platform admins credit and correct
// balances, suspend and resume organizations (each with a reason for the activity log), and
// can meter the hours not metered yet instead of waiting for the next hour.
import { useQuery } from "@connectrpc/connect-query";
import { Ban, Gauge, Minus, Play, Plus, Wallet as WalletIcon } from "lucide-react";
import { useState } from "react";
import { balanceText, billing, parseAmount, stateNote, walletCurrency, walletStateInfo, walletStates, WalletStateBadge } from "../../../components/billing";
import { Dialog } from "../../../components/dialog";
import { Select } from "../../../components/select";
import { toast } from "../../../components/toast";
import { Avatar, Banner, Button, Card, EmptyState, ErrorState, Field, Input, ListRow, PageHeader, SkeletonRows } from "../../../components/ui";
import { BillingService, type OrganizationWallet } from "../../../gen/skypanel/billing/v1/billing_pb";
import { invalidate } from "../../../lib/api";
import { formatMoney } from "../../../lib/apps";
import { formatRelative } from "../../../lib/format";
import { useApiForm } from "../../../lib/forms";
import { SearchBox } from "../Search";

type Action = "credit" | "adjust" | "suspend" | "resume";

const actionText: Record<Action, { title: string; description: string; submit: string; done: string }> = {
  credit: { title: "Credit", description: "Adds money to the wallet, e.g. a bank transfer or a goodwill credit.", submit: "Credit wallet", done: "Wallet credited" },
  adjust: { title: "Adjust", description: "Corrects the balance by a signed amount: negative takes money out.", submit: "Adjust balance", done: "Balance adjusted" },
  suspend: { title: "Suspend", description: "Scales every app of the organization to 0; its sites answer with a suspended page until it is resumed.", submit: "Suspend organization", done: "Organization suspended" },
  resume: { title: "Resume", description: "Ends the suspension: the apps run again as they were.", submit: "Resume organization", done: "Organization resumed" },
};

function ActionDialog({ ow, action, onClose }: { ow: OrganizationWallet; action: Action; onClose: () => void }) {
  const w = ow.wallet!;
  const [amount, setAmount] = useState("");
  const [currency, setCurrency] = useState(walletCurrency(w));
  const [reason, setReason] = useState("");
  const form = useApiForm(["amount", "reason", "currency"]);
  const text = actionText[action];
  const money = action === "credit" || action === "adjust";

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const errs: Record<string, string> = {};
    const cur = currency.trim().toUpperCase();
    if (action === "credit" && !/^[A-Z]{3}$/.test(cur)) errs.currency = "A three-letter ISO code, e.g. USD.";
    const a = money ? parseAmount(amount, /^[A-Z]{3}$/.test(cur) ? cur : "USD", { signed: action === "adjust" }) : {};
    if (a.error) errs.amount = a.error;
    else if (money && a.minor === 0n) errs.amount = "Enter an amount other than 0.";
    else if (action === "credit" && a.minor! < 0n) errs.amount = "A credit adds money; use Adjust to take some out.";
    if (reason.trim().length < 3) errs.reason = "Say why, in at least 3 characters: it goes into the activity log.";
    if (Object.keys(errs).length) return form.setFields(errs);
    const organizationId = w.organizationId;
    const r = reason.trim();
    const res = await form.run(async () => {
      switch (action) {
        case "credit":
          return billing.creditWallet({ organizationId, amount: a.minor!, currency: cur, reason: r });
        case "adjust":
          return billing.adjustWallet({ organizationId, amount: a.minor!, reason: r });
        case "suspend":
          return billing.suspendOrganization({ organizationId, reason: r });
        case "resume":
          return billing.resumeOrganization({ organizationId, reason: r });
      }
    });
    if (!res) return;
    await invalidate(BillingService.method.listWallets, BillingService.method.getWallet, BillingService.method.listTransactions, BillingService.method.getAnalytics);
    toast.success(text.done, ow.organizationName);
    onClose();
  }

  return (
    <Dialog open onOpenChange={(o) => !o && onClose()} title={`${text.title} ${ow.organizationName}`} description={text.description}>
      <form onSubmit={submit} noValidate className="space-y-4">
        {form.formError && <Banner>{form.formError}</Banner>}
        {money && (
          <div className="text-sm text-muted">
            Balance now: <span className="font-medium text-fg tabular-nums">{balanceText(w)}</span>
          </div>
        )}
        {money && (
          <div className="flex flex-wrap gap-4">
            <Field label="Amount" error={form.fields.amount} hint={action === "adjust" ? "Negative to take money out." : undefined} className="flex-1">
              {(p) => <Input {...p} autoFocus inputMode="decimal" value={amount} onChange={(e) => setAmount(e.target.value)} placeholder={action === "adjust" ? "-5.00" : "20.00"} className="tabular-nums" />}
            </Field>
            {action === "credit" && (
              <Field label="Currency" error={form.fields.currency}>
                {(p) => (
                  <Input
                    {...p}
                    value={currency}
                    onChange={(e) => setCurrency(e.target.value.toUpperCase())}
                    maxLength={3}
                    disabled={!!w.currency}
                    className="w-24 font-mono uppercase"
                  />
                )}
              </Field>
            )}
          </div>
        )}
        <Field label="Reason" error={form.fields.reason} hint="Kept in the activity log.">
          {(p) => <Input {...p} autoFocus={!money} value={reason} onChange={(e) => setReason(e.target.value)} maxLength={500} placeholder={action === "suspend" ? "Abuse report #123" : "Bank transfer of 3 March"} />}
        </Field>
        <div className="flex flex-col-reverse gap-2 pt-1 sm:flex-row sm:justify-end">
          <Button onClick={onClose}>Cancel</Button>
          <Button type="submit" variant={action === "suspend" ? "danger" : "primary"} loading={form.pending}>
            {text.submit}
          </Button>
        </div>
      </form>
    </Dialog>
  );
}

function WalletRow({ ow }: { ow: OrganizationWallet }) {
  const w = ow.wallet!;
  const [action, setAction] = useState<Action | null>(null);
  const suspended = w.state === "suspended";
  const note = stateNote(w, { admin: true });
  return (
    <ListRow
      data-org-wallet={ow.organizationName}
      data-state={w.state || "ok"}
      lead={<Avatar name={ow.organizationName} className="rounded-md" />}
      title={
        <>
          <span className="truncate">{ow.organizationName}</span>
          <span className={w.balance < 0n ? "text-danger tabular-nums" : "font-normal tabular-nums"} data-balance={String(w.balance)}>
            {balanceText(w)}
          </span>
          <WalletStateBadge wallet={w} />
        </>
      }
      details={
        <span className="flex flex-col gap-0.5">
          {note && <span>{note}</span>}
          <span className="text-xs">
            Warns at {formatMoney(w.lowBalanceThreshold, walletCurrency(w))}
            {w.updatedAt && <> · updated {formatRelative(w.updatedAt)}</>}
          </span>
        </span>
      }
      controls={
        <>
          <Button size="sm" icon={<Plus className="size-3.5" aria-hidden />} onClick={() => setAction("credit")} aria-label={`Credit ${ow.organizationName}`}>
            Credit
          </Button>
          <Button size="sm" icon={<Minus className="size-3.5" aria-hidden />} onClick={() => setAction("adjust")} aria-label={`Adjust ${ow.organizationName}`}>
            Adjust
          </Button>
          {suspended ? (
            <Button size="sm" icon={<Play className="size-3.5" aria-hidden />} onClick={() => setAction("resume")} aria-label={`Resume ${ow.organizationName}`}>
              Resume
            </Button>
          ) : (
            <Button size="sm" icon={<Ban className="size-3.5" aria-hidden />} onClick={() => setAction("suspend")} aria-label={`Suspend ${ow.organizationName}`}>
              Suspend
            </Button>
          )}
          {action && <ActionDialog ow={ow} action={action} onClose={() => setAction(null)} />}
        </>
      }
    />
  );
}

const stateOptions = [{ value: "all", label: "All states" }, ...walletStates.map((s) => ({ value: s, label: walletStateInfo[s].label }))];

export default function Billing() {
  const [query, setQuery] = useState("");
  const [state, setState] = useState("all");
  const [metering, setMetering] = useState(false);
  const q = useQuery(BillingService.method.listWallets, { query, state: state === "all" ? "" : state }, { placeholderData: (prev) => prev });
  const list = q.data?.wallets.filter((x) => x.wallet) ?? [];

  async function meter() {
    setMetering(true);
    try {
      await billing.runMetering({});
      await invalidate(
        BillingService.method.listWallets,
        BillingService.method.getWallet,
        BillingService.method.listTransactions,
        BillingService.method.listInvoices,
        BillingService.method.getAnalytics,
      );
      toast.success("Metering done", "Every complete hour is charged.");
    } catch (err) {
      toast.error("Couldn't run metering", err);
    } finally {
      setMetering(false);
    }
  }

  return (
    <>
      <PageHeader
        title="Billing"
        description="Every organization's wallet. Apps are charged hourly, for each complete hour."
        actions={
          <Button onClick={() => void meter()} loading={metering} icon={<Gauge className="size-4" aria-hidden />}>
            Run metering now
          </Button>
        }
      />
      <div className="mb-4 flex flex-wrap gap-3">
        <div className="w-full max-w-sm">
          <SearchBox label="Search by name or short name" onSearch={setQuery} />
        </div>
        <Select aria-label="State" value={state} onValueChange={setState} options={stateOptions} className="w-44" />
      </div>
      <Card>
        {q.isPending ? (
          <SkeletonRows rows={4} label="Loading wallets" />
        ) : q.isError ? (
          <ErrorState error={q.error} onRetry={() => void q.refetch()} />
        ) : list.length === 0 ? (
          <EmptyState icon={<WalletIcon className="size-5" aria-hidden />} title={query || state !== "all" ? "No wallet matches" : "No wallets yet"}>
            {query || state !== "all" ? "Try another name or state." : "An organization's wallet appears with its first top-up or billable app."}
          </EmptyState>
        ) : (
          <ul className="divide-y divide-line" aria-label="Wallets">
            {list.map((ow) => (
              <WalletRow key={ow.wallet!.organizationId} ow={ow} />
            ))}
          </ul>
        )}
      </Card>
    </>
  );
}
