// Billing: an organization's owner tops up 20.00 through the dialog, pays on the test payment
// provider's checkout page (served by the control plane, run.sh starts it with
// --payment-provider test) and comes back to a paid top-up and a 20.00 balance. An app of the
// organization then ran two replicas for two complete hours (seeded in the database: nothing
// really runs here); the platform admin presses "Run metering now", and the owner's billing
// page shows the usage (2 replicas × 2 hours × the plan's price), the lower balance (plus the
// admin's 1.00 credit), and the month's invoice, which downloads as PDF and CSV.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, test } from "node:test";
import { api, env, launch, logInUI, newContext, psql, shot, spawnSimAgent, stepper, until } from "./lib.mjs";

const agentURL = process.env.AGENT_URL;
const run = Date.now().toString(36);
const password = "pay-as-you-go-2026";
const orgName = `Billing ${run}`;
const appName = `billed-${run}`.slice(0, 30);
const price = 25n; // the plan's price per replica-hour, in cents
const replicas = 2n;
const hours = 2n;

let browser;
const contexts = [];
const agents = [];
before(async () => {
  browser = await launch();
});
after(async () => {
  for (const a of agents) a.kill("SIGTERM");
  await browser?.close();
});

const toast = (page, text) => page.locator("[data-toast]").filter({ hasText: text }).first().waitFor();

/** clean dismisses the toasts before a documentation screenshot. */
async function clean(page) {
  if (!env.updateScreenshots) return;
  for (const b of await page.locator("[data-toast] button[aria-label=Dismiss]").all()) await b.click().catch(() => {});
  await until(async () => (await page.locator("[data-toast]").count()) === 0, "the toasts are gone", 5_000).catch(() => {});
}
const cs = "skypanel.cluster.v1.ClusterService";

/** simCluster makes a cluster whose one manager is a simulated node, and waits until it is active. */
async function simCluster(admin) {
  const { cluster } = await api.call(cs, "CreateCluster", { name: `billing-${run}` }, admin.token);
  const res = await api.call(cs, "CreateEnrollmentToken", { clusterId: cluster.id, role: "NODE_ROLE_MANAGER", ttl: "600s", usageLimit: 1 }, admin.token);
  const args = ["--agent-url", agentURL, "--token", res.secret, "--hostname", `sim-billing-${run}`];
  const child = spawnSimAgent(args);
  agents.push(child);
  child.stdout.resume();
  child.stderr.resume();
  await until(
    async () => (await api.call(cs, "GetCluster", { clusterId: cluster.id }, admin.token)).cluster.state === "CLUSTER_STATE_ACTIVE",
    "the simulated cluster is active",
    60_000,
  );
}

/** download clicks what starts a download and returns its file name and content. */
async function download(page, click) {
  const [dl] = await Promise.all([page.waitForEvent("download"), click()]);
  const path = await dl.path();
  return { name: dl.suggestedFilename(), content: await readFile(path) };
}

const uuid = /^[0-9a-f-]{36}$/;

