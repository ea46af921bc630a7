// Organization settings: rename; and the danger zone: transfer, delete, leave.
import { createClient } from "@connectrpc/connect";
import { useQuery } from "@connectrpc/connect-query";
import { useState } from "react";
import { useLocation } from "wouter";
import { Confirm } from "../../components/dialog";
import { Select } from "../../components/select";
import { toast } from "../../components/toast";
import { Banner, Button, Card, CardHeader, Field, Input, PageHeader } from "../../components/ui";
import { OrganizationService, Role } from "../../gen/skypanel/organization/v1/organization_pb";
import { invalidate, transport, useUser } from "../../lib/api";
import { formatDateTime } from "../../lib/format";
import { useApiForm } from "../../lib/forms";
import { useOrg } from "../../lib/org";
import { can, roleLabel } from "../../lib/roles";
import { CopyButton } from "../../components/copy";

const orgs = createClient(OrganizationService, transport);

function General() {
  const org = useOrg();
  const [name, setName] = useState(org.name);
  const form = useApiForm(["name"]);
  const allowed = can.rename(org.role);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const res = await form.run(() => orgs.renameOrganization({ organizationId: org.id, name: name.trim() }));
    if (!res) return;
    await invalidate(OrganizationService.method.listOrganizations);
    toast.success("Organization renamed", `It's called ${res.organization?.name ?? name.trim()} now.`);
  }

  return (
    <Card>
      <CardHeader title="General" description={allowed ? undefined : "Only admins and the owner can change these."} />
      <form onSubmit={submit} noValidate className="space-y-4 p-4 sm:p-5">
        {form.formError && <Banner>{form.formError}</Banner>}
        <div className="grid gap-4 sm:grid-cols-2">
          <Field label="Name" error={form.fields.name}>
            {(p) => <Input {...p} value={name} disabled={!allowed} onChange={(e) => setName(e.target.value)} />}
          </Field>
          <Field label="Short name" hint="Fixed when the organization was created.">
            {(p) => <Input {...p} value={org.slug} readOnly disabled className="font-mono" />}
          </Field>
        </div>
        <div className="flex flex-wrap items-center justify-between gap-3">
          <div className="flex min-w-0 items-center gap-2 text-[13px] text-muted">
            <span className="truncate">
              ID <code className="font-mono">{org.id}</code>
            </span>
            <CopyButton text={org.id} label="Copy ID" />
          </div>
          {allowed && (
            <Button type="submit" variant="primary" loading={form.pending} disabled={name.trim() === org.name}>
              Save
            </Button>
          )}
        </div>
        <p className="text-xs text-muted">Created {formatDateTime(org.createdAt)}.</p>
      </form>
    </Card>
  );
}

function Transfer() {
  const org = useOrg();
  const me = useUser();
  const [, navigate] = useLocation();
  const [to, setTo] = useState("");
  const members = useQuery(OrganizationService.method.listMembers, { organizationId: org.id });
  const others = (members.data?.members ?? []).filter((m) => m.userId !== me.id);
  const target = others.find((m) => m.userId === to);
  return (
    <div className="flex flex-col gap-3 p-4 sm:flex-row sm:items-center sm:p-5">
      <div className="min-w-0 flex-1">
        <h3 className="text-sm font-medium">Transfer ownership</h3>
        <p className="text-[13px] text-muted">Make another member the owner. You become an admin.</p>
      </div>
      {others.length === 0 ? (
        <p className="text-[13px] text-muted sm:max-w-56">Invite someone first: ownership goes to an existing member.</p>
      ) : (
        <div className="flex flex-col gap-2 sm:flex-row">
          <Select
            aria-label="New owner"
            className="sm:w-56"
            value={to || "none"}
            onValueChange={(v) => setTo(v === "none" ? "" : v)}
            options={[
              { value: "none", label: "Choose a member", disabled: true },
              ...others.map((m) => ({ value: m.userId, label: `${m.displayName || m.email} (${roleLabel[m.role]})` })),
            ]}
          />
          <Confirm
            trigger={
              <Button variant="danger" disabled={!target}>
                Transfer
              </Button>
            }
            title={`Make ${target?.displayName || target?.email} the owner?`}
            description={`${target?.email} becomes the owner of ${org.name}, and you become an admin. Only the new owner can undo this.`}
            confirmLabel="Transfer ownership"
            onConfirm={async () => {
              try {
                await orgs.transferOwnership({ organizationId: org.id, userId: to });
                await invalidate(OrganizationService.method.listOrganizations, OrganizationService.method.listMembers);
                toast.success(`${target?.email} now owns ${org.name}`);
                setTo("");
                navigate(`/o/${org.slug}/settings`);
              } catch (err) {
                toast.error("Couldn't transfer ownership", err);
                throw err;
              }
            }}
          />
        </div>
      )}
    </div>
  );
}

