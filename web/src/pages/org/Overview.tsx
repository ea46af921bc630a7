// An organization's home: what it is, your role, the next steps, and what happened lately.
import { useQuery } from "@connectrpc/connect-query";
import { Activity, CheckCircle2, Circle, KeyRound, MailPlus, Users } from "lucide-react";
import { useState, type ReactNode } from "react";
import { Link } from "wouter";
import { BalanceNotice } from "../../components/billing";
import { byNewest, EventRow } from "../../components/events";
import { Badge, Button, Card, CardHeader, EmptyState, ErrorState, PageHeader, SkeletonRows, cx } from "../../components/ui";
import { ActivityService } from "../../gen/skypanel/activity/v1/activity_pb";
import { APITokenService } from "../../gen/skypanel/apitoken/v1/apitoken_pb";
import { InvitationService, InvitationState } from "../../gen/skypanel/organization/v1/invitation_pb";
import { formatDate } from "../../lib/format";
import { orgPath, useOrg } from "../../lib/org";
import { can, roleDescription, roleLabel } from "../../lib/roles";
import { InviteDialog } from "./InviteDialog";

function Stat({ label, value, hint }: { label: string; value: ReactNode; hint?: ReactNode }) {
  return (
    <Card className="p-4">
      <div className="text-[13px] text-muted">{label}</div>
      <div className="mt-1 text-lg font-semibold">{value}</div>
      {hint && <div className="mt-0.5 text-xs text-muted">{hint}</div>}
    </Card>
  );
}

function Step({ done, title, children, action }: { done: boolean; title: string; children: ReactNode; action?: ReactNode }) {
  return (
    <li className="flex flex-wrap items-start gap-3 px-4 py-3.5 sm:flex-nowrap sm:px-5">
      {done ? <CheckCircle2 className="mt-0.5 size-5 shrink-0 text-success" aria-label="Done" /> : <Circle className="mt-0.5 size-5 shrink-0 text-muted" aria-label="To do" />}
      <div className="min-w-0 flex-1">
        <div className={cx("text-sm font-medium", done && "text-muted line-through decoration-muted/50")}>{title}</div>
        <div className="text-[13px] text-muted">{children}</div>
      </div>
      {!done && action && <div className="ml-8 sm:ml-0">{action}</div>}
    </li>
  );
}

function GettingStarted({ onInvite }: { onInvite: () => void }) {
  const org = useOrg();
  const invs = useQuery(InvitationService.method.listInvitations, { organizationId: org.id });
  const toks = useQuery(APITokenService.method.listAPITokens, { organizationId: org.id });
  const invited = org.memberCount > 1 || (invs.data?.invitations ?? []).some((i) => i.state !== InvitationState.REVOKED);
  const hasToken = (toks.data?.tokens.length ?? 0) > 0;
  if (invs.isPending || toks.isPending) return null;
  if (invited && hasToken) return null;
  return (
    <Card>
      <CardHeader title="Get started" description="A few steps to set up your organization." />
      <ol className="divide-y divide-line">
        <Step done title="Create the organization">
          {org.name} exists, and you own it.
        </Step>
        <Step
          done={invited}
          title="Invite your team"
          action={
            <Button size="sm" variant="primary" icon={<MailPlus className="size-3.5" aria-hidden />} onClick={onInvite}>
              Invite people
            </Button>
          }
        >
          They get an email with a link to join, with the role you choose.
        </Step>
        <Step
          done={hasToken}
          title="Create an API token for your scripts"
          action={
            <Link href={orgPath(org.slug, "tokens")} className="inline-flex h-8 items-center gap-1.5 rounded-md border border-line bg-surface px-2.5 text-[13px] font-medium shadow-sm hover:bg-subtle">
              <KeyRound className="size-3.5" aria-hidden /> API tokens
            </Link>
          }
        >
          CI and scripts call the same API the dashboard uses.
        </Step>
      </ol>
    </Card>
  );
}

function PendingInvitations() {
  const org = useOrg();
  const q = useQuery(InvitationService.method.listInvitations, { organizationId: org.id });
  const n = (q.data?.invitations ?? []).filter((i) => i.state === InvitationState.PENDING).length;
  return (
    <Stat
      label="Pending invitations"
      value={
        <Link href={orgPath(org.slug, "members")} className="inline-flex items-center gap-2 rounded hover:text-accent">
          <MailPlus className="size-4 text-muted" aria-hidden />
          {q.isPending ? "…" : q.isError ? "—" : n}
        </Link>
      }
      hint={n === 1 ? "Waiting for an answer" : "Waiting for answers"}
    />
  );
}

function RecentActivity() {
  const org = useOrg();
  const q = useQuery(ActivityService.method.listActivity, { organizationId: org.id, pageSize: 6 });
  const events = [...(q.data?.events ?? [])].sort(byNewest);
  return (
    <Card>
      <CardHeader
        title="Recent activity"
        actions={
          <Link href={orgPath(org.slug, "activity")} className="rounded text-[13px] font-medium text-accent hover:underline">
            View all
          </Link>
        }
      />
      {q.isPending ? (
        <SkeletonRows rows={3} label="Loading activity" />
      ) : q.isError ? (
        <ErrorState error={q.error} onRetry={() => void q.refetch()} />
      ) : events.length === 0 ? (
        <EmptyState icon={<Activity className="size-5" aria-hidden />} title="No activity yet">
          Changes to this organization show up here.
        </EmptyState>
      ) : (
        <ul className="divide-y divide-line">
          {events.map((e) => (
            <EventRow key={e.id} e={e} />
          ))}
        </ul>
      )}
    </Card>
  );
}

export default function Overview() {
  const org = useOrg();
  const [inviting, setInviting] = useState(false);
  const admin = can.manageMembers(org.role);
  return (
    <>
      <PageHeader
        title={org.name}
        description={
          <span className="inline-flex flex-wrap items-center gap-2">
            <code className="font-mono text-[13px]">{org.slug}</code>
            <span aria-hidden>·</span>
            <span>created {formatDate(org.createdAt)}</span>
          </span>
        }
        actions={
          admin && (
            <Button variant="primary" icon={<MailPlus className="size-4" aria-hidden />} onClick={() => setInviting(true)}>
              Invite people
            </Button>
          )
        }
      />
      <BalanceNotice />
      <div className="space-y-6">
        <div className="grid gap-3 sm:grid-cols-3">
          <Stat label="Your role" value={<Badge tone="accent" className="text-sm">{roleLabel[org.role]}</Badge>} hint={roleDescription[org.role]} />
          <Stat
            label="Members"
            value={
              <Link href={orgPath(org.slug, "members")} className="inline-flex items-center gap-2 rounded hover:text-accent">
                <Users className="size-4 text-muted" aria-hidden />
                {org.memberCount}
              </Link>
            }
            hint={org.memberCount === 1 ? "Just you so far" : "People with access"}
          />
          <PendingInvitations />
        </div>
        {admin && <GettingStarted onInvite={() => setInviting(true)} />}
        <RecentActivity />
      </div>
      {admin && <InviteDialog open={inviting} onOpenChange={setInviting} />}
    </>
  );
}
