// Helpers for the browser tests: the browser, users, mail, the API, screenshots.
import { execFile, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { chromium } from "playwright-core";

export const env = {
  base: must("BASE_URL"),
  mailpit: must("MAILPIT_URL"),
  adminEmail: must("ADMIN_EMAIL"),
  adminPassword: must("ADMIN_PASSWORD"),
  chromium: process.env.CHROMIUM || "/usr/bin/chromium",
  updateScreenshots: process.env.UPDATE_SCREENSHOTS === "1",
};

function must(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the browser tests with web/e2e/run.sh`);
  return v;
}

const here = dirname(fileURLToPath(import.meta.url));
export const artifactsDir = join(here, "artifacts");
export const screenshotsDir = join(here, "..", "..", "docs", "screenshots");

export const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export async function launch() {
  return chromium.launch({ executablePath: env.chromium, args: chromiumArgs, headless: true });
}

/** newUser opens a fresh browser context: its own storage, so its own session. */
export async function newContext(browser, { width = 1280, height = 800, colorScheme = "light" } = {}) {
  const ctx = await browser.newContext({
    baseURL: env.base,
    viewport: { width, height },
    colorScheme,
    reducedMotion: "reduce",
    permissions: ["clipboard-read", "clipboard-write"],
  });
  ctx.setDefaultTimeout(15_000);
  return ctx;
}

/** screenshotAll saves every open page of the contexts into artifacts/, for a failed step. */
export async function screenshotAll(contexts, name) {
  mkdirSync(artifactsDir, { recursive: true });
  let i = 0;
  for (const ctx of contexts) {
    for (const page of ctx.pages()) {
      const file = join(artifactsDir, `${name.replace(/[^a-z0-9]+/gi, "-")}-${i++}.png`);
      await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    }
  }
}

/**
 * steps runs named steps in order as subtests of t. After a failure the remaining steps are
 * skipped (they depend on it) and every open page is saved as a screenshot.
 */
export function stepper(t, contexts) {
  let failed = "";
  return async (name, fn) => {
    if (failed) return t.test(name, { skip: `needs “${failed}”` }, () => {});
    return t.test(name, async () => {
      try {
        await fn();
      } catch (err) {
        failed = name;
        await screenshotAll(contexts(), name);
        throw err;
      }
    });
  };
}

/** waitForMail polls mailpit until a message to addr whose subject matches arrives. */
export async function waitForMail(addr, { subject = /./, timeoutMs = 30_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${env.mailpit}/api/v1/search?query=${encodeURIComponent(`to:${addr}`)}`);
    if (res.ok) {
      const { messages = [] } = await res.json();
      const m = messages.find((x) => subject.test(x.Subject ?? ""));
      if (m) {
        const full = await (await fetch(`${env.mailpit}/api/v1/message/${m.ID}`)).json();
        return full;
      }
    }
    if (Date.now() > deadline) throw new Error(`no mail to ${addr} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** linkIn finds the first link in a mail's text matching re (whose first group is the link). */
export function linkIn(mail, re) {
  const text = `${mail.Text ?? ""}\n${mail.HTML ?? ""}`;
  const m = re.exec(text);
  if (!m) throw new Error(`no link matching ${re} in mail “${mail.Subject}”:\n${mail.Text}`);
  return m[1].replace(/&amp;/g, "&");
}

/** rpc calls the API the way curl would: POST JSON to /<service>/<method>. */
export async function rpc(service, method, body, token) {
  const res = await fetch(`${env.base}/${service}/${method}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const json = await res.json().catch(() => ({}));
  return { status: res.status, body: json };
}

const execFileP = promisify(execFile);

/** sh runs a shell command (curl) with extra environment and returns its stdout. */
export async function sh(command, extraEnv = {}) {
  const { stdout } = await execFileP("bash", ["-c", command], { env: { ...process.env, ...extraEnv }, timeout: 30_000 });
  return stdout;
}

/** shot saves a documentation screenshot when UPDATE_SCREENSHOTS=1. */
export async function shot(page, name) {
  if (!env.updateScreenshots) return;
  mkdirSync(screenshotsDir, { recursive: true });
  // Contexts prefer reduced motion, so nothing is mid-animation; fonts may still load.
  await page.evaluate(() => document.fonts?.ready);
  await page.screenshot({ path: join(screenshotsDir, `${name}.png`) });
}

/** api wraps the RPCs the tests use to set things up quickly; each throws on a non-200. */
export const api = {
  async call(service, method, body, token) {
    const res = await rpc(service, method, body, token);
    if (res.status !== 200) throw new Error(`${service}/${method}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  },
  async signUp(email, password, displayName) {
    const r = await api.call("skypanel.auth.v1.AuthService", "SignUp", { email, password, displayName });
    return { ...r.user, token: r.tokens.accessToken };
  },
  async logIn(email, password) {
    const r = await api.call("skypanel.auth.v1.AuthService", "LogIn", { email, password });
    return { ...r.user, token: r.tokens.accessToken };
  },
  async createOrg(user, name) {
    return (await api.call("skypanel.organization.v1.OrganizationService", "CreateOrganization", { name }, user.token)).organization;
  },
  /** join invites user into org with role (e.g. "ROLE_MEMBER") and accepts through the mailed token. */
  async join(admin, org, user, role) {
    await api.call("skypanel.organization.v1.InvitationService", "CreateInvitation", { organizationId: org.id, email: user.email, role }, admin.token);
    const mail = await waitForMail(user.email, { subject: new RegExp(org.name) });
    const token = linkIn(mail, /invitations\/accept\?token=(spinv_[A-Za-z0-9_-]+)/);
    await api.call("skypanel.organization.v1.InvitationService", "AcceptInvitation", { token }, user.token);
  },
  async invite(admin, org, email, role) {
    return api.call("skypanel.organization.v1.InvitationService", "CreateInvitation", { organizationId: org.id, email, role }, admin.token);
  },
  async createToken(user, org, name, role, ttlDays = 30) {
    return api.call("skypanel.apitoken.v1.APITokenService", "CreateAPIToken", { organizationId: org.id, name, role, ttlDays }, user.token);
  },
};

/** logInUI logs in through the log-in page and waits for the dashboard. */
export async function logInUI(page, email, password) {
  await page.goto("/login");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL((u) => !u.pathname.startsWith("/login"));
}

/** until polls cond (async) until it returns true, or fails with what after timeoutMs. */
export async function until(cond, what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * psql runs SQL on the control plane's database (run.sh exports its URL and the psql to use)
 * and returns the output, unaligned: for seeding what no API makes, such as an app's past run.
 */
export async function psql(sql) {
  const { stdout } = await execFileP(process.env.E2E_PSQL || "psql", [must("SKYPANEL_DATABASE_URL"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql], {
    env: { ...process.env, PGOPTIONS: "--client-min-messages=warning" },
    timeout: 30_000,
  });
  return stdout.trim();
}

const repoDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/**
 * spawnSimAgent starts a simulated node (web/e2e/simagent: the real enrollment and session,
 * commands acknowledged, nothing run) with args; run.sh builds it into SIMAGENT. Its output
 * is piped: read it, or call resume() on the streams.
 */
export function spawnSimAgent(args) {
  return process.env.SIMAGENT
    ? spawn(process.env.SIMAGENT, args, { stdio: ["ignore", "pipe", "pipe"] })
    : spawn("go", ["run", "./web/e2e/simagent", ...args], { cwd: repoDir, stdio: ["ignore", "pipe", "pipe"] });
}
