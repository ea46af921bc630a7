// /o/<slug>/billing: the organization's prepaid wallet. Everyone sees the balance, its state
// and the usage; admins and the owner also top up, see top-ups, the ledger and the invoices,
// and set the low-balance warning.
import { useQuery } from "@connectrpc/connect-query";
import { CreditCard, ExternalLink, Plus, Wallet as WalletIcon } from "lucide-react";
import { useEffect, useState } from "react";
import { useSearch } from "wouter";
import { balanceText, stateNote, walletCurrency, WalletStateBadge } from "../../../components/billing";
import { Badge, Banner, Button, Card, CardHeader, EmptyState, ErrorState, ListRow, PageHeader, Skeleton, SkeletonRows } from "../../../components/ui";
import { BillingService, type TopUp, type Wallet } from "../../../gen/skypanel/billing/v1/billing_pb";
import { Role } from "../../../gen/skypanel/organization/v1/organization_pb";
import { invalidate } from "../../../lib/api";
import { formatMoney, tsMs } from "../../../lib/apps";
import { formatDateTime, formatRelative } from "../../../lib/format";
import { useOrg } from "../../../lib/org";
import { Invoices } from "./Invoices";
import { Threshold } from "./Threshold";
import { TopUpDialog } from "./TopUpDialog";
import { returnedTopUp } from "./topups";
import { Transactions } from "./Transactions";
import { Usage } from "./Usage";

/** canManageBilling: admins and the owner see the money (the API enforces the same). */
export const canManageBilling = (r: Role) => r >= Role.ADMIN;

const topUpStatus: Record<string, { label: string; tone: "neutral" | "accent" | "success" | "danger" }> = {
  open: { label: "Pending", tone: "accent" },
  paid: { label: "Paid", tone: "success" },
  expired: { label: "Expired", tone: "neutral" },
  failed: { label: "Failed", tone: "danger" },
};

function Balance({ wallet, onTopUp }: { wallet: ReturnType<typeof useWallet>; onTopUp?: () => void }) {
  const w = wallet.data?.wallet;
  const note = stateNote(w);
  const negative = (w?.balance ?? 0n) < 0n;
  return (
    <Card>
      <div className="flex flex-wrap items-center gap-4 p-4 sm:p-5">
        <div className="grid size-11 shrink-0 place-items-center rounded-full bg-accent-soft text-accent">
          <WalletIcon className="size-5" aria-hidden />
        </div>
        <div className="min-w-0 flex-1">
          <div className="text-[13px] text-muted">Balance</div>
          {wallet.isPending ? (
            <Skeleton className="mt-1 h-7 w-32" />
          ) : wallet.isError ? (
            <div className="text-sm text-danger">Couldn't load the balance.</div>
          ) : (
            <div className="flex flex-wrap items-center gap-2">
              <span data-testid="balance" data-balance={String(w?.balance ?? 0n)} className={negative ? "text-2xl font-semibold text-danger tabular-nums" : "text-2xl font-semibold tabular-nums"}>
                {balanceText(w)}
              </span>
              <WalletStateBadge wallet={w} />
            </div>
          )}
          {w?.updatedAt && <div className="mt-0.5 text-xs text-muted">Updated {formatRelative(w.updatedAt)}</div>}
        </div>
        {onTopUp && (
          <Button variant="primary" icon={<Plus className="size-4" aria-hidden />} onClick={onTopUp}>
            Top up
          </Button>
        )}
      </div>
      {wallet.isError && (
        <div className="border-t border-line">
          <ErrorState error={wallet.error} onRetry={() => void wallet.refetch()} />
        </div>
      )}
      {note && (
        <div className="border-t border-line p-4 sm:px-5" data-testid="wallet-note">
          <Banner tone={w?.state === "low" ? "warning" : "danger"}>{note}</Banner>
        </div>
      )}
    </Card>
  );
}

function useWallet() {
  const org = useOrg();
  return useQuery(BillingService.method.getWallet, { organizationId: org.id });
}

// How long the page keeps asking about a top-up the payer came back from: the test provider
// confirms at once, Stripe's webhook usually within seconds.
const pollFor = 5 * 60_000;

function useTopUps(watch: string) {
  const org = useOrg();
  const [since] = useState(() => Date.now());
  return useQuery(
    BillingService.method.listTopUps,
    { organizationId: org.id },
    {
      refetchInterval: (q) => {
        const t = q.state.data?.topUps.find((x) => x.id === watch);
        return watch && (!t || t.status === "open") && Date.now() - since < pollFor ? 2000 : false;
      },
    },
  );
}

