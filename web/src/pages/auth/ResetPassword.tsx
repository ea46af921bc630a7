import { createClient } from "@connectrpc/connect";
import { useState } from "react";
import { Link, useLocation, useSearch } from "wouter";
import { AuthLayout } from "../../components/auth-layout";
import { toast } from "../../components/toast";
import { Banner, Button, Field, Input } from "../../components/ui";
import { AuthService } from "../../gen/skypanel/auth/v1/auth_pb";
import { session, transport } from "../../lib/api";
import { useApiForm } from "../../lib/forms";

const auth = createClient(AuthService, transport);

export default function ResetPassword() {
  const token = new URLSearchParams(useSearch()).get("token") ?? "";
  const [, navigate] = useLocation();
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const form = useApiForm(["new_password"]);

  if (!token) {
    return (
      <AuthLayout title="This reset link is incomplete">
        <p className="text-sm text-muted">
          Open the link from the email again, or{" "}
          <Link href="/forgot-password" className="font-medium text-accent hover:underline">
            ask for a new one
          </Link>
          .
        </p>
      </AuthLayout>
    );
  }

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    if (password !== confirm) {
      form.setFieldError("confirm", "The two passwords differ.");
      return;
    }
    const res = await form.run(() => auth.resetPassword({ token, newPassword: password }));
    if (!res) return;
    // A reset ends every session, this browser's too.
    if (session.getState().status === "signedIn") await session.logOut();
    toast.success("Password changed", "Log in with your new password.");
    navigate("/login", { replace: true });
  }

  return (
    <AuthLayout
      title="Choose a new password"
      subtitle="This signs you out everywhere."
      footer={
        <Link href="/forgot-password" className="font-medium text-accent hover:underline">
          Need a new link?
        </Link>
      }
    >
      <form onSubmit={submit} noValidate className="space-y-4">
        {form.formError && (
          <Banner>
            {form.formError}{" "}
            {/expired|invalid|used|not found/i.test(form.formError) && (
              <Link href="/forgot-password" className="font-medium underline">
                Ask for a new link.
              </Link>
            )}
          </Banner>
        )}
        <Field label="New password" hint="At least 10 characters." error={form.fields.new_password}>
          {(p) => <Input {...p} type="password" autoComplete="new-password" autoFocus value={password} onChange={(e) => setPassword(e.target.value)} />}
        </Field>
        <Field label="Repeat the new password" error={form.fields.confirm}>
          {(p) => <Input {...p} type="password" autoComplete="new-password" value={confirm} onChange={(e) => setConfirm(e.target.value)} />}
        </Field>
        <Button type="submit" variant="primary" className="w-full" loading={form.pending}>
          Set new password
        </Button>
      </form>
    </AuthLayout>
  );
}
