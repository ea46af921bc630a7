import { createClient } from "@connectrpc/connect";
import { Monitor, Moon, Sun } from "lucide-react";
import { useState } from "react";
import { toast } from "../components/toast";
import { Badge, Banner, Button, Card, CardHeader, Field, Input, PageHeader, cx } from "../components/ui";
import { AuthService } from "../gen/skypanel/auth/v1/auth_pb";
import { transport, useUser } from "../lib/api";
import { formatDate } from "../lib/format";
import { useApiForm } from "../lib/forms";
import { setTheme, useTheme, type ThemeChoice } from "../lib/theme";

const auth = createClient(AuthService, transport);

function ChangePassword() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [confirm, setConfirm] = useState("");
  const form = useApiForm(["current_password", "new_password"]);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    if (next !== confirm) {
      form.setFieldError("confirm", "The two passwords differ.");
      return;
    }
    const res = await form.run(() => auth.changePassword({ currentPassword: current, newPassword: next }));
    if (!res) return;
    setCurrent("");
    setNext("");
    setConfirm("");
    toast.success("Password changed", "Your other sessions were signed out.");
  }

  return (
    <Card>
      <CardHeader title="Password" description="Changing it signs you out on every other device." />
      <form onSubmit={submit} noValidate className="max-w-md space-y-4 p-4 sm:p-5">
        {form.formError && <Banner>{form.formError}</Banner>}
        <Field label="Current password" error={form.fields.current_password}>
          {(p) => <Input {...p} type="password" autoComplete="current-password" value={current} onChange={(e) => setCurrent(e.target.value)} />}
        </Field>
        <Field label="New password" hint="At least 10 characters." error={form.fields.new_password}>
          {(p) => <Input {...p} type="password" autoComplete="new-password" value={next} onChange={(e) => setNext(e.target.value)} />}
        </Field>
        <Field label="Repeat the new password" error={form.fields.confirm}>
          {(p) => <Input {...p} type="password" autoComplete="new-password" value={confirm} onChange={(e) => setConfirm(e.target.value)} />}
        </Field>
        <Button type="submit" variant="primary" loading={form.pending}>
          Change password
        </Button>
      </form>
    </Card>
  );
}

const themeOptions: { value: ThemeChoice; label: string; Icon: typeof Sun }[] = [
  { value: "light", label: "Light", Icon: Sun },
  { value: "dark", label: "Dark", Icon: Moon },
  { value: "system", label: "System", Icon: Monitor },
];

function Appearance() {
  const theme = useTheme();
  return (
    <Card>
      <CardHeader title="Appearance" description="Stored in this browser." />
      <div role="group" aria-label="Theme" className="grid grid-cols-3 gap-2 p-4 sm:max-w-md sm:p-5">
        {themeOptions.map(({ value, label, Icon }) => (
          <button
            key={value}
            type="button"
            aria-pressed={theme === value}
            onClick={() => setTheme(value)}
            className={cx(
              "flex flex-col items-center gap-1.5 rounded-lg border px-3 py-3 text-sm",
              theme === value ? "border-accent bg-accent-soft font-medium text-accent" : "border-line hover:bg-subtle",
            )}
          >
            <Icon className="size-5" aria-hidden />
            {label}
          </button>
        ))}
      </div>
    </Card>
  );
}

export default function Profile() {
  const user = useUser();
  return (
    <>
      <PageHeader title="Profile" description="Your account on this SkyPanel." />
      <div className="space-y-6">
        <Card>
          <CardHeader title="Account" />
          <dl className="grid gap-4 p-4 text-sm sm:grid-cols-3 sm:p-5">
            <div>
              <dt className="text-muted">Name</dt>
              <dd className="mt-0.5 font-medium">{user.displayName || "—"}</dd>
            </div>
            <div className="min-w-0">
              <dt className="text-muted">Email</dt>
              <dd className="mt-0.5 truncate font-medium">{user.email}</dd>
            </div>
            <div>
              <dt className="text-muted">Member since</dt>
              <dd className="mt-0.5 font-medium">
                {formatDate(user.createdAt)} {user.platformAdmin && <Badge tone="accent">Platform admin</Badge>}
              </dd>
            </div>
          </dl>
        </Card>
        <ChangePassword />
        <Appearance />
      </div>
    </>
  );
}