/** TopUpResult reports on the payment the payer came back from, until it is settled. */
function TopUpResult({ id, cancelled }: { id: string; cancelled: boolean }) {
  const q = useTopUps(cancelled ? "" : id);
  const t = q.data?.topUps.find((x) => x.id === id);
  const status = t?.status;
  useEffect(() => {
    if (status === "paid") void invalidate(BillingService.method.getWallet, BillingService.method.listTransactions);
  }, [status]);
  if (!t) return null;
  const amount = formatMoney(t.amount, t.currency);
  return (
    <div className="mb-4" data-top-up-result={t.status}>
      {t.status === "paid" ? (
        <Banner tone="success">Payment received: {amount} was added to the wallet.</Banner>
      ) : cancelled ? (
        <Banner tone="warning">The payment of {amount} was cancelled; nothing was charged.</Banner>
      ) : t.status === "open" ? (
        <Banner tone="accent">Payment pending: the wallet is credited with {amount} as soon as the payment provider confirms it.</Banner>
      ) : (
        <Banner>The payment of {amount} {t.status === "expired" ? "expired" : "failed"}; nothing was charged. You can start a new top-up.</Banner>
      )}
    </div>
  );
}

function TopUpRow({ t }: { t: TopUp }) {
  const s = topUpStatus[t.status] ?? { label: t.status, tone: "neutral" as const };
  return (
    <ListRow
      data-top-up={t.id}
      data-status={t.status}
      lead={
        <div className="grid size-8 place-items-center rounded-full bg-subtle text-muted">
          <CreditCard className="size-4" aria-hidden />
        </div>
      }
      title={
        <>
          <span className="tabular-nums">{formatMoney(t.amount, t.currency)}</span>
          <Badge tone={s.tone}>{s.label}</Badge>
        </>
      }
      details={
        <>
          {formatDateTime(t.createdAt)}
          {t.completedAt && tsMs(t.completedAt) > 0 && <> · {t.status === "paid" ? "paid" : "closed"} {formatDateTime(t.completedAt)}</>}
          {t.provider === "test" && <> · test payment</>}
        </>
      }
      controls={
        t.status === "open" &&
        t.checkoutUrl && (
          <a href={t.checkoutUrl} className="inline-flex items-center gap-1 text-sm font-medium text-accent hover:underline">
            Continue to payment <ExternalLink className="size-3.5" aria-hidden />
          </a>
        )
      }
    />
  );
}

function TopUps({ watch, onTopUp }: { watch: string; onTopUp: () => void }) {
  const q = useTopUps(watch);
  const list = q.data?.topUps ?? [];
  return (
    <Card>
      <CardHeader title="Top-ups" description="Payments into the wallet, newest first." />
      {q.isPending ? (
        <SkeletonRows rows={2} label="Loading top-ups" />
      ) : q.isError ? (
        <ErrorState error={q.error} onRetry={() => void q.refetch()} />
      ) : list.length === 0 ? (
        <EmptyState
          icon={<CreditCard className="size-5" aria-hidden />}
          title="No top-ups yet"
          action={
            <Button size="sm" icon={<Plus className="size-3.5" aria-hidden />} onClick={onTopUp}>
              Top up
            </Button>
          }
        >
          Apps are paid from the wallet by the hour; top it up before they run.
        </EmptyState>
      ) : (
        <ul className="divide-y divide-line" aria-label="Top-ups">
          {list.slice(0, 10).map((t) => (
            <TopUpRow key={t.id} t={t} />
          ))}
        </ul>
      )}
    </Card>
  );
}

export default function Billing() {
  const org = useOrg();
  const admin = canManageBilling(org.role);
  const wallet = useWallet();
  const w: Wallet | undefined = wallet.data?.wallet;
  const [topUp, setTopUp] = useState(false);
  const back = returnedTopUp(useSearch());
  const watch = admin ? back.id : "";

  return (
    <>
      <PageHeader title="Billing" description="The organization's prepaid wallet: apps are paid from it by the hour." />
      <div className="space-y-6">
        <div>
          {watch && <TopUpResult id={watch} cancelled={back.cancelled} />}
          <Balance wallet={wallet} onTopUp={admin ? () => setTopUp(true) : undefined} />
        </div>
        <Usage currency={walletCurrency(w)} />
        {admin ? (
          <>
            <TopUps watch={back.cancelled ? "" : watch} onTopUp={() => setTopUp(true)} />
            <Transactions />
            <Invoices />
            <Threshold wallet={w} />
          </>
        ) : (
          <p className="text-center text-[13px] text-muted">Only admins and the owner see top-ups, transactions and invoices.</p>
        )}
      </div>
      {admin && <TopUpDialog open={topUp} onOpenChange={setTopUp} currency={walletCurrency(w)} />}
    </>
  );
}
