// Apps and plans: the platform admin creates, edits and retires plans; a user opens the
// create-app wizard from the empty app list, goes through its steps (client checks, .env
// import, a masked secret), gets the API's field errors next to the right fields on the right
// steps, and — with no cluster to run on — a clear message instead of an app. On a cluster
// whose node is simulated (web/e2e/simagent: commands are acknowledged, nothing runs), the
// wizard creates an app that is listed; its environment, deployments and settings work.
//
// With SKYPANEL_E2E_SWARM=1 (a control plane whose cluster has real Docker Swarm nodes), a
// second test deploys an app for real: it runs, its logs stream live, it scales, its
// environment is saved (a new release), it rolls back, and it is deleted.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, test } from "node:test";
import { api, env, launch, logInUI, newContext, shot, spawnSimAgent, stepper, until } from "./lib.mjs";

const swarm = process.env.SKYPANEL_E2E_SWARM === "1";
const agentURL = process.env.AGENT_URL;
const run = Date.now().toString(36);
const planName = `Small ${run}`;
const password = "correct horse battery staple";

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
const envRow = (page, n) => page.locator(`[data-env-row="${n}"]`);

/** fieldError is the error shown under the labelled input (through its aria-describedby). */
async function fieldError(page, label) {
  const input = page.getByLabel(label, { exact: true });
  await until(async () => (await input.getAttribute("aria-invalid")) === "true", `${label} is marked invalid`);
  const id = (await input.getAttribute("aria-describedby")) ?? "";
  return (await page.locator(`[id="${id.split(" ")[0]}"]`).textContent()).trim();
}

async function adminToken() {
  return (await api.logIn(env.adminEmail, env.adminPassword)).token;
}

/** activeCluster says whether apps have somewhere to run already. */
async function activeCluster() {
  const r = await api.call("skypanel.cluster.v1.ClusterService", "ListClusters", {}, await adminToken());
  return (r.clusters ?? []).some((c) => c.state === "CLUSTER_STATE_ACTIVE");
}

/**
 * nodeCluster makes a cluster and has one manager node enroll with a single-use token:
 * startNode(secret) starts it; the cluster is returned once the node is in its swarm.
 */
async function nodeCluster(name, startNode) {
  const token = await adminToken();
  const cs = "skypanel.cluster.v1.ClusterService";
  const { cluster } = await api.call(cs, "CreateCluster", { name }, token);
  const res = await api.call(cs, "CreateEnrollmentToken", { clusterId: cluster.id, role: "NODE_ROLE_MANAGER", ttl: "600s", usageLimit: 1 }, token);
  await startNode(res.secret);
  await until(async () => (await api.call(cs, "GetCluster", { clusterId: cluster.id }, token)).cluster.state === "CLUSTER_STATE_ACTIVE", `cluster ${name} is active`, 90_000);
  return cluster;
}

/** realCluster's manager is the real Docker node run.sh started, enrolled with the real
 * agent (web/e2e/enroll-node.sh). */
function realCluster(name) {
  return nodeCluster(name, (secret) => new Promise((resolve, reject) => {
    const child = spawn(process.env.E2E_ENROLL, [agentURL, secret], { stdio: ["ignore", "inherit", "inherit"] });
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`enroll-node.sh exited with ${code}`))));
  }));
}

/** simCluster's manager is a simulated node (web/e2e/simagent). */
function simCluster(name) {
  return nodeCluster(name, async (secret) => {
    const args = ["--agent-url", agentURL, "--token", secret, "--hostname", `sim-${name}`];
    const child = spawnSimAgent(args);
    agents.push(child);
    child.stdout.resume();
    child.stderr.resume();
  });
}

async function createPlanAPI(name, fields = {}) {
  const token = await adminToken();
  const r = await api.call(
    "skypanel.plan.v1.PlanService",
    "CreatePlan",
    { plan: { name, cpuMillis: 250, memoryMib: 256, pricePerHour: "1", currency: "USD", maxReplicas: 3, maxApps: 10, ...fields } },
    token,
  );
  return r.plan;
}

