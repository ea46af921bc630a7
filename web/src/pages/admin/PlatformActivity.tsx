import { useInfiniteQuery } from "@connectrpc/connect-query";
import { RefreshCw, ScrollText } from "lucide-react";
import { useState } from "react";
import { byNewest, EventRow } from "../../components/events";
import { Select } from "../../components/select";
import { Button, Card, EmptyState, ErrorState, PageHeader, SkeletonRows } from "../../components/ui";
import { AdminService } from "../../gen/skypanel/admin/v1/admin_pb";

const categories = [
  { value: "all", label: "All events", types: [] as string[] },
  { value: "auth", label: "Sign-ins and accounts", types: ["auth."] },
  { value: "admin", label: "Admin actions", types: ["admin."] },
  { value: "organization", label: "Organizations and members", types: ["organization."] },
  { value: "invitation", label: "Invitations", types: ["invitation."] },
  { value: "apitoken", label: "API tokens", types: ["apitoken."] },
];

export default function PlatformActivity() {
  const [type, setType] = useState("all");
  const types = categories.find((c) => c.value === type)!.types;
  const q = useInfiniteQuery(
    AdminService.method.listActivity,
    { filter: { eventTypes: types }, pageSize: 50, pageToken: "" },
    { pageParamKey: "pageToken", getNextPageParam: (p) => p.nextPageToken || undefined },
  );
  const events = (q.data?.pages.flatMap((p) => p.events) ?? []).sort(byNewest);
  return (
    <>
      <PageHeader
        title="Platform activity"
        description="Every event on this SkyPanel, including sign-ins and deleted organizations."
        actions={
          <Button onClick={() => void q.refetch()} loading={q.isRefetching} icon={<RefreshCw className="size-4" aria-hidden />}>
            Refresh
          </Button>
        }
      />
      <div className="mb-4 max-w-xs">
        <Select aria-label="Event type" value={type} onValueChange={setType} options={categories} />
      </div>
      <Card>
        {q.isPending ? (
          <SkeletonRows rows={5} label="Loading activity" />
        ) : q.isError ? (
          <ErrorState error={q.error} onRetry={() => void q.refetch()} />
        ) : events.length === 0 ? (
          <EmptyState icon={<ScrollText className="size-5" aria-hidden />} title="No events">
            Nothing of this kind has happened yet.
          </EmptyState>
        ) : (
          <>
            <ul className="divide-y divide-line" aria-label="Events">
              {events.map((e) => (
                <EventRow key={e.id} e={e} />
              ))}
            </ul>
            {q.hasNextPage && (
              <div className="border-t border-line p-3 text-center">
                <Button onClick={() => void q.fetchNextPage()} loading={q.isFetchingNextPage}>
                  Show older events
                </Button>
              </div>
            )}
          </>
        )}
      </Card>
    </>
  );
}
