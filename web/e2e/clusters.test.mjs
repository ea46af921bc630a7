// Clusters and nodes in the admin area: the admin creates a cluster, gets a setup command from
// "Add node" (and copies it), a simulated node (web/e2e/simagent, the real enrollment and
// agent protocol without Docker) enrolls with it and appears live, turns ready, shows metric
// charts; a second (worker) node is drained and removed with confirmations.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { api, env, launch, logInUI, newContext, shot, spawnSimAgent, stepper, until } from "./lib.mjs";

const agentURL = process.env.AGENT_URL;
const run = Date.now().toString(36);
const clusterName = `eu-west-${run}`;

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

/** simAgent starts a simulated node enrolling with token; resolves with its node id. */
function simAgent(token, hostname, extra = []) {
  const args = ["--agent-url", agentURL, "--token", token, "--hostname", hostname, ...extra];
  const child = spawnSimAgent(args);
  agents.push(child);
  let out = "";
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`simagent did not enroll within 60 s:\n${out}\n${err}`)), 60_000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = /enrolled (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`simagent exited (${code}):\n${out}\n${err}`));
    });
  });
}

const toast = (page, text) => page.locator("[data-toast]").filter({ hasText: text }).first().waitFor();
const nodeRow = (page, host) => page.locator(`tr[data-node="${host}"]`);

/** clean dismisses the toasts and scrolls to the top, for a documentation screenshot. */
async function clean(page) {
  if (!env.updateScreenshots) return;
  for (const b of await page.locator("[data-toast] button[aria-label=Dismiss]").all()) await b.click().catch(() => {});
  await until(async () => (await page.locator("[data-toast]").count()) === 0, "the toasts are gone", 5_000).catch(() => {});
  await page.evaluate(() => window.scrollTo(0, 0));
}

