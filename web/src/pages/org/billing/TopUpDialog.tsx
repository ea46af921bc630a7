// The Top up dialog: an amount in the wallet's currency, sent in minor units; on success the
// browser goes to the payment provider's checkout page, which sends the payer back here.
import { useState } from "react";
import { billing, parseAmount } from "../../../components/billing";
import { Dialog } from "../../../components/dialog";
import { Banner, Button, Field, Input } from "../../../components/ui";
import { formatMoney } from "../../../lib/apps";
import { useApiForm } from "../../../lib/forms";
import { useOrg } from "../../../lib/org";
import { returnURL } from "./topups";

// What CreateTopUpRequest accepts, in minor units of a two-digit currency; the API checks it
// too and its message then goes under the field.
const minAmount = 100n;
const maxAmount = 10_000_000n;

export function TopUpDialog({ open, onOpenChange, currency }: { open: boolean; onOpenChange: (o: boolean) => void; currency: string }) {
  const org = useOrg();
  const [amount, setAmount] = useState("20.00");
  const form = useApiForm(["amount"]);

  function close(o: boolean) {
    onOpenChange(o);
    if (!o) form.reset();
  }

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const a = parseAmount(amount, currency);
    if (a.error) return form.setFields({ amount: a.error });
    if (a.minor! < minAmount || a.minor! > maxAmount) {
      return form.setFields({ amount: `From ${formatMoney(minAmount, currency)} to ${formatMoney(maxAmount, currency)}.` });
    }
    const res = await form.run(() =>
      billing.createTopUp({ organizationId: org.id, amount: a.minor!, currency, returnUrl: returnURL(org.slug) }),
    );
    const url = res?.topUp?.checkoutUrl;
    if (!res?.topUp) return;
    if (!url) return form.setFormError("The payment provider gave no page to pay on. Try again later.");
    window.location.assign(url);
  }

  const preview = parseAmount(amount, currency);
  return (
    <Dialog open={open} onOpenChange={close} title="Top up the wallet" description="You pay on the payment provider's page and come back here; the wallet is credited once the payment is confirmed.">
      <form onSubmit={submit} noValidate className="space-y-4">
        {form.formError && <Banner>{form.formError}</Banner>}
        <Field
          label={`Amount (${currency})`}
          hint={preview.minor !== undefined ? `You will pay ${formatMoney(preview.minor, currency)}.` : `From ${formatMoney(minAmount, currency)} to ${formatMoney(maxAmount, currency)}.`}
          error={form.fields.amount}
          className="max-w-xs"
        >
          {(p) => (
            <Input
              {...p}
              autoFocus
              inputMode="decimal"
              value={amount}
              onChange={(e) => {
                setAmount(e.target.value);
                if (form.fields.amount) form.setFields({});
              }}
              placeholder="20.00"
              className="tabular-nums"
            />
          )}
        </Field>
        <div className="flex flex-col-reverse gap-2 pt-1 sm:flex-row sm:justify-end">
          <Button onClick={() => close(false)}>Cancel</Button>
          <Button type="submit" variant="primary" loading={form.pending}>
            Continue to payment
          </Button>
        </div>
      </form>
    </Dialog>
  );
}
