import { createClient } from "@connectrpc/connect";
import { MailCheck } from "lucide-react";
import { useState } from "react";
import { Link } from "wouter";
import { AuthLayout } from "../../components/auth-layout";
import { Banner, Button, Field, Input } from "../../components/ui";
import { AuthService } from "../../gen/skypanel/auth/v1/auth_pb";
import { transport } from "../../lib/api";
import { useApiForm } from "../../lib/forms";

const auth = createClient(AuthService, transport);

export default function ForgotPassword() {
  const [email, setEmail] = useState("");
  const [sent, setSent] = useState(false);
  const form = useApiForm(["email"]);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const res = await form.run(() => auth.requestPasswordReset({ email: email.trim() }));
    if (res) setSent(true);
  }

  const back = (
    <Link href="/login" className="font-medium text-accent hover:underline">
      Back to log in
    </Link>
  );

  if (sent) {
    return (
      <AuthLayout title="Check your email" footer={back}>
        <div className="flex gap-3">
          <MailCheck className="mt-0.5 size-5 shrink-0 text-success" aria-hidden />
          <p className="text-sm text-muted" role="status">
            If an account uses <strong className="text-fg">{email.trim()}</strong>, we've sent it a link to choose a new password. The link works once,
            for an hour.
          </p>
        </div>
      </AuthLayout>
    );
  }
  return (
    <AuthLayout title="Reset your password" subtitle="We'll email you a link to choose a new one." footer={back}>
      <form onSubmit={submit} noValidate className="space-y-4">
        {form.formError && <Banner>{form.formError}</Banner>}
        <Field label="Email" error={form.fields.email}>
          {(p) => <Input {...p} type="email" autoComplete="email" autoFocus value={email} onChange={(e) => setEmail(e.target.value)} />}
        </Field>
        <Button type="submit" variant="primary" className="w-full" loading={form.pending}>
          Send reset link
        </Button>
      </form>
    </AuthLayout>
  );
}