test("apps: plans, the create-app wizard and its errors, no cluster yet", async (t) => {
  const admin = await newContext(browser);
  contexts.push(admin);
  const page = await admin.newPage();
  const step = stepper(t, () => contexts);
  let userPage;
  let org;

  await step("the admin creates a plan, with checks on CPU and price", async () => {
    await logInUI(page, env.adminEmail, env.adminPassword);
    await page.getByRole("navigation", { name: "Platform admin" }).getByRole("link", { name: "Plans" }).click();
    await page.getByRole("heading", { name: "Plans", exact: true }).waitFor();
    await page.getByText("No plans yet").or(page.locator("li[data-plan]").first()).first().waitFor();
    await page.getByRole("button", { name: "Create plan" }).first().click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Name").fill(planName);
    await dialog.getByLabel("CPU (cores)").fill("0");
    await dialog.getByLabel("Memory (MiB)").fill("512");
    await dialog.getByLabel("Price per hour").fill("0.025");
    await dialog.getByLabel("Currency").fill("USD");
    await dialog.getByLabel("Max replicas").fill("3");
    await dialog.getByLabel("Max apps").fill("5");
    await dialog.getByLabel("Description").fill("For small web apps.");
    await dialog.getByRole("button", { name: "Create plan" }).click();
    assert.equal(await fieldError(dialog, "CPU (cores)"), "From 0.01 to 64 cores.");
    assert.equal(await fieldError(dialog, "Price per hour"), "At most 2 decimal places in USD.");
    await dialog.getByLabel("CPU (cores)").fill("0.5");
    await dialog.getByLabel("Price per hour").fill("0.02");
    await dialog.getByText("(2 minor units)").waitFor();
    await dialog.getByRole("button", { name: "Create plan" }).click();
    await toast(page, `Plan “${planName}” created`);
    const row = page.locator(`li[data-plan="${planName}"]`);
    await row.getByText("$0.02 / hour").waitFor();
    await row.getByText("0.5 CPUs · 512 MiB per replica · up to 3 replicas · 5 apps per organization").waitFor();
    // What the API stored: minor units and millicores.
    const body = await api.call("skypanel.plan.v1.PlanService", "ListPlans", {}, await adminToken());
    const stored = body.plans.find((p) => p.name === planName);
    assert.equal(stored.pricePerHour, "2");
    assert.equal(stored.cpuMillis, 500);
  });

  await step("the admin edits the plan and retires another", async () => {
    const row = page.locator(`li[data-plan="${planName}"]`);
    await row.getByRole("button", { name: `Edit ${planName}` }).click();
    const dialog = page.getByRole("dialog");
    assert.equal(await dialog.getByLabel("Price per hour").inputValue(), "0.02");
    await dialog.getByLabel("Max replicas").fill("4");
    await dialog.getByRole("button", { name: "Save plan" }).click();
    await toast(page, `Plan “${planName}” saved`);
    await row.getByText("up to 4 replicas", { exact: false }).waitFor();

    const legacy = `Legacy ${run}`;
    await createPlanAPI(legacy);
    await page.reload();
    const old = page.locator(`li[data-plan="${legacy}"]`);
    await old.getByRole("button", { name: `Retire ${legacy}` }).click();
    const confirm = page.getByRole("alertdialog");
    await confirm.getByText("New apps can't choose it any more").waitFor();
    await confirm.getByRole("button", { name: "Retire plan" }).click();
    await toast(page, `Plan “${legacy}” retired`);
    await until(async () => (await old.count()) === 0, "the retired plan leaves the list");
    await page.getByRole("switch", { name: "Show retired plans" }).click();
    await old.getByText("Retired").waitFor();
    await shot(page, "admin-plans-light");
  });

  await step("a user finds no apps and opens the wizard from the empty state", async () => {
    const email = `apps-${run}@example.com`;
    const user = await api.signUp(email, password, "App Builder");
    org = await api.createOrg(user, `Apps ${run}`);
    const ctx = await newContext(browser);
    contexts.push(ctx);
    userPage = await ctx.newPage();
    await logInUI(userPage, email, password);
    await userPage.goto(`/o/${org.slug}`);
    await userPage.getByRole("navigation", { name: "Organization" }).getByRole("link", { name: "Apps" }).click();
    await userPage.getByRole("heading", { name: "Apps", exact: true }).waitFor();
    await userPage.getByText("No apps yet").waitFor();
    await userPage.getByRole("link", { name: "Create app" }).click();
    await userPage.waitForURL(/\/apps\/new$/);
    await userPage.getByRole("heading", { name: "Create an app" }).waitFor();
  });

  await step("step 1 asks for a name; the image is checked by the API later", async () => {
    const p = userPage;
    await p.getByRole("button", { name: "Next" }).click();
    assert.equal(await fieldError(p, "App name"), "Give the app a name.");
    await p.getByLabel("App name").fill("web");
    // Upper case is not a valid repository name: only the API says so, at Create.
    await p.getByLabel("Image").fill("Nginx:1.27");
    await p.getByLabel("Container port").fill("80");
    await p.getByRole("button", { name: "Next" }).click();
    await p.getByRole("radiogroup", { name: "Plan" }).waitFor();
  });

  await step("step 2 picks the plan, showing its size and price, and checks the replicas", async () => {
    const p = userPage;
    const card = p.locator(`label[data-plan="${planName}"]`);
    await card.getByText("$0.02 / hour").waitFor();
    await card.getByText("0.5 CPUs · 512 MiB per replica · up to 4 replicas").waitFor();
    assert.equal(await p.locator(`label[data-plan="Legacy ${run}"]`).count(), 0, "retired plans are not offered");
    await p.getByRole("radio", { name: planName, exact: true }).check();
    await p.getByLabel("Replicas").fill("5");
    await p.getByRole("button", { name: "Next" }).click();
    assert.equal(await fieldError(p, "Replicas"), "A whole number from 0 to 4.");
    await p.getByLabel("Replicas").fill("2");
    await p.getByRole("button", { name: "Next" }).click();
    await p.getByRole("heading", { name: "Environment" }).waitFor();
  });

  await step("step 3: variables, a masked secret, and a .env import", async () => {
    const p = userPage;
    await p.getByRole("button", { name: "Add variable" }).click();
    await p.getByLabel("Name of variable 1").fill("LOG_LEVEL");
    await p.getByLabel("Value of variable 1").fill("debug");
    await p.getByRole("button", { name: "Add variable" }).click();
    await p.getByLabel("Name of variable 2").fill("API_KEY");
    await p.getByRole("switch", { name: "Secret: variable 2" }).click();
    const secret = p.getByLabel("Value of variable 2", { exact: true });
    assert.equal(await secret.getAttribute("type"), "password");
    await secret.fill("s3cret-value");

    await p.getByRole("button", { name: "Import .env" }).click();
    const dialog = p.getByRole("dialog");
    await dialog.getByLabel(".env content").fill("# pasted\nFOO=bar\nexport LOG_LEVEL='info'\n");
    await dialog.getByRole("button", { name: "Import variables" }).click();
    await toast(p, "2 variables imported");
    assert.equal(await p.getByLabel("Value of variable 1").inputValue(), "info", "an imported variable replaces the one of the same name");
    assert.equal(await p.getByLabel("Name of variable 3").inputValue(), "FOO");
    assert.equal(await p.locator("[data-env-row]").count(), 3);

    // A blank row (skipped when sent) before a bad one: the API's spec.env[3] is row 5.
    await p.getByRole("button", { name: "Add variable" }).click();
    await p.getByRole("button", { name: "Add variable" }).click();
    await p.getByLabel("Name of variable 5").fill("1BAD");
    await p.getByLabel("Value of variable 5").fill("x");

    await p.getByRole("switch", { name: "Health check" }).click();
    await p.getByLabel("Health check command").fill("wget -q -O /dev/null http://localhost/");
    await p.getByRole("button", { name: "Next" }).click();
    await p.getByRole("heading", { name: "Review" }).waitFor();
  });

  await step("the review masks the secret; Create puts the API's errors next to their fields", async () => {
    const p = userPage;
    await p.getByText("API_KEY=••••••").waitFor();
    assert.equal(await p.getByText("s3cret-value").count(), 0, "the secret is not shown in the review");
    await p.getByText(planName, { exact: false }).first().waitFor();
    await p.getByRole("button", { name: "Create app" }).click();
    // The first step with a problem opens: the image.
    await p.getByLabel("Image").waitFor();
    assert.match(await fieldError(p, "Image"), /lower-case/i);
    await p.getByLabel("Image").fill("nginx:1.27-alpine");
    await p.getByRole("button", { name: "Next" }).click();
    await p.getByRole("button", { name: "Next" }).click();
    await p.getByRole("heading", { name: "Environment" }).waitFor();
    const err = await fieldError(p, "Name of variable 5");
    assert.match(err, /letter|underscore/i, `the name error sits under row 5: ${err}`);
    assert.equal(await envRow(p, 1).locator("[data-field-error]").count(), 0);
    await p.getByRole("button", { name: "Remove variable 5 1BAD" }).click();
    await p.getByRole("button", { name: "Remove variable 4" }).click();
    await p.getByRole("button", { name: "Next" }).click();
    await p.getByRole("heading", { name: "Review" }).waitFor();
  });

  await step("with no cluster to run on, Create says so clearly and nothing is made", async () => {
    const p = userPage;
    if (await activeCluster()) {
      t.diagnostic("a cluster is active already (a reused stack?): the no-cluster message can't be shown");
      return;
    }
    await p.getByRole("button", { name: "Create app" }).click();
    const alert = p.getByRole("alert").filter({ hasText: "Couldn't create the app" });
    await alert.waitFor();
    assert.match(await alert.textContent(), /cluster/i);
    assert.match(new URL(p.url()).pathname, /\/apps\/new$/);
    await shot(p, "create-app-no-cluster-light");
    await p.getByRole("link", { name: "Apps" }).first().click();
    await p.getByText("No apps yet").waitFor();
  });

  await step("on a 375 px phone and in dark mode the wizard fits the screen", async () => {
    const phone = await newContext(browser, { width: 375, height: 740, colorScheme: "dark" });
    contexts.push(phone);
    const p = await phone.newPage();
    await logInUI(p, `apps-${run}@example.com`, password);
    await p.goto(`/o/${org.slug}/apps/new`);
    await p.getByLabel("App name").fill("phone");
    await p.getByLabel("Image").fill("nginx:1.27-alpine");
    await p.getByRole("button", { name: "Next" }).click();
    await p.getByRole("radio", { name: planName, exact: true }).check();
    await p.getByRole("button", { name: "Next" }).click();
    await p.getByRole("button", { name: "Add variable" }).click();
    await p.getByLabel("Name of variable 1").fill("A_RATHER_LONG_VARIABLE_NAME");
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px`);
    assert.ok(await p.evaluate(() => document.documentElement.classList.contains("dark")));
    await shot(p, "create-app-env-phone-dark");
    await phone.close();
    contexts.pop();
  });

  await admin.close().catch(() => {});
});

// A simulated node (web/e2e/simagent) acknowledges every command without running anything: the
// app is created and listed and its deployment starts, but no replica ever runs.
test("apps: on a simulated node the wizard creates an app that is listed, with its pages", { skip: (swarm && "a real swarm runs the test below") || (!agentURL && "AGENT_URL is not set (run web/e2e/run.sh)") }, async (t) => {
  const planSim = `Sim ${run}`;
  await createPlanAPI(planSim, { maxReplicas: 2 });
  const email = `sim-${run}@example.com`;
  const user = await api.signUp(email, password, "Sim User");
  const org = await api.createOrg(user, `Sim ${run}`);
  const ctx = await newContext(browser);
  contexts.push(ctx);
  const p = await ctx.newPage();
  const step = stepper(t, () => contexts);
  let appURL = "";

  await step("a cluster with a simulated node becomes active", async () => {
    if (!(await activeCluster())) await simCluster(`apps-${run}`);
  });

  await step("the wizard creates the app and opens it on its first deployment", async () => {
    await logInUI(p, email, password);
    await p.goto(`/o/${org.slug}/apps`);
    await p.getByText("No apps yet").waitFor();
    await p.getByRole("link", { name: "Create app" }).click();
    await p.getByLabel("App name").fill("hello");
    await p.getByLabel("Image").fill("nginx:1.27-alpine");
    await p.getByLabel("Container port").fill("80");
    await p.getByRole("button", { name: "Next" }).click();
    await p.getByRole("radio", { name: planSim, exact: true }).check();
    await p.getByLabel("Replicas").fill("1");
    await p.getByRole("button", { name: "Next" }).click();
    await p.getByRole("button", { name: "Add variable" }).click();
    await p.getByLabel("Name of variable 1").fill("TOKEN");
    await p.getByRole("switch", { name: "Secret: variable 1" }).click();
    await p.getByLabel("Value of variable 1", { exact: true }).fill("very-secret");
    await p.getByRole("button", { name: "Next" }).click();
    await p.getByRole("button", { name: "Create app" }).click();
    await p.waitForURL(/\/apps\/[0-9a-f-]{36}$/);
    appURL = new URL(p.url()).pathname;
    await toast(p, "hello created");
    await p.getByRole("heading", { name: "hello" }).waitFor();
    const progress = p.locator("[data-deployment-progress]");
    await progress.waitFor();
    await progress.locator('[data-step="PENDING"]').waitFor();
    await progress.locator('[data-live="live"]').waitFor();
  });

  await step("the app list shows it with its status, replicas, plan and deployment, refreshed", async () => {
    await p.getByRole("link", { name: "Apps" }).first().click();
    const row = p.locator('li[data-app="hello"]');
    await row.locator("[data-app-status]").waitFor();
    await row.locator('[data-replicas$="/1"]').waitFor();
    await row.getByText(planSim).waitFor();
    await row.locator("[data-deployment-state]").waitFor();
    assert.match(await row.locator('a[target="_blank"]').textContent(), /^hello-/, "the app's URL is linked");
    await shot(p, "apps-list-light");
  });

  await step("the environment shows the secret as stored; a new variable saves as release 2", async () => {
    await p.goto(`${appURL}/environment`);
    await envRow(p, 1).locator("[data-secret-stored]").waitFor();
    assert.equal(await p.getByText("very-secret").count(), 0);
    await p.getByRole("button", { name: "Add variable" }).click();
    await p.getByLabel("Name of variable 2").fill("MODE");
    await p.getByLabel("Value of variable 2").fill("fast");
    await p.getByRole("button", { name: "Save and deploy" }).click();
    await toast(p, "Environment saved");
    await envRow(p, 1).locator("[data-secret-stored]").waitFor();
    await p.getByRole("tab", { name: "Deployments" }).click();
    await p.locator('li[data-release="2"]').waitFor();
    await p.locator('li[data-release="1"]').getByRole("button", { name: "Roll back to release 1" }).waitFor();
    await p.locator("li[data-deployment]").first().waitFor();
  });

  await step("the app is deleted after its name is typed", async () => {
    await p.getByRole("tab", { name: "Settings" }).click();
    await p.getByRole("button", { name: "Delete app" }).click();
    const confirm = p.getByRole("alertdialog");
    const go = confirm.getByRole("button", { name: "Delete forever" });
    assert.ok(await go.isDisabled());
    await confirm.getByTestId("confirm-name").fill("hello");
    await go.click();
    await toast(p, "hello is being deleted");
    await p.waitForURL(/\/apps$/);
  });

  await ctx.close().catch(() => {});
});

// The rest needs a cluster with real Docker Swarm nodes: the app must really run.
test("apps: deploy on a real swarm, running, logs, scale, env, rollback, delete", { skip: !swarm && "SKYPANEL_E2E_SWARM=1 is not set (needs a cluster of real Swarm nodes)" }, async (t) => {
  const image = process.env.SKYPANEL_E2E_APP_IMAGE || "busybox:1.36";
  const command = process.env.SKYPANEL_E2E_APP_COMMAND || `sh -c 'i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 1; done'`;
  if (process.env.E2E_ENROLL) await realCluster(`real-${run}`);
  const planLive = `Live ${run}`;
  await createPlanAPI(planLive, { maxReplicas: 3 });
  const email = `deploy-${run}@example.com`;
  const user = await api.signUp(email, password, "Deployer");
  const org = await api.createOrg(user, `Deploy ${run}`);
  const ctx = await newContext(browser);
  contexts.push(ctx);
  const p = await ctx.newPage();
  const step = stepper(t, () => contexts);
  let appURL = "";

  await step("the wizard creates the app and opens it, showing the deployment live", async () => {
    await logInUI(p, email, password);
    await p.goto(`/o/${org.slug}/apps/new`);
    await p.getByLabel("App name").fill("ticker");
    await p.getByLabel("Image").fill(image);
    await p.getByLabel("Container port").fill("");
    await p.getByRole("button", { name: "Next" }).click();
    await p.getByRole("radio", { name: planLive, exact: true }).check();
    await p.getByLabel("Replicas").fill("1");
    await p.getByRole("button", { name: "Next" }).click();
    await p.getByRole("button", { name: "Add variable" }).click();
    await p.getByLabel("Name of variable 1").fill("GREETING");
    await p.getByRole("switch", { name: "Secret: variable 1" }).click();
    await p.getByLabel("Value of variable 1", { exact: true }).fill("hello-secret");
    await p.getByLabel("Command", { exact: true }).fill(command);
    await p.getByRole("button", { name: "Next" }).click();
    await p.getByRole("button", { name: "Create app" }).click();
    await p.waitForURL(/\/apps\/[0-9a-f-]{36}$/, { timeout: 30_000 });
    appURL = new URL(p.url()).pathname;
    await toast(p, "ticker created");
    await p.getByRole("heading", { name: "ticker" }).waitFor();
    await p.locator("[data-deployment-progress]").or(p.locator('[data-app-status="RUNNING"]')).first().waitFor();
  });

  await step("it turns running with its replica on a node, and is listed", async () => {
    await p.locator('[data-app-status="RUNNING"]').first().waitFor({ timeout: 180_000 });
    await p.locator('[data-replica-state="running"]').first().waitFor({ timeout: 60_000 });
    await p.getByTestId("replicas-running").filter({ hasText: "1 / 1" }).waitFor();
    await p.goto(`/o/${org.slug}/apps`);
    const row = p.locator('li[data-app="ticker"]');
    await row.locator('[data-app-status="RUNNING"]').waitFor();
    await row.locator('[data-replicas="1/1"]').waitFor();
    await row.getByText(planLive).waitFor();
    await row.locator('[data-deployment-state="SUCCEEDED"]').waitFor();
  });

  await step("logs stream live with replica labels, search highlights, pause holds lines back", async () => {
    await p.goto(`${appURL}/logs`);
    const log = p.getByRole("log", { name: "Log lines" });
    await log.getByText(/tick \d+/).first().waitFor({ timeout: 60_000 });
    await log.locator('[data-log-replica="1"]').first().waitFor();
    const count = async () => Number(/^(\d+)/.exec(await p.getByTestId("log-count").textContent())[1]);
    const before = await count();
    await until(async () => (await count()) > before, "new lines arrive", 15_000);
    await p.getByLabel("Search logs").fill("tick");
    await log.locator("mark").first().waitFor();
    await p.getByLabel("Search logs").fill("");
    await p.getByRole("button", { name: "Pause" }).click();
    const frozen = await count();
    await p.waitForTimeout(2500); // lines arrive about every second; none may show while paused
    assert.equal(await count(), frozen, "no lines are added while paused");
    await p.getByRole("button", { name: /^Resume/ }).click();
    await until(async () => (await count()) > frozen, "held lines appear on resume", 10_000);
    const download = p.waitForEvent("download");
    await p.getByRole("button", { name: "Download" }).click();
    assert.match((await download).suggestedFilename(), /^ticker-.*\.log$/);
  });

  await step("scaling to 2 runs a second replica", async () => {
    await p.goto(appURL);
    await p.getByLabel("Replicas", { exact: true }).fill("2");
    await p.getByRole("button", { name: "Scale", exact: true }).click();
    await toast(p, "Scaling ticker to 2 replicas");
    await p.getByTestId("replicas-running").filter({ hasText: "2 / 2" }).waitFor({ timeout: 120_000 });
  });

  await step("the environment keeps the secret masked; saving deploys release 2", async () => {
    await p.goto(`${appURL}/environment`);
    await envRow(p, 1).locator("[data-secret-stored]").waitFor();
    assert.equal(await p.getByText("hello-secret").count(), 0);
    await p.getByRole("button", { name: "Add variable" }).click();
    await p.getByLabel("Name of variable 2").fill("MODE");
    await p.getByLabel("Value of variable 2").fill("fast");
    await p.getByRole("button", { name: "Save and deploy" }).click();
    await toast(p, "Environment saved");
    await envRow(p, 1).locator("[data-secret-stored]").waitFor();
    await p.goto(`${appURL}/deployments`);
    await p.locator('li[data-release="2"]').getByText("Current").waitFor({ timeout: 120_000 });
  });

  await step("rolling back to release 1 asks first", async () => {
    await p.getByRole("button", { name: "Roll back to release 1" }).click();
    const confirm = p.getByRole("alertdialog");
    await confirm.getByRole("button", { name: "Roll back to v1" }).click();
    await toast(p, "Rolling back to release 1");
    await p.locator("li[data-deployment]").filter({ hasText: "Rollback" }).first().waitFor();
    await p.locator('[data-app-status="RUNNING"]').first().waitFor({ timeout: 180_000 });
  });

  await step("deleting needs the app's name typed", async () => {
    await p.goto(`${appURL}/settings`);
    await p.getByRole("button", { name: "Delete app" }).click();
    const confirm = p.getByRole("alertdialog");
    const go = confirm.getByRole("button", { name: "Delete forever" });
    assert.ok(await go.isDisabled());
    await confirm.getByTestId("confirm-name").fill("ticker");
    await go.click();
    await p.waitForURL(/\/apps$/);
    await until(async () => (await p.locator('li[data-app="ticker"]').count()) === 0, "the app leaves the list", 60_000);
  });

  await ctx.close().catch(() => {});
});
