// The transcript of an MCP or LLM session: GET /v1/streams/session-<id>/transcript, one page of the
// stream at a time, each frame's messages shown as prompt / output / tool call / tool result /
// usage (transcript-items.ts). Refreshed by the page's live updates while the session runs.
import { useState } from "react";
import { $api, apiErrorOf } from "../api";
import { formatDuration } from "../time";
import type { ReplayViewProps } from "./index";
import { KIND_LABELS, transcriptItems } from "./transcript-items";

export function TranscriptView({ session }: ReplayViewProps) {
  // Revisions where the pages shown so far start (keyset paging by stream revision).
  const [starts, setStarts] = useState<number[]>([0]);
  const fromRevision = starts[starts.length - 1] ?? 0;
  const transcript = $api.useQuery("get", "/v1/streams/{stream}/transcript", {
    params: {
      path: { stream: `session-${session.sessionId}` },
      query: { fromRevision, maxCount: 500 },
    },
  });
  if (transcript.error)
    return (
      <p role="alert">
        Could not load the transcript:{" "}
        {apiErrorOf(transcript.error)?.message ?? "error"}
      </p>
    );
  if (!transcript.data) return <p role="status">Loading the transcript…</p>;
  const next = transcript.data.nextRevision;
  return (
    <>
      <ol className="transcript" aria-label="Transcript">
        {transcript.data.frames.length === 0 && (
          <li>
            No messages recorded{fromRevision > 0 ? " on this page" : ""}.
          </li>
        )}
        {transcript.data.frames.map((entry) =>
          transcriptItems(entry).map((item, index) => (
            <li
              key={`${entry.revision}-${index}`}
              className={`item item-${item.kind} ${entry.direction}`}
            >
              <div className="item-head">
                <span className="kind">{KIND_LABELS[item.kind]}</span>{" "}
                <span className="label">{item.label}</span>{" "}
                <span className="muted">
                  {entry.direction === "client-to-upstream"
                    ? "client → server"
                    : "server → client"}{" "}
                  · +{formatDuration(entry.offsetMicros)}
                  {entry.truncated ? " · truncated in the recording" : ""}
                </span>
              </div>
              {item.text !== "" && <pre>{item.text}</pre>}
            </li>
          )),
        )}
      </ol>
      <div className="pager">
        <button
          type="button"
          disabled={starts.length === 1}
          onClick={() => setStarts(starts.slice(0, -1))}
        >
          Previous page
        </button>
        <button
          type="button"
          disabled={next === undefined}
          onClick={() => next !== undefined && setStarts([...starts, next])}
        >
          Next page
        </button>
      </div>
    </>
  );
}
