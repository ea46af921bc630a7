// The app's single session, API transport and query cache, plus hooks to read them.
import type { DescMethodUnary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { createConnectQueryKey } from "@connectrpc/connect-query";
import { QueryClient } from "@tanstack/react-query";
import { useSyncExternalStore } from "react";
import type { User } from "../gen/skypanel/auth/v1/auth_pb";
import { Session, type SessionState } from "./session";

// The API is served from the dashboard's own origin (in dev, Vite proxies it).
export const session = new Session(window.location.origin);
export const transport = session.transport;

const retryable = new Set([Code.Unavailable, Code.Unknown, Code.DeadlineExceeded, Code.ResourceExhausted]);

export const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 15_000,
      retry: (count, err) => count < 2 && err instanceof ConnectError && retryable.has(err.code),
    },
    mutations: { retry: false },
  },
});

// Forget cached data of the previous user.
session.subscribe(() => {
  if (session.getState().status === "signedOut") queryClient.clear();
});

export function useSession(): SessionState {
  return useSyncExternalStore(session.subscribe, session.getState);
}

/** useUser returns the signed-in user; only for components under RequireAuth. */
export function useUser(): User {
  const s = useSession();
  if (s.status !== "signedIn") throw new Error("useUser outside a signed-in area");
  return s.user;
}

/** invalidate marks every cached call of the given methods stale (refetching those on screen). */
export function invalidate(...methods: DescMethodUnary[]) {
  return Promise.all(
    methods.map((schema) => queryClient.invalidateQueries({ queryKey: createConnectQueryKey({ schema, cardinality: undefined }) })),
  );
}
