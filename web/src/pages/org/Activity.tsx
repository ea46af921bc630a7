// The organization's activity log: filters in the URL, older pages on demand, and new events
// arriving live from ActivityService.StreamActivity.
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { useInfiniteQuery, useQuery } from "@connectrpc/connect-query";
import { Activity as ActivityIcon, FilterX } from "lucide-react";
import { useCallback, useMemo, useState } from "react";
import { useSearchParams } from "wouter";
import { byNewest, EventRow } from "../../components/events";
import { LiveIndicator } from "../../components/live";
import { Select } from "../../components/select";
import { Button, Card, EmptyState, ErrorState, PageHeader, SkeletonRows } from "../../components/ui";
import { ActivityService, type Event } from "../../gen/skypanel/activity/v1/activity_pb";
import { OrganizationService } from "../../gen/skypanel/organization/v1/organization_pb";
import { useLiveActivity } from "../../lib/live";
import { useOrg } from "../../lib/org";

const categories: { value: string; label: string; types: string[] }[] = [
  { value: "all", label: "All events", types: [] },
  { value: "members", label: "Members", types: ["organization.member.", "organization.ownership_transferred"] },
  { value: "invitations", label: "Invitations", types: ["invitation."] },
  { value: "tokens", label: "API tokens", types: ["apitoken."] },
  { value: "organization", label: "Organization", types: ["organization.created", "organization.renamed", "organization.deleted"] },
];

const periods: { value: string; label: string; ms: number }[] = [
  { value: "all", label: "Any time", ms: 0 },
  { value: "1h", label: "Last hour", ms: 3600_000 },
  { value: "24h", label: "Last 24 hours", ms: 86400_000 },
  { value: "7d", label: "Last 7 days", ms: 7 * 86400_000 },
  { value: "30d", label: "Last 30 days", ms: 30 * 86400_000 },
];

const pageSize = 50;

export default function Activity() {
  const org = useOrg();
  const [params, setParams] = useSearchParams();
  const type = categories.find((c) => c.value === params.get("type")) ?? categories[0];
  const period = periods.find((p) => p.value === params.get("period")) ?? periods[0];
  const actor = params.get("actor") ?? "";
  const filtered = type.value !== "all" || period.value !== "all" || actor !== "";

  const setFilter = (k: string, v: string, none: string) =>
    setParams(
      (p) => {
        const n = new URLSearchParams(p);
        if (v === none) n.delete(k);
        else n.set(k, v);
        return n;
      },
      { replace: true },
    );

  const members = useQuery(OrganizationService.method.listMembers, { organizationId: org.id });

  // since is fixed when the period is chosen, so the query key stays stable between renders.
  const since = useMemo(() => (period.ms ? timestampFromMs(Date.now() - period.ms) : undefined), [period.ms]);
  const liveFilter = useMemo(() => ({ eventTypes: type.types, actorUserId: actor }), [type.types, actor]);

  const q = useInfiniteQuery(
    ActivityService.method.listActivity,
    { organizationId: org.id, filter: { ...liveFilter, since }, pageSize, pageToken: "" },
    { pageParamKey: "pageToken", getNextPageParam: (last) => last.nextPageToken || undefined },
  );

  // Events that arrived live since the filter was set; merged with the listing by id.
  const [live, setLive] = useState<{ key: string; events: Event[] }>({ key: "", events: [] });
  const liveKey = `${org.id}|${JSON.stringify(liveFilter)}`;
  const liveEvents = live.key === liveKey ? live.events : [];
  const onEvent = useCallback(
    (e: Event) => {
      if (actor && e.actorUserId !== actor) return;
      setLive((cur) => ({ key: liveKey, events: [e, ...(cur.key === liveKey ? cur.events : [])].slice(0, 500) }));
    },
    [liveKey, actor],
  );
  const { refetch } = q;
  const onLive = useCallback(() => void refetch(), [refetch]);
  const status = useLiveActivity(org.id, liveFilter, onEvent, onLive);

  const listed = q.data?.pages.flatMap((p) => p.events) ?? [];
  const fresh = new Set(liveEvents.map((e) => e.id));
  const seen = new Set<string>();
  const events = [...liveEvents, ...listed].filter((e) => !seen.has(e.id) && seen.add(e.id)).sort(byNewest);

  const actorOptions = [
    { value: "any", label: "Anyone" },
    ...(members.data?.members ?? []).map((m) => ({ value: m.userId, label: m.displayName ? `${m.displayName} (${m.email})` : m.email })),
  ];

  return (
    <>
      <PageHeader title="Activity" description={`Every change in ${org.name}: who made it, when and from where.`} actions={<LiveIndicator status={status} />} />
      <div className="mb-4 grid gap-2 sm:grid-cols-3">
        <Select aria-label="Event type" value={type.value} onValueChange={(v) => setFilter("type", v, "all")} options={categories} />
        <Select aria-label="Who" value={actor || "any"} onValueChange={(v) => setFilter("actor", v, "any")} options={actorOptions} />
        <Select aria-label="When" value={period.value} onValueChange={(v) => setFilter("period", v, "all")} options={periods} />
      </div>
      <Card>
        {q.isPending ? (
          <SkeletonRows rows={5} label="Loading activity" />
        ) : q.isError ? (
          <ErrorState error={q.error} onRetry={() => void q.refetch()} />
        ) : events.length === 0 ? (
          filtered ? (
            <EmptyState
              icon={<FilterX className="size-5" aria-hidden />}
              title="Nothing matches these filters"
              action={<Button onClick={() => setParams(new URLSearchParams(), { replace: true })}>Clear filters</Button>}
            >
              New events that match appear here as they happen.
            </EmptyState>
          ) : (
            <EmptyState icon={<ActivityIcon className="size-5" aria-hidden />} title="No activity yet">
              Changes to this organization appear here as they happen.
            </EmptyState>
          )
        ) : (
          <>
            <ul className="divide-y divide-line" aria-label="Events" aria-live="polite">
              {events.map((e) => (
                <EventRow key={e.id} e={e} fresh={fresh.has(e.id)} />
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
