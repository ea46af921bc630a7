// The page an invitation email links to: shows the invitation, then accepts it (signing up
// or logging in first when needed) or declines it.
import { createClient } from "@connectrpc/connect";
import { createConnectQueryKey, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { Ban, CheckCircle2, MailX } from "lucide-react";
import { useState } from "react";
import { Link, useLocation, useSearch } from "wouter";
import { AuthLayout } from "../../components/auth-layout";
import { Confirm } from "../../components/dialog";
import { toast } from "../../components/toast";
import { Banner, Button, Spinner } from "../../components/ui";
import { InvitationService, InvitationState } from "../../gen/skypanel/organization/v1/invitation_pb";
import { OrganizationService } from "../../gen/skypanel/organization/v1/organization_pb";
import { session, transport, useSession } from "../../lib/api";
import { errorMessage } from "../../lib/errors";
import { formatDate } from "../../lib/format";
import { orgPath, rememberOrg } from "../../lib/org";
import { invitationStateLabel, roleDescription, roleLabel } from "../../lib/roles";

const invitations = createClient(InvitationService, transport);

export default function AcceptInvitation() {
  const token = new URLSearchParams(useSearch()).get("token") ?? "";
  const s = useSession();
  const [, navigate] = useLocation();
  const qc = useQueryClient();
  const [accepting, setAccepting] = useState(false);
  const [declined, setDeclined] = useState(false);
  const q = useQuery(InvitationService.method.getInvitation, { token }, { enabled: token.length >= 10, retry: false });
  const inv = q.data?.invitation;
  const here = `/invitations/accept?token=${encodeURIComponent(token)}`;

  if (!token || token.length < 10 || q.isError) {
    return (
      <AuthLayout title="This invitation link doesn't work">
        <div className="flex gap-3">
          <MailX className="mt-0.5 size-5 shrink-0 text-danger" aria-hidden />
          <p className="text-sm text-muted">
            {q.isError ? errorMessage(q.error) + " " : ""}
            Check that you opened the whole link from the email, or ask the person who invited you to send a new invitation.
          </p>
        </div>
      </AuthLayout>
    );
  }
  if (q.isPending || s.status === "loading" || !inv) {
    return (
      <AuthLayout title="Invitation">
        <Spinner label="Loading the invitation" />
      </AuthLayout>
    );
  }

  if (declined || inv.state !== InvitationState.PENDING) {
    const state = declined ? InvitationState.DECLINED : inv.state;
    return (
      <AuthLayout title={`Invitation ${invitationStateLabel[state].toLowerCase()}`}>
        <div className="flex gap-3">
          {state === InvitationState.ACCEPTED ? (
            <CheckCircle2 className="mt-0.5 size-5 shrink-0 text-success" aria-hidden />
          ) : (
            <Ban className="mt-0.5 size-5 shrink-0 text-muted" aria-hidden />
          )}
          <p className="text-sm text-muted" role="status">
            {state === InvitationState.ACCEPTED && <>This invitation to {inv.organizationName} was already accepted.</>}
            {state === InvitationState.DECLINED && <>You declined the invitation to {inv.organizationName}. Nothing else happens.</>}
            {state === InvitationState.REVOKED && <>{inv.organizationName} withdrew this invitation. Ask them for a new one if you still need access.</>}
            {state === InvitationState.EXPIRED && <>This invitation to {inv.organizationName} has expired. Ask {inv.invitedByEmail || "them"} to send a new one.</>}
          </p>
        </div>
        <div className="mt-6">
          <Link href="/" className="text-sm font-medium text-accent hover:underline">
            Go to SkyPanel
          </Link>
        </div>
      </AuthLayout>
    );
  }

  const signedInAs = s.status === "signedIn" ? s.user.email : "";
  const matches = signedInAs.toLowerCase() === inv.email.toLowerCase();

  async function accept() {
    setAccepting(true);
    try {
      const res = await invitations.acceptInvitation({ token });
      await qc.invalidateQueries({ queryKey: createConnectQueryKey({ schema: OrganizationService.method.listOrganizations, cardinality: undefined }) });
      const org = res.organization;
      toast.success(`You joined ${org?.name ?? inv!.organizationName}`);
      if (org) {
        rememberOrg(org.slug);
        navigate(orgPath(org.slug), { replace: true });
      } else navigate("/", { replace: true });
    } catch (err) {
      toast.error("Couldn't accept the invitation", err);
      setAccepting(false);
    }
  }

  async function decline() {
    try {
      await invitations.declineInvitation({ token });
      setDeclined(true);
    } catch (err) {
      toast.error("Couldn't decline the invitation", err);
      throw err;
    }
  }

  const declineButton = (
    <Confirm
      trigger={<Button className="w-full sm:w-auto">Decline</Button>}
      title={`Decline the invitation to ${inv.organizationName}?`}
      description="You won't join the organization. They can invite you again later."
      confirmLabel="Decline invitation"
      onConfirm={decline}
    />
  );

  return (
    <AuthLayout title={`Join ${inv.organizationName}`} subtitle="You've been invited to an organization on SkyPanel.">
      <dl className="grid grid-cols-[max-content_1fr] gap-x-4 gap-y-2 rounded-lg border border-line bg-subtle/60 p-4 text-sm">
        <dt className="text-muted">Invited by</dt>
        <dd className="min-w-0 text-right font-medium break-all">{inv.invitedByEmail || "—"}</dd>
        <dt className="text-muted">For</dt>
        <dd className="min-w-0 text-right font-medium break-all">{inv.email}</dd>
        <dt className="text-muted">Role</dt>
        <dd className="text-right">
          <span className="font-medium">{roleLabel[inv.role]}</span>
          <span className="block text-xs text-muted">{roleDescription[inv.role]}</span>
        </dd>
        <dt className="text-muted">Expires</dt>
        <dd className="text-right font-medium">{formatDate(inv.expiresAt)}</dd>
      </dl>

      <div className="mt-6 space-y-3">
        {s.status === "signedOut" && (
          <>
            <Link
              href={`/signup?email=${encodeURIComponent(inv.email)}&next=${encodeURIComponent(here)}`}
              className="flex h-9 w-full items-center justify-center rounded-md bg-accent px-3.5 text-sm font-medium text-accent-fg shadow-sm hover:bg-accent-hover"
            >
              Sign up to accept
            </Link>
            <Link
              href={`/login?email=${encodeURIComponent(inv.email)}&next=${encodeURIComponent(here)}`}
              className="flex h-9 w-full items-center justify-center rounded-md border border-line bg-surface px-3.5 text-sm font-medium shadow-sm hover:bg-subtle"
            >
              I already have an account
            </Link>
            <div className="pt-1 text-center">{declineButton}</div>
          </>
        )}
        {s.status === "signedIn" && matches && (
          <div className="flex flex-col-reverse gap-2 sm:flex-row sm:justify-end">
            {declineButton}
            <Button variant="primary" loading={accepting} onClick={accept} className="w-full sm:w-auto">
              Accept and join
            </Button>
          </div>
        )}
        {s.status === "signedIn" && !matches && (
          <>
            <Banner tone="warning">
              You're logged in as <strong>{signedInAs}</strong>, but this invitation is for <strong>{inv.email}</strong>. Log out and continue as{" "}
              {inv.email}.
            </Banner>
            <div className="flex flex-col-reverse gap-2 sm:flex-row sm:justify-end">
              {declineButton}
              <Button variant="primary" onClick={() => void session.logOut()} className="w-full sm:w-auto">
                Log out and continue
              </Button>
            </div>
          </>
        )}
      </div>
    </AuthLayout>
  );
}
