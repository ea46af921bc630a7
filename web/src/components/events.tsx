// One activity event as a sentence: who did what, when, from where.
import { KeyRound } from "lucide-react";
import type { ReactNode } from "react";
import { ActorKind, type Event } from "../gen/skypanel/activity/v1/activity_pb";
import { formatDateTime, formatRelative } from "../lib/format";
import { Logo } from "./brand";
import { Avatar } from "./ui";

function roleWord(r: string | undefined): string {
  return r && r !== "none" ? r : "a member";
}

function aRole(r: string | undefined): string {
  const w = roleWord(r);
  if (w === "a member") return w;
  return (/^[aeiou]/.test(w) ? "an " : "a ") + w;
}

const Q = ({ children }: { children: ReactNode }) => <strong className="font-medium text-fg">{children}</strong>;

/** describe renders what happened, without the actor (who is shown first). */
export function describe(e: Event): ReactNode {
  const m = e.metadata;
  switch (e.eventType) {
    case "auth.user.signed_up":
      return "signed up";
    case "auth.user.logged_in":
      return "logged in";
    case "auth.user.logged_out":
      return "logged out";
    case "auth.user.password_changed":
      return "changed their password";
    case "auth.user.password_reset_requested":
      return "asked for a password reset";
    case "auth.user.password_reset":
      return "reset their password";
    case "auth.session.refresh_token_reused":
      return (
        <>
          presented a used refresh token; the session of <Q>{m.email || "a user"}</Q> was ended
        </>
      );
    case "organization.created":
      return (
        <>
          created the organization <Q>{m.name}</Q>
        </>
      );
    case "organization.renamed":
      return (
        <>
          renamed the organization from <Q>{m.old_name}</Q> to <Q>{m.new_name}</Q>
        </>
      );
    case "organization.deleted":
      return (
        <>
          deleted the organization <Q>{m.name}</Q>
        </>
      );
    case "organization.member.joined":
      return <>joined as {aRole(m.role)}</>;
    case "organization.member.added":
      return (
        <>
          added <Q>{m.email}</Q> as {aRole(m.role)}
        </>
      );
    case "organization.member.role_changed":
      return (
        <>
          changed the role of <Q>{m.email}</Q> from {roleWord(m.old_role)} to <Q>{roleWord(m.new_role)}</Q>
        </>
      );
    case "organization.member.removed":
      return (
        <>
          removed <Q>{m.email}</Q> from the organization
        </>
      );
    case "organization.member.left":
      return "left the organization";
    case "organization.ownership_transferred":
      return (
        <>
          transferred ownership to <Q>{m.to_email}</Q>
        </>
      );
    case "invitation.created":
      return (
        <>
          invited <Q>{m.email}</Q> as {aRole(m.role)}
        </>
      );
    case "invitation.accepted":
      return m.email && m.email.toLowerCase() === e.actorEmail.toLowerCase() ? (
        "accepted their invitation"
      ) : (
        <>
          accepted the invitation for <Q>{m.email}</Q>
        </>
      );
    case "invitation.declined":
      return (
        <>
          — the invitation for <Q>{m.email}</Q> was declined
        </>
      );
    case "invitation.revoked":
      return (
        <>
          withdrew the invitation for <Q>{m.email}</Q>
        </>
      );
    case "apitoken.created":
      return (
        <>
          created the API token <Q>{m.name}</Q> with the {roleWord(m.role)} role
        </>
      );
    case "apitoken.revoked":
      return (
        <>
          revoked the API token <Q>{m.name}</Q>
        </>
      );
    case "admin.user.created":
      return (
        <>
          created the platform admin <Q>{m.email}</Q>
        </>
      );
    case "admin.user.disabled":
      return (
        <>
          disabled the user <Q>{m.email}</Q>
        </>
      );
    case "admin.user.enabled":
      return (
        <>
          enabled the user <Q>{m.email}</Q>
        </>
      );
    case "admin.user.platform_admin_granted":
      return (
        <>
          made <Q>{m.email}</Q> a platform admin
        </>
      );
    case "admin.user.platform_admin_revoked":
      return (
        <>
          removed platform admin from <Q>{m.email}</Q>
        </>
      );
  }
  const words = e.eventType.replace(/[._]/g, " ");
  const extra = Object.entries(m)
    .filter(([k]) => !k.endsWith("_id"))
    .map(([k, v]) => `${k.replace(/_/g, " ")}: ${v}`)
    .join(", ");
  return extra ? `${words} (${extra})` : words;
}

export function actorName(e: Event): string {
  if (e.actorKind === ActorKind.SYSTEM || !e.actorEmail) return "SkyPanel";
  return e.actorEmail;
}

export function EventRow({ e, fresh }: { e: Event; fresh?: boolean }) {
  const name = actorName(e);
  return (
    <li
      className="flex gap-3 px-4 py-3 sm:px-5"
      style={fresh ? { animation: "sp-flash 3s ease-out" } : undefined}
      data-live={fresh || undefined}
      data-event-type={e.eventType}
    >
      {e.actorKind === ActorKind.SYSTEM || !e.actorEmail ? <Logo className="size-8 shrink-0" /> : <Avatar name={name} />}
      <div className="min-w-0 flex-1">
        <p className="text-sm break-words text-muted">
          <span className="font-medium text-fg">{name}</span>{" "}
          {e.actorKind === ActorKind.API_TOKEN && (
            <span className="mr-1 inline-flex items-center gap-1 rounded bg-subtle px-1 text-xs text-muted" title="Done with an API token">
              <KeyRound className="size-3" aria-hidden /> API token
            </span>
          )}
          {describe(e)}
        </p>
        <p className="mt-0.5 flex flex-wrap gap-x-2 text-xs text-muted">
          <time dateTime={e.createdAt ? new Date(Number(e.createdAt.seconds) * 1000).toISOString() : undefined} title={formatDateTime(e.createdAt)}>
            {formatRelative(e.createdAt)}
          </time>
          <span aria-hidden>·</span>
          <span className="font-mono">{e.eventType}</span>
          {e.ip && (
            <>
              <span aria-hidden>·</span>
              <span title={e.userAgent || undefined}>{e.ip}</span>
            </>
          )}
        </p>
      </div>
    </li>
  );
}

/** byNewest orders events newest first by their (decimal, increasing) ids. */
export function byNewest(a: Event, b: Event): number {
  if (a.id.length !== b.id.length) return b.id.length - a.id.length;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}
