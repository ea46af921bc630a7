// API tokens: create (the secret is shown once), list and revoke.
import { createClient } from "@connectrpc/connect";
import { useQuery } from "@connectrpc/connect-query";
import { KeyRound, Plus, ShieldAlert } from "lucide-react";
import { useState } from "react";
import { CopyButton } from "../../components/copy";
import { Confirm, Dialog } from "../../components/dialog";
import { RoleSelect, Select } from "../../components/select";
import { toast } from "../../components/toast";
import { Badge, Banner, Button, Card, EmptyState, ErrorState, Field, Input, ListRow, PageHeader, SkeletonRows } from "../../components/ui";
import { APITokenService, type APIToken } from "../../gen/skypanel/apitoken/v1/apitoken_pb";
import { Role } from "../../gen/skypanel/organization/v1/organization_pb";
import { invalidate, transport } from "../../lib/api";
import { formatDate, formatDateTime, formatRelative, toDate } from "../../lib/format";
import { useApiForm } from "../../lib/forms";
import { useOrg } from "../../lib/org";
import { can, roleLabel } from "../../lib/roles";

const tokens = createClient(APITokenService, transport);

const expiryOptions = [
  { value: "7", label: "7 days" },
  { value: "30", label: "30 days" },
  { value: "90", label: "90 days" },
  { value: "365", label: "1 year" },
  { value: "0", label: "Never" },
];

function CreateTokenDialog({ open, onOpenChange }: { open: boolean; onOpenChange: (o: boolean) => void }) {
  const org = useOrg();
  const maxRole = org.role >= Role.ADMIN ? Role.ADMIN : org.role;
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>(Role.MEMBER);
  const [ttl, setTtl] = useState("30");
  const [secret, setSecret] = useState("");
  const form = useApiForm(["name", "role", "ttl_days"]);

  function close(o: boolean) {
    onOpenChange(o);
    if (!o) {
      setName("");
      setRole(Role.MEMBER);
      setTtl("30");
      setSecret("");
      form.reset();
    }
  }

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const res = await form.run(() => tokens.createAPIToken({ organizationId: org.id, name: name.trim(), role, ttlDays: Number(ttl) }));
    if (!res) return;
    await invalidate(APITokenService.method.listAPITokens);
    setSecret(res.secret);
    toast.success(`Token “${res.token?.name ?? name}” created`);
  }

  const example = `curl ${window.location.origin}/skypanel.organization.v1.OrganizationService/GetOrganization \\
  -H 'Content-Type: application/json' \\
  -H "Authorization: Bearer $SKYPANEL_TOKEN" \\
  -d '{"organizationId": "${org.id}"}'`;
  return (
    <Dialog
      open={open}
      onOpenChange={close}
      wide={!!secret}
      title={secret ? "Copy your new token" : "Create an API token"}
      description={secret ? undefined : "Scripts and CI use it to call the API as you, within this organization."}
    >
      {secret ? (
        <div className="space-y-4">
          <Banner tone="warning">This is the only time the token is shown. Store it somewhere safe, such as your CI's secrets.</Banner>
          <div className="flex flex-col gap-2 sm:flex-row">
            <Input readOnly value={secret} aria-label="API token" className="font-mono text-[13px]" onFocus={(e) => e.currentTarget.select()} data-testid="token-secret" />
            <CopyButton text={secret} />
          </div>
          <div>
            <p className="mb-1.5 text-[13px] text-muted">
              Try it: with the token in <code className="font-mono">$SKYPANEL_TOKEN</code>, this prints the organization.
            </p>
            <pre className="rounded-md bg-subtle p-3 font-mono text-xs leading-relaxed break-all whitespace-pre-wrap" data-testid="token-example">
              {example}
            </pre>
          </div>
          <div className="flex justify-end">
            <Button variant="primary" onClick={() => close(false)}>
              Done
            </Button>
          </div>
        </div>
      ) : (
        <form onSubmit={submit} noValidate className="space-y-4">
          {form.formError && <Banner>{form.formError}</Banner>}
          <Field label="Name" hint="What uses it, e.g. “GitHub Actions deploy”." error={form.fields.name}>
            {(p) => <Input {...p} autoFocus value={name} onChange={(e) => setName(e.target.value)} />}
          </Field>
          <Field label="Role" hint="The most it may do. It never exceeds your own role." error={form.fields.role}>
            {(p) => <RoleSelect {...p} value={role} onChange={setRole} max={maxRole} />}
          </Field>
          <Field label="Expires after" error={form.fields.ttl_days}>
            {(p) => <Select {...p} value={ttl} onValueChange={setTtl} options={expiryOptions} />}
          </Field>
          <div className="flex flex-col-reverse gap-2 pt-1 sm:flex-row sm:justify-end">
            <Button onClick={() => close(false)}>Cancel</Button>
            <Button type="submit" variant="primary" loading={form.pending}>
              Create token
            </Button>
          </div>
        </form>
      )}
    </Dialog>
  );
}

