// A tour of the main pages in light and dark mode at desktop width and on a 375 px phone.
// It checks that each renders its content; with UPDATE_SCREENSHOTS=1 it also writes the
// pictures in docs/screenshots/ that the README shows.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { api, launch, linkIn, logInUI, newContext, screenshotAll, shot, until, waitForMail } from "./lib.mjs";

const pw = "screenshots-password-1";
let browser;
let org;
let inviteLink;
const people = {};
const contexts = [];

before(async () => {
  browser = await launch();
  // A team with some history, made through the API.
  people.ada = await api.signUp("ada@acme.example", pw, "Ada Lovelace");
  org = await api.createOrg(people.ada, "Acme Robotics");
  people.grace = await api.signUp("grace@acme.example", pw, "Grace Hopper");
  people.linus = await api.signUp("linus@acme.example", pw, "Linus Torvalds");
  people.margaret = await api.signUp("margaret@acme.example", pw, "Margaret Hamilton");
  await api.join(people.ada, org, people.grace, "ROLE_ADMIN");
  await api.join(people.ada, org, people.linus, "ROLE_MEMBER");
  await api.join(people.grace, org, people.margaret, "ROLE_VIEWER");
  await api.invite(people.grace, org, "alan@acme.example", "ROLE_MEMBER");
  inviteLink = linkIn(await waitForMail("alan@acme.example"), /(https?:\/\/\S+\/invitations\/accept\?token=spinv_[A-Za-z0-9_-]+)/);
  await api.createToken(people.ada, org, "GitHub Actions deploy", "ROLE_MEMBER", 90);
  await api.createToken(people.grace, org, "Nightly backup", "ROLE_VIEWER", 0);
});
after(async () => {
  await browser?.close();
});

for (const scheme of ["light", "dark"]) {
  test(`the main pages render in ${scheme} mode`, async (t) => {
    const ctx = await newContext(browser, { colorScheme: scheme });
    contexts.push(ctx);
    const page = await ctx.newPage();
    const base = `/o/${org.slug}`;
    const visit = async (name, path, ready) => {
      await t.test(name, async () => {
        try {
          if (path) await page.goto(path);
          await ready();
          await shot(page, `${name}-${scheme}`);
        } catch (err) {
          await screenshotAll([ctx], `${name}-${scheme}`);
          throw err;
        }
      });
    };

    await visit("login", "/login", () => page.getByRole("heading", { name: "Log in to SkyPanel" }).waitFor());
    await visit("invitation", inviteLink, () => page.getByRole("heading", { name: "Join Acme Robotics" }).waitFor());
    await t.test("log in", () => logInUI(page, people.ada.email, pw));
    await visit("overview", base, () => page.getByText("Recent activity").waitFor().then(() => page.locator("li[data-event-type]").first().waitFor()));
    await visit("members", `${base}/members`, () => page.locator('li[data-invitation="alan@acme.example"]').waitFor());
    await visit("tokens", `${base}/tokens`, () => page.locator('li[data-token="Nightly backup"]').waitFor());
    await visit("token-created", null, async () => {
      await page.getByRole("button", { name: "Create token" }).first().click();
      await page.getByRole("dialog").getByLabel("Name").fill(scheme === "light" ? "Staging deploys" : "Release pipeline");
      await page.getByRole("dialog").getByRole("button", { name: "Create token" }).click();
      await page.getByTestId("token-secret").waitFor();
    });
    await t.test("close the dialog", () => page.keyboard.press("Escape"));
    await visit("activity", `${base}/activity`, async () => {
      await page.locator('[data-live="live"]').waitFor();
      await page.locator('li[data-event-type="apitoken.created"]').first().waitFor();
    });
    await visit("settings", `${base}/settings`, () => page.getByText("Danger zone").waitFor());
    await visit("profile", "/profile", () => page.getByRole("heading", { name: "Password" }).waitFor());
    await t.test("admins only: the admin area is not there for Ada", async () => {
      assert.equal(await page.getByRole("navigation", { name: "Platform admin" }).count(), 0);
      await page.goto("/admin/users");
      await page.getByText("Page not found").waitFor();
    });
    await ctx.close();
  });
}

test("the platform admin's user list renders in both modes", async (t) => {
  for (const scheme of ["light", "dark"]) {
    await t.test(scheme, async () => {
      const ctx = await newContext(browser, { colorScheme: scheme });
      const page = await ctx.newPage();
      try {
        await logInUI(page, process.env.ADMIN_EMAIL, process.env.ADMIN_PASSWORD);
        await page.getByRole("link", { name: "Users" }).click();
        // Other tests' users are here too: show Acme's, which also shows the search.
        await page.getByRole("searchbox").fill("acme");
        await until(async () => (await page.locator("li[data-user]").count()) === 4, "the search shows Acme's four people");
        await shot(page, `admin-users-${scheme}`);
      } catch (err) {
        await screenshotAll([ctx], `admin-users-${scheme}`);
        throw err;
      } finally {
        await ctx.close();
      }
    });
  }
});

test("a 375 px phone gets a drawer for navigation", async (t) => {
  for (const scheme of ["light", "dark"]) {
    await t.test(scheme, async () => {
      const ctx = await newContext(browser, { width: 375, height: 812, colorScheme: scheme });
      const page = await ctx.newPage();
      try {
        await logInUI(page, people.grace.email, pw);
        await page.goto(`/o/${org.slug}/members`);
        await page.locator('li[data-member="ada@acme.example"]').waitFor();
        // Nothing may stick out sideways.
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
        await shot(page, `members-mobile-${scheme}`);
        for (const [path, ready] of [
          [`/o/${org.slug}`, "Recent activity"],
          [`/o/${org.slug}/tokens`, "Nightly backup"],
          [`/o/${org.slug}/activity`, "Live"],
          [`/o/${org.slug}/settings`, "Danger zone"],
          ["/profile", "Appearance"],
        ]) {
          await page.goto(path);
          await page.getByText(ready, { exact: true }).first().waitFor();
          const wider = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
          assert.ok(wider <= 0, `${path} is ${wider}px wider than the screen`);
        }
        await page.goto(`/o/${org.slug}/members`);
        await page.getByRole("button", { name: "Open navigation" }).click();
        await page.getByRole("dialog").getByRole("link", { name: "Activity" }).click();
        await page.waitForURL(/\/activity$/);
        await page.locator("li[data-event-type]").first().waitFor();
        assert.equal(await page.getByRole("dialog").count(), 0, "the drawer closes after navigating");
        await page.getByRole("button", { name: "Open navigation" }).click();
        await page.getByRole("dialog").getByTestId("org-switcher").waitFor();
        await shot(page, `navigation-mobile-${scheme}`);
      } catch (err) {
        await screenshotAll([ctx], `mobile-${scheme}`);
        throw err;
      } finally {
        await ctx.close();
      }
    });
  }
});
