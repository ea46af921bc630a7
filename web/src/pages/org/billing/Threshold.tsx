// The low-balance warning: the balance at or under which the organization is warned, its own
// or the platform's.
import { useEffect, useState } from "react";
import { billing, parseAmount, walletCurrency } from "../../../components/billing";
import { toast } from "../../../components/toast";
import { Banner, Button, Card, CardHeader, Field, Input } from "../../../components/ui";
import { BillingService, type Wallet } from "../../../gen/skypanel/billing/v1/billing_pb";
import { invalidate } from "../../../lib/api";
import { formatMoney, minorToDecimal } from "../../../lib/apps";
import { useApiForm } from "../../../lib/forms";
import { useOrg } from "../../../lib/org";

export function Threshold({ wallet }: { wallet: Wallet | undefined }) {
  const org = useOrg();
  const currency = walletCurrency(wallet);
  const current = wallet?.lowBalanceThreshold ?? 0n;
  const [text, setText] = useState("");
  const form = useApiForm(["amount"]);
  const [resetting, setResetting] = useState(false);

  useEffect(() => {
    if (wallet) setText(minorToDecimal(wallet.lowBalanceThreshold, currency));
  }, [wallet, currency]);

  async function save(amount: bigint | undefined) {
    const res = await form.run(() => billing.setLowBalanceThreshold({ organizationId: org.id, amount }));
    if (!res) return false;
    await invalidate(BillingService.method.getWallet, BillingService.method.listWallets);
    return true;
  }

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const a = parseAmount(text, currency);
    if (a.error) return form.setFields({ amount: a.error });
    if (await save(a.minor)) toast.success("Low-balance warning saved", `The wallet counts as low at ${formatMoney(a.minor!, currency)} or less.`);
  }

  async function usePlatform() {
    setResetting(true);
    try {
      if (await save(undefined)) toast.success("Low-balance warning reset", "The platform's threshold applies.");
    } finally {
      setResetting(false);
    }
  }

  return (
    <Card>
      <CardHeader title="Low-balance warning" description={`The wallet counts as low, and the organization is warned, at this balance or less. Now: ${formatMoney(current, currency)}.`} />
      <form onSubmit={submit} noValidate className="space-y-4 p-4 sm:p-5">
        {form.formError && <Banner>{form.formError}</Banner>}
        <Field label={`Warn at (${currency})`} error={form.fields.amount} className="max-w-48">
          {(p) => <Input {...p} inputMode="decimal" value={text} onChange={(e) => setText(e.target.value)} className="tabular-nums" />}
        </Field>
        <div className="flex flex-wrap justify-end gap-2">
          <Button onClick={() => void usePlatform()} loading={resetting} disabled={form.pending}>
            Use the platform's default
          </Button>
          <Button type="submit" variant="primary" loading={form.pending && !resetting}>
            Save
          </Button>
        </div>
      </form>
    </Card>
  );
}