test("clusters: create, enroll a node live, charts, drain and remove", { skip: !agentURL && "AGENT_URL is not set (run web/e2e/run.sh)" }, async (t) => {
  const ctx = await newContext(browser);
  contexts.push(ctx);
  const page = await ctx.newPage();
  const step = stepper(t, () => contexts);
  let clusterURL = "";
  let command = "";
  const manager = `mgr-${run}`;
  const worker = `wrk-${run}`;
  let workerId = "";

  await step("the admin creates a cluster", async () => {
    await logInUI(page, env.adminEmail, env.adminPassword);
    await page.getByRole("navigation", { name: "Platform admin" }).getByRole("link", { name: "Clusters" }).click();
    await page.getByRole("heading", { name: "Clusters", exact: true }).waitFor();
    await page.getByText("No clusters yet").or(page.locator("li[data-cluster]").first()).first().waitFor();
    await page.getByRole("button", { name: "Create cluster" }).first().click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Name").fill(clusterName);
    await dialog.getByRole("switch").click();
    assert.equal(await dialog.getByRole("switch").getAttribute("aria-checked"), "true");
    await dialog.getByText("Needs kernel support").waitFor();
    await dialog.getByRole("button", { name: "Create cluster" }).click();
    await page.waitForURL(/\/admin\/clusters\/[0-9a-f-]{36}$/);
    clusterURL = new URL(page.url()).pathname;
    await page.getByRole("heading", { name: clusterName }).waitFor();
    await page.getByText("No nodes yet").waitFor();
    await page.locator('[data-live="live"]').waitFor();
  });

  await step("Add node gives a setup command with a copy button", async () => {
    await page.getByRole("button", { name: "Add node" }).first().click();
    const dialog = page.getByRole("dialog");
    await dialog.getByText("The first node must be a manager").waitFor();
    await dialog.getByLabel("Labels").fill("edge=true");
    await dialog.getByRole("button", { name: "Get setup command" }).click();
    const pre = dialog.getByTestId("setup-command");
    await pre.waitFor();
    command = (await pre.textContent()).trim();
    assert.match(command, /--token spen\.[0-9a-f]{64}\./);
    await dialog.getByText("only time this command is shown").waitFor();
    await dialog.getByRole("button", { name: "Copy" }).click();
    await dialog.getByRole("button", { name: "Copied" }).waitFor();
    const clip = await page.evaluate(() => navigator.clipboard.readText().catch(() => null));
    if (clip !== null) assert.equal(clip, command);
    await dialog.getByText("Waiting for the node to enroll").waitFor();
  });

  await step("the node enrolls and appears live in the dialog and the table, then turns ready", async () => {
    const token = /--token (spen\.[^\s'"]+)/.exec(command)[1];
    // An hour of history (backdated samples) gives the charts something to draw.
    await simAgent(token, manager, ["--backfill", "1h"]);
    const dialog = page.getByRole("dialog");
    const entry = dialog.locator(`[data-enrolled-node="${manager}"]`);
    await entry.waitFor({ timeout: 20_000 });
    await toast(page, `${manager} enrolled`);
    await entry.locator('[data-node-state="READY"]').waitFor({ timeout: 30_000 });
    await clean(page);
    await shot(page, "add-node-dialog-light");
    await dialog.getByRole("button", { name: "Done" }).click();
    const row = nodeRow(page, manager);
    await row.locator('[data-node-state="READY"]').waitFor();
    assert.equal(await row.getAttribute("data-state"), "READY");
    await row.getByText("Manager").waitFor();
    await row.getByText("edge=true").waitFor();
    // Last seen ticks in seconds; the CPU and memory bars come from the latest heartbeat.
    await until(async () => /\d+ s ago/.test(await row.locator("[data-last-seen]").textContent()), "last seen says seconds ago", 15_000);
    await row.getByRole("meter", { name: `CPU of ${manager}` }).waitFor();
    await page.locator('[data-cluster-state="ACTIVE"]').waitFor({ timeout: 20_000 });
  });

  await step("a worker joins through the API's token and shows up without a reload", async () => {
    const admin = await api.logIn(env.adminEmail, env.adminPassword);
    const clusterId = clusterURL.split("/").pop();
    const res = await api.call(
      "skypanel.cluster.v1.ClusterService",
      "CreateEnrollmentToken",
      { clusterId, role: "NODE_ROLE_WORKER", labels: { zone: "b" }, ttl: "600s", usageLimit: 1 },
      admin.token,
    );
    assert.match(res.setupCommand, /--token spen\./);
    workerId = await simAgent(res.secret, worker);
    await nodeRow(page, worker).locator('[data-node-state="READY"]').waitFor({ timeout: 30_000 });
    // Both tokens are used up now: listed only on request.
    await page.getByText("No usable tokens").waitFor();
    await page.getByRole("button", { name: "Show used and expired (2)" }).click();
    await until(async () => (await page.locator("li[data-token]").filter({ hasText: "Used up" }).count()) === 2, "both tokens show as used up");
    await nodeRow(page, worker).getByRole("meter", { name: `CPU of ${worker}` }).waitFor({ timeout: 20_000 });
    await clean(page);
    await shot(page, "cluster-nodes-light");
  });

  await step("the node page shows facts and metric charts with data", async () => {
    await nodeRow(page, manager).getByRole("link", { name: manager }).click();
    await page.waitForURL(/\/admin\/nodes\//);
    await page.getByRole("heading", { name: manager }).waitFor();
    await page.getByText("Debian GNU/Linux 13").waitFor();
    const cpu = page.locator('figure[data-chart="CPU"]');
    await until(async () => Number(await cpu.getAttribute("data-points")) > 0, "the CPU chart has data", 45_000);
    await cpu.locator("svg").hover();
    await page.locator("[data-chart-tooltip]").waitFor();
    await page.mouse.move(0, 0);
    // Other ranges load too; with fresh data the 7-day chart has a point at least.
    await page.getByRole("radio", { name: "24 h" }).click();
    await until(async () => Number(await cpu.getAttribute("data-points")) > 0, "the 24 h chart has data", 20_000);
    await page.getByRole("radio", { name: "1 h" }).click();
    await until(async () => Number(await cpu.getAttribute("data-points")) > 0, "the 1 h chart has data again", 20_000);
    await clean(page);
    await shot(page, "node-detail-light");
  });

  await step("labels are edited on the node page", async () => {
    await page.getByRole("button", { name: "Add label" }).click();
    const rows = page.locator("[data-label-row]");
    const last = rows.last();
    await last.getByLabel("Label name").fill("tier");
    await last.getByLabel("Label value").fill("gold");
    await page.getByRole("button", { name: "Save labels" }).click();
    await toast(page, "Labels saved");
  });

  await step("dark mode: the cluster list, nodes and node pages", async () => {
    const dark = await newContext(browser, { colorScheme: "dark" });
    contexts.push(dark);
    const p = await dark.newPage();
    await logInUI(p, env.adminEmail, env.adminPassword);
    await p.goto("/admin/clusters");
    await p.locator(`li[data-cluster="${clusterName}"]`).waitFor();
    await shot(p, "clusters-dark");
    await p.goto(clusterURL);
    await nodeRow(p, worker).getByRole("meter", { name: `CPU of ${worker}` }).waitFor();
    await shot(p, "cluster-nodes-dark");
    await nodeRow(p, manager).getByRole("link", { name: manager }).click();
    const cpu = p.locator('figure[data-chart="CPU"]');
    await until(async () => Number(await cpu.getAttribute("data-points")) > 0, "the CPU chart has data", 20_000);
    await shot(p, "node-detail-dark");
    await dark.close();
    contexts.pop();
    await page.goto("/admin/clusters");
    await page.locator(`li[data-cluster="${clusterName}"]`).waitFor();
    await clean(page);
    await shot(page, "clusters-light");
  });

  await step("draining the worker asks first, then shows Draining", async () => {
    await page.goto(`/admin/nodes/${workerId}`);
    await page.getByRole("heading", { name: worker }).waitFor();
    await page.getByRole("button", { name: "Drain", exact: true }).click();
    const confirm = page.getByRole("alertdialog");
    await confirm.getByText("Its tasks move to other nodes").waitFor();
    await confirm.getByRole("button", { name: "Drain node" }).click();
    await toast(page, `Draining ${worker}`);
    await page.getByRole("heading", { name: worker }).locator('[data-node-state="DRAINING"]').waitFor();
    await page.getByRole("button", { name: "Activate" }).waitFor();
  });

  await step("removing the worker needs its name typed, and ends removed", async () => {
    await page.getByRole("button", { name: "Remove", exact: true }).click();
    const confirm = page.getByRole("alertdialog");
    const go = confirm.getByRole("button", { name: "Remove node" });
    assert.ok(await go.isDisabled(), "Remove node is disabled until the name is typed");
    await confirm.getByTestId("confirm-name").fill("wrong");
    assert.ok(await go.isDisabled());
    await confirm.getByTestId("confirm-name").fill(worker);
    await go.click();
    await toast(page, `Removing ${worker}`);
    await page.getByRole("heading", { name: worker }).locator('[data-node-state="REMOVED"]').waitFor({ timeout: 30_000 });
    await page.getByText("This node was removed from the cluster").waitFor();
    await page.goto(clusterURL);
    await nodeRow(page, manager).waitFor();
    await until(async () => (await nodeRow(page, worker).count()) === 0, "the removed worker leaves the list", 10_000);
  });

  await ctx.close().catch(() => {});
});
