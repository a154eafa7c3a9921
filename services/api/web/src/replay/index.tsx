// Replay views by protocol: each protocol's replay projection plugs in here. SQL has the query
// timeline; a terminal replay (SSH, Kubernetes exec: asciicast from GET /v1/sessions/{id}/replay,
// shown with asciinema-player) and the LLM/MCP transcripts register the same way once their
// endpoints are in openapi.yaml.
import type { ComponentType } from 'react';
import type { Schemas } from '../api';
import { QueryTimeline } from './QueryTimeline';

export interface ReplayViewProps {
  readonly session: Schemas['SessionSummary'];
}

export interface ReplayView {
  readonly title: string;
  readonly component: ComponentType<ReplayViewProps>;
}

const REPLAY_VIEWS: Readonly<Record<string, ReplayView>> = {
  postgres: { title: 'Query timeline', component: QueryTimeline },
};

/** The replay view for a protocol; the query timeline (commands and decisions) when it has none of its own yet. */
export function replayViewFor(protocol: string): ReplayView {
  return REPLAY_VIEWS[protocol] ?? { title: 'Commands', component: QueryTimeline };
}
