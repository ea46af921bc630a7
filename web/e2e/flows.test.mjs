// The other paths through the dashboard: password reset from the emailed link, sessions
// ended elsewhere, managing an organization (with confirmations for what destroys), and the
// platform admin's area.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { api, env, launch, linkIn, logInUI, newContext, rpc, screenshotAll, until, waitForMail } from "./lib.mjs";

const run = Date.now().toString(36);
const pw = "flows-password-1";
let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/** withPages runs fn with fresh contexts and keeps screenshots of their pages if it fails. */
async function withContexts(n, fn, opts) {
  const ctxs = [];
  for (let i = 0; i < n; i++) ctxs.push(await newContext(browser, opts));
  try {
    await fn(...(await Promise.all(ctxs.map((c) => c.newPage()))));
  } catch (err) {
    await screenshotAll(ctxs, `flows-${Date.now()}`);
    throw err;
  } finally {
    await Promise.all(ctxs.map((c) => c.close()));
  }
}

const toast = (page, text) => page.locator("[data-toast]").filter({ hasText: text }).first().waitFor();

test("a forgotten password is reset from the emailed link", async () => {
  const email = `reset-${run}@example.com`;
  await api.signUp(email, pw, "Reset Me");
  await withContexts(1, async (page) => {
    await page.goto("/login");
    await page.getByRole("link", { name: "Forgot password?" }).click();
    await page.getByLabel("Email").fill(email);
    await page.getByRole("button", { name: "Send reset link" }).click();
    await page.getByRole("heading", { name: "Check your email" }).waitFor();

    const link = linkIn(await waitForMail(email), /(https?:\/\/\S+\/reset-password\?token=sprst_[A-Za-z0-9_-]+)/);
    await page.goto(link);
    await page.getByLabel("New password", { exact: true }).fill("short");
    await page.getByLabel("Repeat the new password").fill("different");
    await page.getByRole("button", { name: "Set new password" }).click();
    await page.getByText("The two passwords differ.").waitFor();
    await page.getByLabel("Repeat the new password").fill("short");
    await page.getByRole("button", { name: "Set new password" }).click();
    await page.locator("[data-field-error]").filter({ hasText: "at least 10 characters" }).waitFor();

    const fresh = "a-brand-new-password";
    await page.getByLabel("New password", { exact: true }).fill(fresh);
    await page.getByLabel("Repeat the new password").fill(fresh);
    await page.getByRole("button", { name: "Set new password" }).click();
    await page.waitForURL(/\/login$/);
    await toast(page, "Password changed");
    // The link worked once.
    const again = await rpc("skypanel.auth.v1.AuthService", "ResetPassword", { token: new URL(link).searchParams.get("token"), newPassword: "yet-another-password" });
    assert.notEqual(again.status, 200);
    await logInUI(page, email, fresh);
    await page.getByRole("heading", { name: "Welcome, Reset Me!" }).waitFor();
  });
});

test("a wrong password is refused with the server's message; the form keeps the email", async () => {
  await withContexts(1, async (page) => {
    await page.goto("/login");
    await page.getByLabel("Email").fill(`nobody-${run}@example.com`);
    await page.getByLabel("Password", { exact: true }).fill("wrong-password");
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("alert").first().waitFor();
    assert.equal(await page.getByLabel("Email").inputValue(), `nobody-${run}@example.com`);
    assert.match(page.url(), /\/login/);
  });
});

