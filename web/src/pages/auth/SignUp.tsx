import { createClient } from "@connectrpc/connect";
import { useState } from "react";
import { Link, useSearch } from "wouter";
import { AuthLayout } from "../../components/auth-layout";
import { Banner, Button, Field, Input } from "../../components/ui";
import { AuthService } from "../../gen/skypanel/auth/v1/auth_pb";
import { session, transport } from "../../lib/api";
import { useApiForm } from "../../lib/forms";
import { withNext } from "../../lib/nav";

const auth = createClient(AuthService, transport);

export default function SignUp() {
  const params = new URLSearchParams(useSearch());
  const next = params.get("next");
  const invitedEmail = params.get("email") ?? "";
  const [name, setName] = useState("");
  const [email, setEmail] = useState(invitedEmail);
  const [password, setPassword] = useState("");
  const form = useApiForm(["email", "password", "display_name"]);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const res = await form.run(() => auth.signUp({ email: email.trim(), password, displayName: name.trim() }));
    if (res?.user && res.tokens) session.signedIn(res.user, res.tokens);
  }

  return (
    <AuthLayout
      title="Create your SkyPanel account"
      subtitle={next?.startsWith("/invitations/") ? "Sign up to accept your invitation." : "Deploy and run apps with your team."}
      footer={
        <>
          Already have an account?{" "}
          <Link href={withNext("/login", next)} className="font-medium text-accent hover:underline">
            Log in
          </Link>
        </>
      }
    >
      <form onSubmit={submit} noValidate className="space-y-4">
        {form.formError && <Banner>{form.formError}</Banner>}
        <Field label="Your name" hint="Optional. Shown to people in your organizations." error={form.fields.display_name}>
          {(p) => <Input {...p} autoComplete="name" autoFocus={!invitedEmail} value={name} onChange={(e) => setName(e.target.value)} />}
        </Field>
        <Field label="Email" error={form.fields.email}>
          {(p) => <Input {...p} type="email" autoComplete="email" value={email} onChange={(e) => setEmail(e.target.value)} />}
        </Field>
        <Field label="Password" hint="At least 10 characters." error={form.fields.password}>
          {(p) => (
            <Input {...p} type="password" autoComplete="new-password" autoFocus={!!invitedEmail} value={password} onChange={(e) => setPassword(e.target.value)} />
          )}
        </Field>
        <Button type="submit" variant="primary" className="w-full" loading={form.pending}>
          Create account
        </Button>
      </form>
    </AuthLayout>
  );
}
