import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventsOfLeaves } from './evidence-source.js';
import type { SqliteEvidenceLogState } from './sqlite/index.js';
import { AGENT, appendSpecs, buildScenario, bulkSpecs } from './testing/evidence-scenario.js';
import { createEvidenceLogFixture, type EvidenceLogFixture } from './testing/evidence-log-fixture.js';

let f: EvidenceLogFixture;
let state: SqliteEvidenceLogState;

beforeAll(async () => {
  f = await createEvidenceLogFixture();
  const projection = await f.openProjection();
  await appendSpecs(f.store, f.factory, [...buildScenario().specs, ...bulkSpecs(25)]);
  await projection.caughtUp();
  await projection.checkpointNow();
  // Its checkpoint.signed event becomes a leaf too: stop here, or a read could see one leaf more than the previous.
  await projection.caughtUp();
  await projection.close();
  state = await f.openState();
});

afterAll(async () => {
  await state?.close();
  await f?.cleanup();
});

const collect = async (query: Parameters<typeof eventsOfLeaves>[2], pageSize?: number) => {
  const out: { id: string; leafIndex: number; leaf: string }[] = [];
  for await (const e of eventsOfLeaves(f.store, state, query, pageSize ? { pageSize } : {})) out.push({ id: e.event.id, leafIndex: e.leafIndex, leaf: e.leaf.toString('utf8') });
  return out;
};

describe('eventsOfLeaves', () => {
  it('reads leaf records a page at a time and yields the same events, leaf bytes included, for any page size', async () => {
    const period = { from: '2026-03-01T00:00:00.000000Z', to: '2026-03-02T00:00:00.000000Z' };
    const whole = await collect(period);
    expect(whole.length).toBeGreaterThan(40);
    expect(whole.map((e) => e.leafIndex)).toEqual([...whole.keys()]);
    for (const pageSize of [1, 3, 7, whole.length, whole.length + 1]) expect(await collect(period, pageSize)).toEqual(whole);
    // A scattered selection (one identity) crossing page boundaries.
    const agent = await collect({ ...period, subject: AGENT.subject });
    expect(agent.length).toBeGreaterThan(3);
    expect(await collect({ ...period, subject: AGENT.subject }, 2)).toEqual(agent);
    expect(agent.every((e) => (JSON.parse(e.leaf) as { identity: { subject: string } }).identity.subject === AGENT.subject)).toBe(true);
  });
});