function Delete() {
  const org = useOrg();
  const [, navigate] = useLocation();
  const [typed, setTyped] = useState("");
  return (
    <div className="flex flex-col gap-3 p-4 sm:flex-row sm:items-center sm:p-5">
      <div className="min-w-0 flex-1">
        <h3 className="text-sm font-medium">Delete organization</h3>
        <p className="text-[13px] text-muted">Deletes {org.name}, its members' access and its API tokens. This can't be undone.</p>
      </div>
      <Confirm
        trigger={<Button variant="danger">Delete organization</Button>}
        title={`Delete ${org.name}?`}
        description={
          <>
            Everything in it is deleted and every member loses access. The activity log is kept for platform admins. Type{" "}
            <strong className="font-mono text-fg">{org.slug}</strong> to confirm.
          </>
        }
        confirmLabel="Delete forever"
        confirmDisabled={typed !== org.slug}
        onConfirm={async () => {
          try {
            await orgs.deleteOrganization({ organizationId: org.id, confirmSlug: typed });
            await invalidate(OrganizationService.method.listOrganizations);
            toast.success(`${org.name} was deleted`);
            navigate("/", { replace: true });
          } catch (err) {
            toast.error("Couldn't delete the organization", err);
            throw err;
          }
        }}
      >
        <Input aria-label="Organization short name" autoComplete="off" placeholder={org.slug} value={typed} onChange={(e) => setTyped(e.target.value)} className="font-mono" />
      </Confirm>
    </div>
  );
}

function Leave() {
  const org = useOrg();
  const [, navigate] = useLocation();
  return (
    <div className="flex flex-col gap-3 p-4 sm:flex-row sm:items-center sm:p-5">
      <div className="min-w-0 flex-1">
        <h3 className="text-sm font-medium">Leave organization</h3>
        <p className="text-[13px] text-muted">You lose access at once; your API tokens for it stop working.</p>
      </div>
      <Confirm
        trigger={<Button variant="danger">Leave {org.name}</Button>}
        title={`Leave ${org.name}?`}
        description="You lose access at once, and your API tokens for this organization stop working. Someone will have to invite you again."
        confirmLabel="Leave organization"
        onConfirm={async () => {
          try {
            await orgs.leaveOrganization({ organizationId: org.id });
            await invalidate(OrganizationService.method.listOrganizations);
            toast.success(`You left ${org.name}`);
            navigate("/", { replace: true });
          } catch (err) {
            toast.error("Couldn't leave the organization", err);
            throw err;
          }
        }}
      />
    </div>
  );
}

export default function Settings() {
  const org = useOrg();
  const owner = org.role === Role.OWNER;
  return (
    <>
      <PageHeader title="Settings" description={`How ${org.name} is set up.`} />
      <div className="space-y-6">
        <General />
        <Card className="border-danger/40">
          <CardHeader title="Danger zone" description={owner ? "Only you, the owner, can do these." : undefined} />
          <div className="divide-y divide-line">
            {owner && <Transfer />}
            {owner && <Delete />}
            {can.leave(org.role) && <Leave />}
          </div>
          {owner && (
            <p className="border-t border-line px-4 py-3 text-[13px] text-muted sm:px-5">The owner can't leave: transfer ownership first, or delete the organization.</p>
          )}
        </Card>
      </div>
    </>
  );
}
