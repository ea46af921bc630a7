// The way back from the payment provider: CreateTopUp adds top_up=<id> and
// checkout=success|cancel to the return URL it is given, so the billing page can report on
// the payment the payer comes back from (and still does after a reload).
import { orgPath } from "../../../lib/org";

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** returnURL is the organization's billing page, where the provider sends the payer back. */
export function returnURL(slug: string): string {
  return `${window.location.origin}${orgPath(slug, "billing")}`;
}

/** returnedTopUp reads the top-up the payer came back from, and whether they gave up paying. */
export function returnedTopUp(search: string): { id: string; cancelled: boolean } {
  const q = new URLSearchParams(search);
  const id = q.get("top_up") ?? "";
  return uuid.test(id) ? { id, cancelled: q.get("checkout") === "cancel" } : { id: "", cancelled: false };
}
