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

export default function Login() {
  const params = new URLSearchParams(useSearch());
  const next = params.get("next");
  const [email, setEmail] = useState(params.get("email") ?? "");
  const [password, setPassword] = useState("");
  const form = useApiForm(["email", "password"]);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const res = await form.run(() => auth.logIn({ email: email.trim(), password }));
    // PublicOnly sends the now signed-in user on to `next`.
    if (res?.user && res.tokens) session.signedIn(res.user, res.tokens);
  }

  return (
    <AuthLayout
      title="Log in to SkyPanel"
      subtitle="Welcome back."
      footer={
        <>
          New to SkyPanel?{" "}
          <Link href={withNext("/signup", next)} className="font-medium text-accent hover:underline">
            Create an account
          </Link>
        </>
      }
    >
      <form onSubmit={submit} noValidate className="space-y-4">
        {form.formError && <Banner>{form.formError}</Banner>}
        <Field label="Email" error={form.fields.email}>
          {(p) => <Input {...p} type="email" autoComplete="email" autoFocus value={email} onChange={(e) => setEmail(e.target.value)} />}
        </Field>
        <Field
          label="Password"
          aside={
            <Link href="/forgot-password" className="rounded text-[13px] text-accent hover:underline">
              Forgot password?
            </Link>
          }
          error={form.fields.password}
        >
          {(p) => <Input {...p} type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />}
        </Field>
        <Button type="submit" variant="primary" className="w-full" loading={form.pending}>
          Log in
        </Button>
      </form>
    </AuthLayout>
  );
}
