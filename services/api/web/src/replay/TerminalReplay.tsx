// The terminal replay of an SSH or Kubernetes exec session with asciinema-player: the recording
// (GET /v1/sessions/{id}/replay, asciicast v3, fetched through the typed client so a refusal is
// shown as the API's message) or, while the session runs, the live stream
// (GET /v1/sessions/{id}/replay/live, server-sent events read by the player's `eventsource` driver).
import { create, type Player, type Source } from "asciinema-player";
import "asciinema-player/dist/bundle/asciinema-player.css";
import { useEffect, useMemo, useRef, useState, type RefObject } from "react";
import { $api, apiErrorOf } from "../api";
import type { ReplayViewProps } from "./index";

type Mode = "recording" | "live";

/** The player's `eventsource` driver source (its typings name only the recording sources). */
interface EventSourceDriver {
  readonly driver: "eventsource";
  readonly url: string;
}

function usePlayer(
  container: RefObject<HTMLDivElement | null>,
  source: Source | EventSourceDriver | undefined,
  live: boolean,
): void {
  useEffect(() => {
    const element = container.current;
    if (!element || !source) return undefined;
    let player: Player | undefined = create(source as Source, element, {
      autoPlay: live,
      preload: true,
      fit: "width",
      controls: true,
      idleTimeLimit: 2,
      terminalFontSize: "small",
    });
    return () => {
      player?.dispose();
      player = undefined;
    };
  }, [container, source, live]);
}

function Recording({ sessionId }: { sessionId: string }) {
  const container = useRef<HTMLDivElement>(null);
  const recording = $api.useQuery("get", "/v1/sessions/{sessionId}/replay", {
    params: { path: { sessionId } },
    parseAs: "text",
  });
  const source = useMemo<Source | undefined>(
    () =>
      typeof recording.data === "string"
        ? { data: recording.data, parser: "asciicast" }
        : undefined,
    [recording.data],
  );
  usePlayer(container, source, false);
  if (recording.error)
    return (
      <p role="alert">
        No terminal replay:{" "}
        {apiErrorOf(recording.error)?.message ??
          "the recording could not be loaded"}
      </p>
    );
  return (
    <>
      {!recording.data && <p role="status">Loading the recording…</p>}
      <div ref={container} className="terminal" data-testid="terminal-player" />
      <p className="muted">
        <a
          href={`/v1/sessions/${encodeURIComponent(sessionId)}/replay`}
          download={`session-${sessionId}.cast`}
        >
          Download the recording (asciicast v3)
        </a>{" "}
        — plays in <code>asciinema play</code>.
      </p>
    </>
  );
}

function Live({ sessionId }: { sessionId: string }) {
  const container = useRef<HTMLDivElement>(null);
  const [source] = useState<EventSourceDriver>(() => ({
    driver: "eventsource",
    url: `/v1/sessions/${encodeURIComponent(sessionId)}/replay/live`,
  }));
  usePlayer(container, source, true);
  return (
    <div ref={container} className="terminal" data-testid="terminal-player" />
  );
}

/** Recorded or live terminal replay; live is offered (and chosen first) while the session runs. */
export function TerminalReplay({ session }: ReplayViewProps) {
  const [mode, setMode] = useState<Mode>(session.live ? "live" : "recording");
  return (
    <section aria-label="Terminal replay" className="terminal-replay">
      <div role="group" aria-label="Replay source" className="actions">
        <button
          type="button"
          aria-pressed={mode === "recording"}
          onClick={() => setMode("recording")}
        >
          Recording
        </button>
        <button
          type="button"
          aria-pressed={mode === "live"}
          onClick={() => setMode("live")}
        >
          Live{session.live ? "" : " (from the start; the session has ended)"}
        </button>
      </div>
      {mode === "recording" ? (
        <Recording
          key={`r-${session.sessionId}`}
          sessionId={session.sessionId}
        />
      ) : (
        <Live key={`l-${session.sessionId}`} sessionId={session.sessionId} />
      )}
    </section>
  );
}
