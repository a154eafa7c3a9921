// Replay views by protocol: each protocol's replay projection plugs in here. Every session shows its
// command timeline (commands, decisions, approvals, maskings, errors: the query timeline for SQL);
// SSH and Kubernetes exec add the terminal replay (asciicast from GET /v1/sessions/{id}/replay and
// its live SSE, shown with asciinema-player); MCP and the LLM APIs the transcript
// (GET /v1/streams/{session}/transcript).
import { lazy, type ComponentType } from 'react';
import type { Schemas } from '../api';
import { QueryTimeline } from './QueryTimeline';
import { TranscriptView } from './TranscriptView';

export interface ReplayViewProps {
  readonly session: Schemas['SessionSummary'];
}

export interface ReplayView {
  readonly title: string;
  readonly component: ComponentType<ReplayViewProps>;
}

// asciinema-player is most of the bundle: loaded only when a terminal session is opened.
const TerminalReplay = lazy(async () => ({ default: (await import('./TerminalReplay')).TerminalReplay }));

const REPLAY_VIEWS: Readonly<Record<string, ReplayView>> = {
  ssh: { title: 'Terminal replay', component: TerminalReplay },
  kubernetes: { title: 'Terminal replay', component: TerminalReplay },
  mcp: { title: 'Transcript', component: TranscriptView },
  anthropic: { title: 'Transcript', component: TranscriptView },
  http: { title: 'Transcript', component: TranscriptView },
};

/** The command timeline every session shows (titled for its protocol). */
export function timelineViewFor(protocol: string): ReplayView {
  return { title: protocol === 'postgres' ? 'Query timeline' : 'Commands', component: QueryTimeline };
}

/** The protocol's replay besides the timeline (terminal or transcript), if it has one. */
export function replayViewFor(protocol: string): ReplayView | undefined {
  return REPLAY_VIEWS[protocol];
}
