// Monthly invoices: the current month's draft and the issued ones, each viewable line by line
// and downloadable as PDF or CSV.
import { useQuery } from "@connectrpc/connect-query";
import { FileSpreadsheet, FileText, Receipt } from "lucide-react";
import { useState } from "react";
import { billing, formatUnitHours, monthLabel, saveFile } from "../../../components/billing";
import { Dialog } from "../../../components/dialog";
import { toast } from "../../../components/toast";
import { Badge, Button, Card, CardHeader, EmptyState, ErrorState, ListRow, Spinner, SkeletonRows } from "../../../components/ui";
import { BillingService, type Invoice } from "../../../gen/skypanel/billing/v1/billing_pb";
import { formatMoney } from "../../../lib/apps";
import { formatDate, toDate } from "../../../lib/format";
import { useOrg } from "../../../lib/org";

/** period says which days (UTC, as invoices count them) the invoice covers; its period ends
 * at the start of the next month. */
function period(inv: Invoice): string {
  const start = toDate(inv.periodStart);
  const end = toDate(inv.periodEnd);
  if (!start || !end) return "";
  const day = (d: Date) => d.toLocaleDateString(undefined, { dateStyle: "medium", timeZone: "UTC" });
  return `${day(start)} – ${day(new Date(end.getTime() - 1))}`;
}

function DownloadButton({ invoice, format }: { invoice: Invoice; format: "pdf" | "csv" }) {
  const org = useOrg();
  const [busy, setBusy] = useState(false);
  async function go() {
    setBusy(true);
    try {
      const res = await billing.downloadInvoice({ organizationId: org.id, month: invoice.month, format });
      saveFile(res.file);
    } catch (err) {
      toast.error("Couldn't download the invoice", err);
    } finally {
      setBusy(false);
    }
  }
  const Icon = format === "pdf" ? FileText : FileSpreadsheet;
  return (
    <Button size="sm" loading={busy} icon={<Icon className="size-3.5" aria-hidden />} onClick={() => void go()} aria-label={`Download the ${monthLabel(invoice.month)} invoice as ${format.toUpperCase()}`}>
      {format.toUpperCase()}
    </Button>
  );
}

function InvoiceDialog({ month, onClose }: { month: string; onClose: () => void }) {
  const org = useOrg();
  const q = useQuery(BillingService.method.getInvoice, { organizationId: org.id, month });
  const inv = q.data?.invoice;
  return (
    <Dialog open onOpenChange={(o) => !o && onClose()} wide title={`Invoice for ${monthLabel(month)}`} description={inv?.number ? `Number ${inv.number}` : "Draft: the month is not over yet."}>
      {q.isPending ? (
        <Spinner label="Loading the invoice" />
      ) : q.isError ? (
        <ErrorState error={q.error} onRetry={() => void q.refetch()} />
      ) : (
        inv && (
          <div className="-mx-5 overflow-x-auto">
            <table className="w-full min-w-[440px] text-sm" aria-label="Invoice lines">
              <thead>
                <tr className="border-y border-line text-left text-xs text-muted">
                  <th className="px-5 py-2 font-medium">Description</th>
                  <th className="px-3 py-2 text-right font-medium">Unit-hours</th>
                  <th className="px-5 py-2 text-right font-medium">Amount</th>
                </tr>
              </thead>
              <tbody className="divide-y divide-line">
                {inv.lines.length === 0 && (
                  <tr>
                    <td colSpan={3} className="px-5 py-4 text-center text-muted">
                      No charges this month.
                    </td>
                  </tr>
                )}
                {inv.lines.map((l) => (
                  <tr key={`${l.resourceType}/${l.resourceId}`}>
                    <td className="px-5 py-2">{l.description}</td>
                    <td className="px-3 py-2 text-right tabular-nums">{formatUnitHours(l.unitSeconds)}</td>
                    <td className="px-5 py-2 text-right tabular-nums">{formatMoney(l.amount, inv.currency)}</td>
                  </tr>
                ))}
              </tbody>
              <tfoot>
                <tr className="border-t border-line font-medium">
                  <td className="px-5 py-2" colSpan={2}>
                    Total
                  </td>
                  <td className="px-5 py-2 text-right tabular-nums">{formatMoney(inv.total, inv.currency)}</td>
                </tr>
              </tfoot>
            </table>
          </div>
        )
      )}
    </Dialog>
  );
}

export function Invoices() {
  const org = useOrg();
  const q = useQuery(BillingService.method.listInvoices, { organizationId: org.id });
  const [viewing, setViewing] = useState("");
  const list = q.data?.invoices ?? [];
  return (
    <Card>
      <CardHeader title="Invoices" description="One per month (UTC), issued when the month is over." />
      {q.isPending ? (
        <SkeletonRows rows={2} label="Loading invoices" />
      ) : q.isError ? (
        <ErrorState error={q.error} onRetry={() => void q.refetch()} />
      ) : list.length === 0 ? (
        <EmptyState icon={<Receipt className="size-5" aria-hidden />} title="No invoices yet">
          The first one is drafted once apps have been charged.
        </EmptyState>
      ) : (
        <ul className="divide-y divide-line" aria-label="Invoices">
          {list.map((inv) => (
            <ListRow
              key={`${inv.month}/${inv.currency}`}
              data-invoice={inv.month}
              data-status={inv.status}
              lead={
                <div className="grid size-8 place-items-center rounded-full bg-subtle text-muted">
                  <Receipt className="size-4" aria-hidden />
                </div>
              }
              title={
                <>
                  <span>{monthLabel(inv.month)}</span>
                  {inv.status === "draft" ? <Badge tone="warning">Draft</Badge> : <Badge tone="success">Issued</Badge>}
                  <span className="font-normal text-muted tabular-nums">{formatMoney(inv.total, inv.currency)}</span>
                </>
              }
              details={
                <>
                  {inv.number ? <code className="font-mono">{inv.number}</code> : "Not issued yet"} · {period(inv)}
                  {inv.issuedAt && inv.status !== "draft" && <> · issued {formatDate(inv.issuedAt)}</>}
                </>
              }
              controls={
                <>
                  <Button size="sm" variant="ghost" onClick={() => setViewing(inv.month)}>
                    View
                  </Button>
                  <DownloadButton invoice={inv} format="pdf" />
                  <DownloadButton invoice={inv} format="csv" />
                </>
              }
            />
          ))}
        </ul>
      )}
      {viewing && <InvoiceDialog month={viewing} onClose={() => setViewing("")} />}
    </Card>
  );
}