function expiry(t: APIToken) {
  const d = toDate(t.expiresAt);
  if (!d) return <span className="text-muted">Never expires</span>;
  const soon = d.getTime() - Date.now() < 7 * 86400_000;
  return <span className={soon ? "text-warning" : undefined}>Expires {formatRelative(t.expiresAt)}</span>;
}

function TokenRow({ t }: { t: APIToken }) {
  const org = useOrg();
  return (
    <ListRow
      data-token={t.name}
      lead={
        <div className="grid size-8 place-items-center rounded-full bg-subtle text-muted">
          <KeyRound className="size-4" aria-hidden />
        </div>
      }
      title={
        <>
          <span className="truncate">{t.name}</span>
          <Badge>{roleLabel[t.role]}</Badge>
          <code className="rounded bg-subtle px-1.5 py-0.5 font-mono text-xs font-normal text-muted">{t.prefix}…</code>
        </>
      }
      details={
        <span className="flex flex-wrap gap-x-2">
          <span title={formatDateTime(t.createdAt)}>
            Created {formatDate(t.createdAt)} by {t.createdByEmail || "—"}
          </span>
          <span aria-hidden>·</span>
          {expiry(t)}
          <span aria-hidden>·</span>
          <span title={t.lastUsedAt ? formatDateTime(t.lastUsedAt) : undefined}>{t.lastUsedAt ? `Used ${formatRelative(t.lastUsedAt)}` : "Never used"}</span>
        </span>
      }
      controls={
        <Confirm
          trigger={<Button size="sm">Revoke</Button>}
          title={`Revoke “${t.name}”?`}
          description="Anything using this token is refused from now on. This can't be undone; create a new token instead."
          confirmLabel="Revoke token"
          onConfirm={async () => {
            try {
              await tokens.revokeAPIToken({ organizationId: org.id, tokenId: t.id });
              await invalidate(APITokenService.method.listAPITokens);
              toast.success(`Token “${t.name}” revoked`);
            } catch (err) {
              toast.error("Couldn't revoke the token", err);
              throw err;
            }
          }}
        />
      }
    />
  );
}

export default function Tokens() {
  const org = useOrg();
  const allowed = can.manageTokens(org.role);
  const [creating, setCreating] = useState(false);
  const q = useQuery(APITokenService.method.listAPITokens, { organizationId: org.id }, { enabled: allowed });

  if (!allowed) {
    return (
      <>
        <PageHeader title="API tokens" />
        <Card>
          <EmptyState icon={<ShieldAlert className="size-5" aria-hidden />} title="Only admins and the owner manage API tokens">
            Ask an admin of {org.name} for a token, or for the admin role.
          </EmptyState>
        </Card>
      </>
    );
  }

  const list = q.data?.tokens ?? [];
  const create = (
    <Button variant="primary" icon={<Plus className="size-4" aria-hidden />} onClick={() => setCreating(true)}>
      Create token
    </Button>
  );
  return (
    <>
      <PageHeader title="API tokens" description="Tokens let scripts and CI call the API as you, limited to this organization and a role." actions={create} />
      <Card>
        {q.isPending ? (
          <SkeletonRows label="Loading tokens" />
        ) : q.isError ? (
          <ErrorState error={q.error} onRetry={() => void q.refetch()} />
        ) : list.length === 0 ? (
          <EmptyState icon={<KeyRound className="size-5" aria-hidden />} title="No API tokens yet" action={create}>
            Create one for each script or pipeline, so you can revoke one without breaking the others.
          </EmptyState>
        ) : (
          <ul className="divide-y divide-line" aria-label="API tokens">
            {list.map((t) => (
              <TokenRow key={t.id} t={t} />
            ))}
          </ul>
        )}
      </Card>
      <CreateTokenDialog open={creating} onOpenChange={setCreating} />
    </>
  );
}
