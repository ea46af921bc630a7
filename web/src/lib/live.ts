// useLiveActivity follows ActivityService.StreamActivity: it reconnects with backoff when the
// stream ends or fails, refreshing the access token first when the server refused it, and
// calls onLive each time a stream's first (keepalive) message proves it is live, so the caller
// can list what it may have missed and merge by id.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { useEffect, useRef, useState } from "react";
import { ActivityService, type Event, type Filter } from "../gen/skypanel/activity/v1/activity_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { FilterSchema } from "../gen/skypanel/activity/v1/activity_pb";
import { session, transport } from "./api";

export type LiveStatus = "connecting" | "live" | "reconnecting" | "unavailable";

const client = createClient(ActivityService, transport);

export function useLiveActivity(
  organizationId: string,
  filter: MessageInitShape<typeof FilterSchema>,
  onEvent: (e: Event) => void,
  onLive: () => void,
): LiveStatus {
  const [status, setStatus] = useState<LiveStatus>("connecting");
  const handlers = useRef({ onEvent, onLive });
  handlers.current = { onEvent, onLive };
  const key = JSON.stringify(filter);

  useEffect(() => {
    const ctrl = new AbortController();
    const { signal } = ctrl;
    let attempt = 0;
    const sleep = (ms: number) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        signal.addEventListener("abort", () => {
          clearTimeout(t);
          resolve();
        });
      });

    (async () => {
      while (!signal.aborted) {
        setStatus(attempt === 0 ? "connecting" : "reconnecting");
        try {
          await session.ensureFresh();
          let first = true;
          for await (const msg of client.streamActivity({ organizationId, filter: JSON.parse(key) as Filter }, { signal })) {
            if (first) {
              first = false;
              attempt = 0;
              setStatus("live");
              handlers.current.onLive();
            }
            if (msg.event) handlers.current.onEvent(msg.event);
          }
          // The server ended the stream (shutting down): reconnect, to another replica maybe.
        } catch (err) {
          if (signal.aborted) return;
          const code = err instanceof ConnectError ? err.code : Code.Unknown;
          if (code === Code.Unauthenticated) {
            try {
              await session.refresh();
            } catch {
              return; // signed out: the app goes to the log-in page
            }
          } else if (code === Code.PermissionDenied || code === Code.NotFound || code === Code.Unimplemented || code === Code.InvalidArgument) {
            setStatus("unavailable");
            return;
          }
        }
        attempt++;
        await sleep(Math.min(30_000, 500 * 2 ** Math.min(attempt, 6)) * (0.75 + Math.random() / 2));
      }
    })();
    return () => ctrl.abort();
  }, [organizationId, key]);

  return status;
}