test("changing the password ends the other sessions; that browser goes back to log in", async () => {
  const email = `sessions-${run}@example.com`;
  await api.signUp(email, pw, "Two Browsers");
  await withContexts(2, async (a, b) => {
    await logInUI(a, email, pw);
    await logInUI(b, email, pw);
    await b.goto("/profile");
    await a.goto("/profile");
    await a.getByLabel("Current password").fill(pw);
    await a.getByLabel("New password", { exact: true }).fill("changed-password-1");
    await a.getByLabel("Repeat the new password").fill("changed-password-1");
    await a.getByRole("button", { name: "Change password" }).click();
    await toast(a, "Password changed");
    // B's next call is refused, its refresh token too: it lands on the log-in page.
    await b.bringToFront();
    await b.goto("/new");
    await b.waitForURL(/\/login/);
    await toast(b, "Your session ended");
    assert.equal(await b.locator("[data-toast]").filter({ hasText: "Your session ended" }).count(), 1, "said once");
    assert.equal(await b.evaluate(() => localStorage.getItem("skypanel.refresh")), null);
    // A stays signed in, through a reload too.
    await a.bringToFront();
    await a.reload();
    await a.getByRole("heading", { name: "Profile" }).waitFor();
  });
});

test("an owner manages the organization, confirming whatever destroys", async () => {
  const owner = await api.signUp(`owner-${run}@example.com`, pw, "Olive Owner");
  const bob = await api.signUp(`bob-${run}@example.com`, pw, "Bob Builder");
  const org = await api.createOrg(owner, `Flows ${run}`);
  await api.join(owner, org, bob, "ROLE_MEMBER");
  await api.invite(owner, org, `pending-${run}@example.com`, "ROLE_VIEWER");

  await withContexts(1, async (page) => {
    await logInUI(page, owner.email, pw);
    await page.goto(`/o/${org.slug}/settings`);

    // Rename.
    await page.getByLabel("Name", { exact: true }).fill(`Renamed ${run}`);
    await page.getByRole("button", { name: "Save" }).click();
    await toast(page, "Organization renamed");
    await page.getByTestId("org-switcher").filter({ hasText: `Renamed ${run}` }).waitFor();

    // Change a role.
    await page.getByRole("link", { name: "Members" }).click();
    await page.getByRole("combobox", { name: `Role of ${bob.email}` }).click();
    await page.getByRole("option", { name: "Admin" }).click();
    await toast(page, "is now admin");

    // Withdraw an invitation: cancel first, then confirm.
    const inv = page.locator(`li[data-invitation="pending-${run}@example.com"]`);
    await inv.getByRole("button", { name: "Revoke" }).click();
    await page.getByRole("alertdialog").getByRole("button", { name: "Cancel" }).click();
    assert.equal(await inv.count(), 1, "cancel keeps the invitation");
    await inv.getByRole("button", { name: "Revoke" }).click();
    await page.getByRole("alertdialog").getByRole("button", { name: "Withdraw invitation" }).click();
    await toast(page, "withdrawn");
    await inv.waitFor({ state: "detached" });

    // Transfer ownership to Bob: the owner becomes an admin, and can then leave.
    await page.getByRole("link", { name: "Settings" }).click();
    await page.getByRole("combobox", { name: "New owner" }).click();
    await page.getByRole("option", { name: /Bob Builder/ }).click();
    await page.getByRole("button", { name: "Transfer", exact: true }).click();
    await page.getByRole("alertdialog").getByRole("button", { name: "Transfer ownership" }).click();
    await toast(page, "now owns");
    await page.getByTestId("org-switcher").filter({ hasText: "Admin" }).waitFor();
    await page.getByRole("button", { name: `Leave Renamed ${run}` }).click();
    await page.getByRole("alertdialog").getByRole("button", { name: "Leave organization" }).click();
    await toast(page, "You left");
    await page.getByRole("heading", { name: "Welcome, Olive Owner!" }).waitFor();

    // Deleting asks for the short name first.
    const doomed = await api.createOrg(owner, `Doomed ${run}`);
    await page.goto(`/o/${doomed.slug}/settings`);
    await page.getByRole("button", { name: "Delete organization" }).click();
    const dialog = page.getByRole("alertdialog");
    const confirm = dialog.getByRole("button", { name: "Delete forever" });
    assert.equal(await confirm.isDisabled(), true, "disabled until the short name is typed");
    await dialog.getByLabel("Organization short name").fill(doomed.slug);
    await confirm.click();
    await toast(page, "was deleted");
    await page.waitForURL((u) => u.pathname === "/");
    const orgs = await api.call("skypanel.organization.v1.OrganizationService", "ListOrganizations", {}, owner.token);
    assert.equal(orgs.organizations?.length ?? 0, 0);
  });
});

