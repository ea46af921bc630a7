import { createClient } from "@connectrpc/connect";
import { useInfiniteQuery } from "@connectrpc/connect-query";
import { ShieldCheck, UserX, Users as UsersIcon } from "lucide-react";
import { useState } from "react";
import { Confirm } from "../../components/dialog";
import { toast } from "../../components/toast";
import { Avatar, Badge, Button, Card, EmptyState, ErrorState, ListRow, PageHeader, SkeletonRows } from "../../components/ui";
import { AdminService } from "../../gen/skypanel/admin/v1/admin_pb";
import type { User } from "../../gen/skypanel/auth/v1/auth_pb";
import { invalidate, transport, useUser } from "../../lib/api";
import { formatDate } from "../../lib/format";
import { SearchBox } from "./Search";

const admin = createClient(AdminService, transport);

function UserRow({ u }: { u: User }) {
  const me = useUser();
  const self = u.id === me.id;
  const who = u.displayName || u.email;

  async function setDisabled(disabled: boolean) {
    try {
      await admin.setUserDisabled({ userId: u.id, disabled });
      await invalidate(AdminService.method.listUsers);
      toast.success(disabled ? `${who} was disabled` : `${who} was enabled`);
    } catch (err) {
      toast.error("Couldn't change the user", err);
      throw err;
    }
  }
  async function setAdmin(platformAdmin: boolean) {
    try {
      await admin.setPlatformAdmin({ userId: u.id, platformAdmin });
      await invalidate(AdminService.method.listUsers);
      toast.success(platformAdmin ? `${who} is a platform admin now` : `${who} is no longer a platform admin`);
    } catch (err) {
      toast.error("Couldn't change the user", err);
      throw err;
    }
  }

  return (
    <ListRow
      data-user={u.email}
      lead={<Avatar name={who} className={u.disabled ? "opacity-50" : undefined} />}
      title={
        <>
          <span className="truncate">{who}</span>
          {self && <Badge tone="accent">You</Badge>}
          {u.platformAdmin && <Badge tone="accent">Platform admin</Badge>}
          {u.disabled && <Badge tone="danger">Disabled</Badge>}
        </>
      }
      details={
        <>
          {u.displayName ? `${u.email} · ` : ""}joined {formatDate(u.createdAt)}
        </>
      }
      controls={
        !self && (
          <>
            <Confirm
              trigger={
                <Button size="sm" icon={<ShieldCheck className="size-3.5" aria-hidden />}>
                  {u.platformAdmin ? "Remove admin" : "Make admin"}
                </Button>
              }
              title={u.platformAdmin ? `Remove platform admin from ${who}?` : `Make ${who} a platform admin?`}
              description={
                u.platformAdmin
                  ? "They keep their account and organizations, but lose the admin area."
                  : "Platform admins see every user and organization, and can disable users and grant admin."
              }
              confirmLabel={u.platformAdmin ? "Remove admin" : "Make admin"}
              onConfirm={() => setAdmin(!u.platformAdmin)}
            />
            <Confirm
              trigger={
                <Button size="sm" icon={<UserX className="size-3.5" aria-hidden />}>
                  {u.disabled ? "Enable" : "Disable"}
                </Button>
              }
              title={u.disabled ? `Enable ${who}?` : `Disable ${who}?`}
              description={
                u.disabled
                  ? "They can log in again. Their old sessions stay ended; their API tokens work again."
                  : "They are signed out everywhere at once, can't log in, and their API tokens stop working while they are disabled."
              }
              confirmLabel={u.disabled ? "Enable user" : "Disable user"}
              onConfirm={() => setDisabled(!u.disabled)}
            />
          </>
        )
      }
    />
  );
}

export default function Users() {
  const [query, setQuery] = useState("");
  const q = useInfiniteQuery(
    AdminService.method.listUsers,
    { query, pageSize: 50, pageToken: "" },
    { pageParamKey: "pageToken", getNextPageParam: (p) => p.nextPageToken || undefined },
  );
  const users = q.data?.pages.flatMap((p) => p.users) ?? [];
  return (
    <>
      <PageHeader title="Users" description="Everyone with an account on this SkyPanel." />
      <div className="mb-4 max-w-sm">
        <SearchBox label="Search by email or name" onSearch={setQuery} />
      </div>
      <Card>
        {q.isPending ? (
          <SkeletonRows rows={4} label="Loading users" />
        ) : q.isError ? (
          <ErrorState error={q.error} onRetry={() => void q.refetch()} />
        ) : users.length === 0 ? (
          <EmptyState icon={<UsersIcon className="size-5" aria-hidden />} title={query ? "No user matches" : "No users yet"}>
            {query ? `Nobody's email or name contains “${query}”.` : "People appear here when they sign up."}
          </EmptyState>
        ) : (
          <>
            <ul className="divide-y divide-line" aria-label="Users">
              {users.map((u) => (
                <UserRow key={u.id} u={u} />
              ))}
            </ul>
            {q.hasNextPage && (
              <div className="border-t border-line p-3 text-center">
                <Button onClick={() => void q.fetchNextPage()} loading={q.isFetchingNextPage}>
                  Show more
                </Button>
              </div>
            )}
          </>
        )}
      </Card>
    </>
  );
}
