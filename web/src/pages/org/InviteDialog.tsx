import { createClient } from "@connectrpc/connect";
import { useState } from "react";
import { Dialog } from "../../components/dialog";
import { RoleSelect } from "../../components/select";
import { toast } from "../../components/toast";
import { Banner, Button, Field, Input } from "../../components/ui";
import { InvitationService } from "../../gen/skypanel/organization/v1/invitation_pb";
import { Role } from "../../gen/skypanel/organization/v1/organization_pb";
import { invalidate, transport } from "../../lib/api";
import { useApiForm } from "../../lib/forms";
import { useOrg } from "../../lib/org";
import { roleLabel } from "../../lib/roles";

const invitations = createClient(InvitationService, transport);

/** InviteDialog invites someone by email; they get a link to join with the chosen role. */
export function InviteDialog({ open, onOpenChange }: { open: boolean; onOpenChange: (o: boolean) => void }) {
  const org = useOrg();
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<Role>(Role.MEMBER);
  const form = useApiForm(["email", "role"]);

  function close(o: boolean) {
    onOpenChange(o);
    if (!o) {
      setEmail("");
      setRole(Role.MEMBER);
      form.reset();
    }
  }

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const res = await form.run(() => invitations.createInvitation({ organizationId: org.id, email: email.trim(), role }));
    if (!res) return;
    await invalidate(InvitationService.method.listInvitations);
    toast.success(`Invitation sent to ${res.invitation?.email ?? email.trim()}`, `They'll join as ${roleLabel[role].toLowerCase()} when they accept.`);
    close(false);
  }

  return (
    <Dialog open={open} onOpenChange={close} title={`Invite to ${org.name}`} description="We'll email them a link to join, valid for a limited time.">
      <form onSubmit={submit} noValidate className="space-y-4">
        {form.formError && <Banner>{form.formError}</Banner>}
        <Field label="Email address" error={form.fields.email}>
          {(p) => <Input {...p} type="email" autoComplete="off" autoFocus placeholder="name@example.com" value={email} onChange={(e) => setEmail(e.target.value)} />}
        </Field>
        <Field label="Role" error={form.fields.role}>
          {(p) => <RoleSelect {...p} value={role} onChange={setRole} max={org.role >= Role.ADMIN ? Role.ADMIN : org.role} />}
        </Field>
        <div className="flex flex-col-reverse gap-2 pt-1 sm:flex-row sm:justify-end">
          <Button onClick={() => close(false)}>Cancel</Button>
          <Button type="submit" variant="primary" loading={form.pending}>
            Send invitation
          </Button>
        </div>
      </form>
    </Dialog>
  );
}
