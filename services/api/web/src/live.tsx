// Live updates: one EventSource on GET /v1/live per page; each notice invalidates the TanStack Query
// cache entries it concerns, so open lists and pages refetch at once instead of polling. While the
// stream is not connected (before it opens, after an error, until EventSource reconnects), pages fall
// back to polling every LIVE_REFRESH_MS; on every (re)connection everything is refetched once, as
// notices may have been missed.
import { useQueryClient, type Query } from "@tanstack/react-query";
import {
  createContext,
  useContext,
  useEffect,
  useState,
  type ReactNode,
} from "react";
import { LIVE_REFRESH_MS } from "./api";

const LiveContext = createContext(false);

/** Path and path parameters of an openapi-react-query key: [method, path, init]. */
function keyOf(query: Query): {
  path: string;
  params: Record<string, unknown>;
} {
  const [, path, init] = query.queryKey as [
    unknown,
    unknown,
    { params?: { path?: Record<string, unknown> } } | undefined,
  ];
  return {
    path: typeof path === "string" ? path : "",
    params: init?.params?.path ?? {},
  };
}

function idOf(
  event: MessageEvent<string>,
  name: "sessionId" | "approvalId",
): string | undefined {
  try {
    const value = (JSON.parse(event.data) as Record<string, unknown>)[name];
    return typeof value === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}

export function LiveUpdates({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const [connected, setConnected] = useState(false);
  useEffect(() => {
    const source = new EventSource("/v1/live");
    const invalidateSession = (sessionId: string | undefined): void => {
      void queryClient.invalidateQueries({
        predicate: (query) => {
          const { path, params } = keyOf(query);
          if (path === "/v1/sessions") return true;
          if (
            path === "/v1/sessions/{sessionId}" ||
            path === "/v1/sessions/{sessionId}/timeline"
          )
            return params["sessionId"] === sessionId;
          if (path === "/v1/streams/{stream}/transcript")
            return params["stream"] === `session-${sessionId ?? ""}`;
          return false;
        },
      });
    };
    source.addEventListener("ready", () => {
      setConnected(true);
      void queryClient.invalidateQueries();
    });
    source.addEventListener("error", () => setConnected(false));
    source.addEventListener("session", (event) =>
      invalidateSession(idOf(event, "sessionId")),
    );
    source.addEventListener("approval", (event) => {
      const approvalId = idOf(event, "approvalId");
      void queryClient.invalidateQueries({
        predicate: (query) => {
          const { path, params } = keyOf(query);
          return (
            path === "/v1/approvals" ||
            (path === "/v1/approvals/{approvalId}" &&
              params["approvalId"] === approvalId)
          );
        },
      });
      invalidateSession(idOf(event, "sessionId"));
    });
    return () => source.close();
  }, [queryClient]);
  return (
    <LiveContext.Provider value={connected}>{children}</LiveContext.Provider>
  );
}

/** Whether live updates are connected. */
export function useLiveConnected(): boolean {
  return useContext(LiveContext);
}

/** refetchInterval for a query that should follow changes: none while live updates are connected, else polling. */
export function useFallbackRefresh(active = true): number | false {
  const connected = useContext(LiveContext);
  return active && !connected ? LIVE_REFRESH_MS : false;
}
