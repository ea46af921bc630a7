// The wallet's ledger, newest first, a page at a time.
import { useInfiniteQuery } from "@connectrpc/connect-query";
import { ArrowLeftRight } from "lucide-react";
import { Badge, Button, Card, CardHeader, EmptyState, ErrorState, SkeletonRows, cx } from "../../../components/ui";
import { BillingService, type Transaction } from "../../../gen/skypanel/billing/v1/billing_pb";
import { formatMoney } from "../../../lib/apps";
import { formatDateTime } from "../../../lib/format";
import { useOrg } from "../../../lib/org";

const kindInfo: Record<string, { label: string; tone: "neutral" | "success" | "accent" | "warning" }> = {
  credit: { label: "Credit", tone: "success" },
  debit: { label: "Usage", tone: "neutral" },
  refund: { label: "Refund", tone: "accent" },
  adjustment: { label: "Adjustment", tone: "warning" },
};

/** describe says where a ledger row came from, from its reason or its reference. */
function describe(t: Transaction): string {
  if (t.reason) return t.reason;
  const [source] = t.reference.split(":");
  switch (source) {
    case "usage":
      return "Hourly usage";
    case "stripe":
    case "test":
      return "Top-up";
    case "admin":
      return "By a platform administrator";
    default:
      return t.reference;
  }
}

export function Transactions() {
  const org = useOrg();
  const q = useInfiniteQuery(
    BillingService.method.listTransactions,
    { organizationId: org.id, pageSize: 20, pageToken: "" },
    { pageParamKey: "pageToken", getNextPageParam: (p) => p.nextPageToken || undefined },
  );
  const list = q.data?.pages.flatMap((p) => p.transactions) ?? [];
  return (
    <Card>
      <CardHeader title="Transactions" description="Every change to the balance, newest first." />
      {q.isPending ? (
        <SkeletonRows rows={3} label="Loading transactions" />
      ) : q.isError ? (
        <ErrorState error={q.error} onRetry={() => void q.refetch()} />
      ) : list.length === 0 ? (
        <EmptyState icon={<ArrowLeftRight className="size-5" aria-hidden />} title="No transactions yet">
          Top-ups, usage and corrections show up here.
        </EmptyState>
      ) : (
        <>
          <div className="overflow-x-auto">
            <table className="w-full min-w-[600px] text-sm" aria-label="Transactions">
              <thead>
                <tr className="border-b border-line text-left text-xs text-muted">
                  <th className="px-4 py-2 font-medium sm:pl-5">Date</th>
                  <th className="px-3 py-2 font-medium">Kind</th>
                  <th className="px-3 py-2 font-medium">Description</th>
                  <th className="px-3 py-2 text-right font-medium">Amount</th>
                  <th className="px-4 py-2 text-right font-medium sm:pr-5">Balance</th>
                </tr>
              </thead>
              <tbody className="divide-y divide-line">
                {list.map((t) => {
                  const k = kindInfo[t.kind] ?? { label: t.kind, tone: "neutral" as const };
                  return (
                    <tr key={String(t.id)} data-transaction={t.kind} data-amount={String(t.amount)}>
                      <td className="px-4 py-2 whitespace-nowrap text-muted sm:pl-5">{formatDateTime(t.createdAt)}</td>
                      <td className="px-3 py-2">
                        <Badge tone={k.tone}>{k.label}</Badge>
                      </td>
                      <td className="max-w-64 truncate px-3 py-2" title={t.reference}>
                        {describe(t)}
                      </td>
                      <td className={cx("px-3 py-2 text-right whitespace-nowrap tabular-nums", t.amount > 0n ? "text-success" : "")}>
                        {t.amount > 0n ? "+" : ""}
                        {formatMoney(t.amount, t.currency)}
                      </td>
                      <td className="px-4 py-2 text-right whitespace-nowrap text-muted tabular-nums sm:pr-5">{formatMoney(t.balanceAfter, t.currency)}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          {q.hasNextPage && (
            <div className="border-t border-line p-3 text-center">
              <Button onClick={() => void q.fetchNextPage()} loading={q.isFetchingNextPage}>
                Show older transactions
              </Button>
            </div>
          )}
        </>
      )}
    </Card>
  );
}