test("billing: top up through the test checkout, then usage, balance and invoice after metering", { skip: !agentURL && "AGENT_URL is not set (run web/e2e/run.sh)" }, async (t) => {
  const step = stepper(t, () => contexts);
  const admin = await api.logIn(env.adminEmail, env.adminPassword);
  const { plan } = await api.call(
    "skypanel.plan.v1.PlanService",
    "CreatePlan",
    { plan: { name: `Billed ${run}`, cpuMillis: 100, memoryMib: 64, pricePerHour: String(price), currency: "USD", maxReplicas: 2, maxApps: 5 } },
    admin.token,
  );
  const owner = await api.signUp(`billing-${run}@example.com`, password, "Bea Billing");
  const org = await api.createOrg(owner, orgName);
  const billingURL = `/o/${org.slug}/billing`;
  const ctx = await newContext(browser);
  contexts.push(ctx);
  const page = await ctx.newPage();
  let topUpId = "";
  let app;
  const balance = page.getByTestId("balance");
  const balanceIs = (minor) => until(async () => (await balance.getAttribute("data-balance")) === String(minor), `the balance is ${minor} cents`, 15_000);

  await step("the owner opens Billing from the navigation: an empty wallet", async () => {
    await logInUI(page, owner.email, password);
    await page.goto(`/o/${org.slug}`);
    await page.getByRole("navigation", { name: "Organization" }).getByRole("link", { name: "Billing" }).click();
    await page.waitForURL(new RegExp(`${billingURL}$`));
    await page.getByRole("heading", { name: "Billing", level: 1 }).waitFor();
    await balance.waitFor();
    assert.equal(await balance.textContent(), "$0.00");
    await page.getByText("No top-ups yet").waitFor();
  });

  await step("the Top up dialog checks the amount", async () => {
    await page.getByRole("button", { name: "Top up" }).first().click();
    const dialog = page.getByRole("dialog");
    const amount = dialog.getByLabel("Amount (USD)");
    await amount.fill("0.50");
    await dialog.getByRole("button", { name: "Continue to payment" }).click();
    await dialog.locator("[data-field-error]").filter({ hasText: "From $1.00 to $100,000.00." }).waitFor();
    await amount.fill("20.005");
    await dialog.getByRole("button", { name: "Continue to payment" }).click();
    await dialog.locator("[data-field-error]").filter({ hasText: "At most 2 decimal places in USD." }).waitFor();
    assert.equal(await amount.getAttribute("aria-invalid"), "true");
  });

  await step("a top-up of 20.00 goes to the test checkout page", async () => {
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Amount (USD)").fill("20.00");
    await dialog.getByText("You will pay $20.00.").waitFor();
    await dialog.getByRole("button", { name: "Continue to payment" }).click();
    await page.waitForURL(/\/billing\/test-checkout\//);
    assert.ok(page.url().startsWith(env.base), `the checkout page ${page.url()} is the control plane's`);
    await page.getByText(/20\.00/).first().waitFor();
  });

  await step("paying brings the owner back: the top-up is paid and the balance is 20.00", async () => {
    await page.getByRole("button", { name: /^Pay/ }).click();
    await page.waitForURL((u) => u.pathname === billingURL && u.searchParams.has("top_up"));
    await until(() => uuid.test(new URL(page.url()).searchParams.get("top_up") ?? ""), "the URL names the top-up");
    topUpId = new URL(page.url()).searchParams.get("top_up");
    await page.locator('[data-top-up-result="paid"]').getByText("Payment received: $20.00 was added to the wallet.").waitFor({ timeout: 20_000 });
    await balanceIs(2000);
    assert.equal(await balance.textContent(), "$20.00");
    await page.locator(`li[data-top-up="${topUpId}"][data-status="paid"]`).waitFor();
    await page.locator('tr[data-transaction="credit"][data-amount="2000"]').waitFor();
    await page.locator('[data-wallet-state="ok"]').first().waitFor();
    await shot(page, "billing-topped-up-light");
  });

  await step("a reload still reports on that payment", async () => {
    await page.reload();
    await page.locator('[data-top-up-result="paid"]').waitFor();
    await balanceIs(2000);
  });

  await step("a top-up cancelled on the checkout page says so and changes nothing", async () => {
    await page.getByRole("button", { name: "Top up" }).first().click();
    await page.getByRole("dialog").getByLabel("Amount (USD)").fill("5");
    await page.getByRole("dialog").getByRole("button", { name: "Continue to payment" }).click();
    await page.waitForURL(/\/billing\/test-checkout\//);
    await page.getByRole("button", { name: "Cancel" }).click();
    await page.waitForURL((u) => u.pathname === billingURL && u.searchParams.get("checkout") === "cancel");
    await page.getByText("The payment of $5.00 was cancelled; nothing was charged.").waitFor();
    const id = new URL(page.url()).searchParams.get("top_up");
    await page.locator(`li[data-top-up="${id}"][data-status="expired"]`).waitFor();
    await balanceIs(2000);
  });

  await step("an app of the organization ran 2 replicas for 2 complete hours", async () => {
    const body = { organizationId: org.id, name: appName, planId: plan.id, spec: { image: "nginx:1.27-alpine", port: 80, replicas: Number(replicas) } };
    let res = await api.call("skypanel.app.v1.AppService", "CreateApp", body, owner.token).catch((err) => err);
    if (res instanceof Error) {
      // No cluster with room yet (this file alone, or earlier tests' nodes are gone).
      await simCluster(admin);
      res = await api.call("skypanel.app.v1.AppService", "CreateApp", body, owner.token);
    }
    app = res.app;
    assert.match(app.id, uuid);
    // Nothing runs on a simulated node, so the app has no run of its own: record one that
    // ended an hour ago, and forget that those hours were metered so metering looks again.
    for (const id of [org.id, app.id, plan.id]) assert.match(id, uuid);
    await psql(`BEGIN;
      DELETE FROM metered_periods WHERE period_start >= date_trunc('hour', now()) - interval '4 hours';
      INSERT INTO billable_runs (organization_id, resource_type, resource_id, plan_id, quantity, unit_price, currency, started_at, ended_at)
        VALUES ('${org.id}', 'app', '${app.id}', '${plan.id}', ${replicas}, ${price}, 'USD',
          date_trunc('hour', now()) - interval '3 hours', date_trunc('hour', now()) - interval '1 hour');
      COMMIT;`);
  });

  const charged = replicas * hours * price; // 100 cents
  await step("the platform admin runs metering, and credits the wallet, on the admin Billing page", async () => {
    const adminCtx = await newContext(browser);
    contexts.push(adminCtx);
    const p = await adminCtx.newPage();
    await logInUI(p, env.adminEmail, env.adminPassword);
    await p.getByRole("navigation", { name: "Platform admin" }).getByRole("link", { name: "Billing" }).click();
    await p.getByRole("heading", { name: "Billing", level: 1 }).waitFor();
    const row = p.locator(`li[data-org-wallet="${orgName}"]`);
    await row.locator('[data-balance="2000"]').waitFor();
    await p.getByRole("button", { name: "Run metering now" }).click();
    await toast(p, "Metering done");
    await row.locator(`[data-balance="${2000n - charged}"]`).waitFor();

    // A credit needs a reason; then the balance shows it at once.
    await row.getByRole("button", { name: `Credit ${orgName}` }).click();
    const dialog = p.getByRole("dialog");
    await dialog.getByLabel("Amount").fill("1.00");
    await dialog.getByRole("button", { name: "Credit wallet" }).click();
    await dialog.locator("[data-field-error]").filter({ hasText: "Say why" }).waitFor();
    await dialog.getByLabel("Reason").fill("Goodwill for the e2e test");
    await dialog.getByRole("button", { name: "Credit wallet" }).click();
    await toast(p, "Wallet credited");
    await row.locator(`[data-balance="${2100n - charged}"]`).waitFor();
    await clean(p);
    await shot(p, "admin-billing-light");

    // Analytics counts the usage charged and the payment received.
    await p.getByRole("navigation", { name: "Platform admin" }).getByRole("link", { name: "Analytics" }).click();
    await p.getByRole("heading", { name: "Analytics", level: 1 }).waitFor();
    const spender = p.getByRole("table", { name: "Top organizations" }).getByRole("row").filter({ hasText: orgName });
    await spender.getByText("$1.00").waitFor();
    assert.match(await p.getByTestId("top-ups-total").textContent(), /\$\d[\d,]*\.\d\d/);
    await p.locator('figure[data-chart="Revenue (USD)"]').waitFor();
    await p.locator("[data-app-status]").first().waitFor();
    await shot(p, "admin-analytics-light");
    await adminCtx.close();
    contexts.pop();
  });

  await step("the owner's billing page shows the usage and the lower balance", async () => {
    await page.goto(billingURL);
    await balanceIs(2100n - charged);
    assert.equal(await balance.textContent(), "$20.00");
    const usage = page.getByTestId("usage");
    const row = usage.locator(`tr[data-resource="${appName}"]`);
    await row.waitFor();
    assert.equal(await row.getAttribute("data-amount"), String(charged));
    await row.getByText("4 h").waitFor(); // 2 replicas × 2 hours
    assert.equal(await usage.getByTestId("usage-total").textContent(), "$1.00");
    assert.ok(Number(await usage.locator('figure[data-chart="Charges"]').getAttribute("data-points")) > 0, "the chart has points");
    await page.locator('tr[data-transaction="debit"]').first().waitFor();
    const csv = await download(page, () => usage.getByRole("button", { name: "Export CSV" }).click());
    assert.match(csv.name, /\.csv$/);
    assert.ok(csv.content.toString().includes(app.id) || csv.content.toString().includes(appName), `the usage CSV names the app:\n${csv.content}`);
    await clean(page);
    await shot(page, "billing-usage-light");
  });

  await step("the month's invoice lists the app and downloads as PDF and CSV", async () => {
    // The charged hours' month (UTC): the current one, unless they fell before midnight of the 1st.
    const start = new Date(Math.floor(Date.now() / 3600_000) * 3600_000 - 3 * 3600_000);
    const months = [start, new Date(start.getTime() + 3600_000)].map((d) => d.toISOString().slice(0, 7));
    const month = months[1];
    const total = BigInt(months.filter((m) => m === month).length) * replicas * price;
    const inv = page.locator(`li[data-invoice="${month}"]`);
    await inv.waitFor();
    if (month === new Date().toISOString().slice(0, 7)) assert.equal(await inv.getAttribute("data-status"), "draft");
    await inv.getByText("Draft").or(inv.getByText("Issued")).first().waitFor();

    const pdf = await download(page, () => inv.getByRole("button", { name: /as PDF$/ }).click());
    assert.match(pdf.name, /\.pdf$/);
    assert.equal(pdf.content.subarray(0, 5).toString(), "%PDF-", "the PDF is a PDF");

    const csv = await download(page, () => inv.getByRole("button", { name: /as CSV$/ }).click());
    assert.match(csv.name, /\.csv$/);
    const text = csv.content.toString();
    assert.ok(text.includes(appName) || text.includes(app.id), `the invoice CSV has the app's line:\n${text}`);
    const amount = (Number(total) / 100).toFixed(2);
    assert.ok(text.includes(amount), `the invoice CSV has the total ${amount}:\n${text}`);

    await inv.getByRole("button", { name: "View" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByRole("table", { name: "Invoice lines" }).getByText(`$${amount}`).first().waitFor();
    await page.keyboard.press("Escape");
  });

  await step("a low-balance warning over the balance marks the wallet low, until it is reset", async () => {
    await page.getByLabel("Warn at (USD)").fill("50.00");
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await toast(page, "Low-balance warning saved");
    await page.locator('[data-wallet-state="low"]').waitFor();
    await page.getByTestId("wallet-note").getByText("at or under the low-balance warning of $50.00").waitFor();
    await page.getByRole("button", { name: "Use the platform's default" }).click();
    await toast(page, "Low-balance warning reset");
    await page.locator('[data-wallet-state="ok"]').waitFor();
  });

  await step("a viewer sees the balance and the usage, not the money's details", async () => {
    const viewer = await api.signUp(`billing-viewer-${run}@example.com`, password, "Vic Viewer");
    await api.join(owner, org, viewer, "ROLE_VIEWER");
    const vctx = await newContext(browser);
    contexts.push(vctx);
    const p = await vctx.newPage();
    await logInUI(p, viewer.email, password);
    await p.goto(`/o/${org.slug}`);
    await p.getByRole("navigation", { name: "Organization" }).getByRole("link", { name: "Billing" }).click();
    await p.getByTestId("balance").filter({ hasText: "$20.00" }).waitFor();
    await p.getByTestId("usage").locator(`tr[data-resource="${appName}"]`).waitFor();
    await p.getByText("Only admins and the owner see top-ups, transactions and invoices.").waitFor();
    assert.equal(await p.getByRole("button", { name: "Top up" }).count(), 0, "a viewer cannot top up");
    await vctx.close();
    contexts.pop();
  });

  await step("a negative balance warns on the organization's pages that its apps will be suspended", async () => {
    await api.call(
      "skypanel.billing.v1.BillingService",
      "AdjustWallet",
      { organizationId: org.id, amount: "-2100", reason: "test: below zero" },
      admin.token,
    );
    await page.goto(`/o/${org.slug}/apps`);
    const notice = page.locator('[data-balance-notice="grace"]');
    await notice.getByText("The balance is negative: apps will be suspended at").waitFor();
    await notice.getByRole("link", { name: "Billing" }).click();
    await page.locator('[data-wallet-state="grace"]').waitFor();
  });

  await ctx.close().catch(() => {});
});
