// The newcomer's path through the dashboard, in one browser per person, against the real
// control plane, Postgres and SMTP server started by run.sh:
// sign up → create an organization → invite a second user → the mail arrives → they sign up
// through the link and accept → see the organization → as a viewer cannot invite (UI and
// API) → the owner creates an API token that works with curl → the activity page, open all
// along, shows these events live without a reload.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { env, launch, linkIn, newContext, rpc, sh, shot, stepper, waitForMail } from "./lib.mjs";

const run = Date.now().toString(36);
const owner = { name: "Ada Lovelace", email: `ada-${run}@example.com`, password: "analytical-engine-1843" };
const viewer = { name: "Grace Hopper", email: `grace-${run}@example.com`, password: "cobol-compiler-1959" };
const orgName = "Globex Systems";

let browser;
const contexts = [];
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

async function context(opts) {
  const ctx = await newContext(browser, opts);
  contexts.push(ctx);
  return ctx;
}

/** expectEvent waits for an event row on the activity page; live ones came by the stream. */
async function expectEvent(page, type, text, { live = true } = {}) {
  const row = page.locator(`li[data-event-type="${type}"]${live ? "[data-live]" : ""}`).filter({ hasText: text }).first();
  await row.waitFor({ state: "visible", timeout: 15_000 });
}

