import { useInfiniteQuery } from "@connectrpc/connect-query";
import { Building2 } from "lucide-react";
import { useState } from "react";
import { Avatar, Button, Card, EmptyState, ErrorState, ListRow, PageHeader, SkeletonRows } from "../../components/ui";
import { AdminService } from "../../gen/skypanel/admin/v1/admin_pb";
import { formatDate } from "../../lib/format";
import { SearchBox } from "./Search";

export default function Organizations() {
  const [query, setQuery] = useState("");
  const q = useInfiniteQuery(
    AdminService.method.listOrganizations,
    { query, pageSize: 50, pageToken: "" },
    { pageParamKey: "pageToken", getNextPageParam: (p) => p.nextPageToken || undefined },
  );
  const list = q.data?.pages.flatMap((p) => p.organizations) ?? [];
  return (
    <>
      <PageHeader title="Organizations" description="Every organization on this SkyPanel." />
      <div className="mb-4 max-w-sm">
        <SearchBox label="Search by name or short name" onSearch={setQuery} />
      </div>
      <Card>
        {q.isPending ? (
          <SkeletonRows rows={4} label="Loading organizations" />
        ) : q.isError ? (
          <ErrorState error={q.error} onRetry={() => void q.refetch()} />
        ) : list.length === 0 ? (
          <EmptyState icon={<Building2 className="size-5" aria-hidden />} title={query ? "No organization matches" : "No organizations yet"}>
            {query ? `No name or short name contains “${query}”.` : "Organizations appear here when users create them."}
          </EmptyState>
        ) : (
          <>
            <ul className="divide-y divide-line" aria-label="Organizations">
              {list.map((o) => (
                <ListRow
                  key={o.id}
                  data-org={o.slug}
                  lead={<Avatar name={o.name} className="rounded-md" />}
                  title={<span className="truncate">{o.name}</span>}
                  details={
                    <>
                      <code className="font-mono">{o.slug}</code> · owner {o.ownerEmail || "—"} · {o.memberCount} {o.memberCount === 1 ? "member" : "members"} ·
                      created {formatDate(o.createdAt)}
                    </>
                  }
                />
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