test("only platform admins see and reach the admin area", async () => {
  const user = await api.signUp(`member-${run}@example.com`, pw, "Plain User");
  await withContexts(2, async (admin, plain) => {
    await logInUI(plain, user.email, pw);
    assert.equal(await plain.getByRole("navigation", { name: "Platform admin" }).count(), 0);
    await plain.goto("/admin/users");
    await plain.getByText("Page not found").waitFor();

    await logInUI(admin, env.adminEmail, env.adminPassword);
    await admin.getByRole("navigation", { name: "Platform admin" }).getByRole("link", { name: "Users" }).click();
    await admin.getByRole("searchbox").fill(`member-${run}`);
    const row = admin.locator(`li[data-user="${user.email}"]`);
    await row.waitFor();
    await until(async () => (await admin.locator("li[data-user]").count()) === 1, "the search narrows the list to one user");

    await row.getByRole("button", { name: "Disable" }).click();
    await admin.getByRole("alertdialog").getByRole("button", { name: "Disable user" }).click();
    await row.getByText("Disabled").waitFor();
    const refused = await rpc("skypanel.auth.v1.AuthService", "LogIn", { email: user.email, password: pw });
    assert.notEqual(refused.status, 200, "a disabled user cannot log in");

    await row.getByRole("button", { name: "Enable" }).click();
    await admin.getByRole("alertdialog").getByRole("button", { name: "Enable user" }).click();
    await row.getByText("Disabled").waitFor({ state: "detached" });
    await row.getByRole("button", { name: "Make admin" }).click();
    await admin.getByRole("alertdialog").getByRole("button", { name: "Make admin" }).click();
    await row.getByText("Platform admin").waitFor();

    await admin.getByRole("link", { name: "Platform activity" }).click();
    await admin.locator('li[data-event-type="admin.user.platform_admin_granted"]').first().waitFor();
    await admin.getByRole("link", { name: "Organizations" }).click();
    await admin.getByRole("heading", { name: "Organizations" }).waitFor();
  });
});

test("the keyboard alone logs in and switches the theme, with focus always visible", async () => {
  const email = `keys-${run}@example.com`;
  await api.signUp(email, pw, "Kay Board");
  await withContexts(1, async (page) => {
    const focusVisible = () =>
      page.evaluate(() => {
        const el = document.activeElement;
        const cs = el && getComputedStyle(el);
        return !!cs && cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) > 0;
      });
    await page.goto("/login");
    await page.getByLabel("Email").waitFor();
    await page.keyboard.type(email); // the email field has focus on arrival
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Forgot password?");
    assert.ok(await focusVisible(), "the focused link shows an outline");
    await page.keyboard.press("Tab");
    await page.keyboard.type(pw);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Welcome, Kay Board!" }).waitFor();

    // Tab to the account menu, open it, and pick the dark theme.
    await page.locator("body").focus();
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press("Tab");
      if (await page.evaluate(() => document.activeElement?.getAttribute("data-testid") === "user-menu")) break;
    }
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("data-testid")), "user-menu");
    assert.ok(await focusVisible(), "the focused menu button shows an outline");
    await page.keyboard.press("Enter");
    await page.getByRole("menuitemradio", { name: "Dark" }).waitFor();
    for (let i = 0; i < 10; i++) {
      if (await page.evaluate(() => document.activeElement?.textContent === "Dark")) break;
      await page.keyboard.press("ArrowDown");
    }
    await page.keyboard.press("Enter");
    await until(() => page.evaluate(() => document.documentElement.classList.contains("dark")), "the page turns dark");
    assert.equal(await page.evaluate(() => localStorage.getItem("skypanel.theme")), "dark");
  });
});