test("a newcomer signs up, builds a team and automates it", async (t) => {
  const step = stepper(t, () => contexts);
  const ownerCtx = await context();
  const page = await ownerCtx.newPage();
  let activity; // the owner's second tab
  let orgSlug = "";
  let inviteLink = "";
  let viewerPage;
  let secret = "";
  let curlExample = "";

  await step("the sign-up form shows the server's field errors next to the fields", async () => {
    await page.goto("/");
    await page.waitForURL(/\/login/);
    await shot(page, "login-light");
    await page.getByRole("link", { name: "Create an account" }).click();
    await page.getByLabel("Your name").fill(owner.name);
    await page.getByLabel("Email").fill("not-an-email");
    await page.getByLabel("Password").fill("short");
    await page.getByRole("button", { name: "Create account" }).click();
    const emailError = page.locator("[data-field-error]").first();
    await emailError.waitFor();
    // Each message sits under its own field and is announced with it.
    const pwd = page.getByLabel("Password");
    const describedBy = await pwd.getAttribute("aria-describedby");
    assert.ok(describedBy, "the password field is described by its error");
    assert.match(await page.locator(`[id="${describedBy}"]`).innerText(), /at least 10 characters/);
    assert.match(await page.locator(`[id="${await page.getByLabel("Email").getAttribute("aria-describedby")}"]`).innerText(), /email/i);
    await shot(page, "signup-errors-light");
  });

  await step("the owner signs up and is welcomed with the first step", async () => {
    await page.getByLabel("Email").fill(owner.email);
    await page.getByLabel("Password").fill(owner.password);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByRole("heading", { name: `Welcome, ${owner.name}!` }).waitFor();
    assert.ok(await page.evaluate(() => localStorage.getItem("skypanel.refresh")), "the refresh token is kept for reloads");
    await shot(page, "welcome-light");
  });

  await step("the owner creates an organization", async () => {
    await page.getByLabel("Organization name").fill(orgName);
    await page.getByRole("button", { name: "Create organization" }).click();
    await page.waitForURL(/\/o\/[a-z0-9-]+$/);
    orgSlug = new URL(page.url()).pathname.split("/")[2];
    await page.getByRole("heading", { name: orgName, level: 1 }).waitFor();
    await page.getByText("Get started").waitFor();
    await shot(page, "getting-started-light");
  });

  await step("a reload keeps the owner signed in", async () => {
    await page.reload();
    await page.getByRole("heading", { name: orgName, level: 1 }).waitFor();
  });

  await step("the owner opens the activity page in a second tab; it goes live", async () => {
    activity = await ownerCtx.newPage();
    await activity.goto(`/o/${orgSlug}/activity`);
    await activity.locator('[data-live="live"]').waitFor();
    await expectEvent(activity, "organization.created", orgName, { live: false });
    // Proves later that the page was never reloaded.
    await activity.evaluate(() => (window.__sameDocument = true));
  });

  await step("the owner invites a second user as a viewer", async () => {
    // Background tabs get no animation frames; the activity tab keeps working regardless.
    await page.bringToFront();
    await page.getByRole("link", { name: "Members" }).click();
    await page.getByTestId("invite-button").click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Email address").fill(viewer.email);
    await dialog.getByLabel("Role").click();
    await page.getByRole("option", { name: /^Viewer/ }).click();
    await dialog.getByRole("button", { name: "Send invitation" }).click();
    await page.locator("[data-toast]").filter({ hasText: `Invitation sent to ${viewer.email}` }).waitFor();
    await page.locator(`li[data-invitation="${viewer.email}"]`).filter({ hasText: "Pending" }).waitFor();
  });

  await step("the invitation email arrives with a link to the dashboard", async () => {
    const mail = await waitForMail(viewer.email);
    inviteLink = linkIn(mail, /(https?:\/\/\S+\/invitations\/accept\?token=spinv_[A-Za-z0-9_-]+)/);
    assert.ok(inviteLink.startsWith(env.base), `${inviteLink} points at this server`);
  });

  await step("the second user opens the link, signs up through it and accepts", async () => {
    const viewerCtx = await context();
    viewerPage = await viewerCtx.newPage();
    await viewerPage.goto(inviteLink);
    await viewerPage.getByRole("heading", { name: `Join ${orgName}` }).waitFor();
    await viewerPage.getByText("Viewer", { exact: true }).waitFor();
    await shot(viewerPage, "invitation-light");
    await viewerPage.getByRole("link", { name: "Sign up to accept" }).click();
    assert.equal(await viewerPage.getByLabel("Email").inputValue(), viewer.email);
    await viewerPage.getByLabel("Your name").fill(viewer.name);
    await viewerPage.getByLabel("Password").fill(viewer.password);
    await viewerPage.getByRole("button", { name: "Create account" }).click();
    await viewerPage.getByRole("button", { name: "Accept and join" }).click();
    await viewerPage.waitForURL(new RegExp(`/o/${orgSlug}$`));
  });

  await step("the second user sees the organization, as a viewer", async () => {
    await viewerPage.getByRole("heading", { name: orgName, level: 1 }).waitFor();
    await viewerPage.getByTestId("org-switcher").filter({ hasText: orgName }).filter({ hasText: "Viewer" }).waitFor();
    // A viewer sees no API tokens page in the navigation.
    assert.equal(await viewerPage.getByRole("link", { name: "API tokens" }).count(), 0);
  });

  await step("as a viewer they cannot invite: the UI disables it and the API refuses it", async () => {
    await viewerPage.getByRole("link", { name: "Members" }).click();
    await viewerPage.locator(`li[data-member="${owner.email}"]`).waitFor();
    assert.equal(await viewerPage.getByTestId("invite-button").isDisabled(), true, "the invite button is disabled");
    await viewerPage.getByText("Only admins and the owner can invite people").waitFor();
    // No role selects or member actions either.
    assert.equal(await viewerPage.getByRole("combobox", { name: /Role of/ }).count(), 0);

    const login = await rpc("skypanel.auth.v1.AuthService", "LogIn", { email: viewer.email, password: viewer.password });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    const orgs = await rpc("skypanel.organization.v1.OrganizationService", "ListOrganizations", {}, login.body.tokens.accessToken);
    const orgId = orgs.body.organizations.find((o) => o.slug === orgSlug).id;
    const res = await rpc(
      "skypanel.organization.v1.InvitationService",
      "CreateInvitation",
      { organizationId: orgId, email: "someone@example.com", role: "ROLE_VIEWER" },
      login.body.tokens.accessToken,
    );
    assert.equal(res.body.code, "permission_denied", JSON.stringify(res.body));
  });

  await step("the owner creates an API token; the secret is shown once with a copy button", async () => {
    await page.getByRole("link", { name: "API tokens" }).click();
    await page.getByText("No API tokens yet").waitFor();
    await page.getByRole("button", { name: "Create token" }).first().click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Name").fill("ci");
    await dialog.getByRole("button", { name: "Create token" }).click();
    const secretInput = dialog.getByTestId("token-secret");
    await secretInput.waitFor();
    secret = await secretInput.inputValue();
    assert.match(secret, /^spak_/);
    await dialog.getByRole("button", { name: "Copy" }).click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret, "the copy button copies the secret");
    curlExample = await dialog.getByTestId("token-example").innerText();
    await shot(page, "token-created-light");
    await dialog.getByRole("button", { name: "Done" }).click();
    await page.locator('li[data-token="ci"]').waitFor();
    assert.equal(await page.getByText(secret).count(), 0, "the secret is not shown again");
  });

  await step("the API token works with curl, as the dialog shows", async () => {
    const out = await sh(`curl -sS --fail-with-body ${curlExample.replace(/^curl /, "").replace(/\\\n/g, " ")}`, { SKYPANEL_TOKEN: secret });
    const body = JSON.parse(out);
    assert.equal(body.organization.name, orgName);
    assert.equal(body.organization.slug, orgSlug);
  });

  await step("the activity page showed every step live, without a reload", async () => {
    await expectEvent(activity, "invitation.created", viewer.email);
    await expectEvent(activity, "invitation.accepted", viewer.email);
    await expectEvent(activity, "organization.member.joined", viewer.email);
    await expectEvent(activity, "apitoken.created", "ci");
    assert.equal(await activity.evaluate(() => window.__sameDocument), true, "the activity page was not reloaded");
  });

  await step("the viewer logs out", async () => {
    await viewerPage.getByTestId("user-menu").click();
    await viewerPage.getByRole("menuitem", { name: "Log out" }).click();
    await viewerPage.waitForURL(/\/login$/);
    assert.equal(await viewerPage.evaluate(() => localStorage.getItem("skypanel.refresh")), null);
  });
});
