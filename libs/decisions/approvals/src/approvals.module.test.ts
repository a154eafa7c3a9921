// The API-side runtime: the expiry sweep records approval.expired for approvals whose gateway is
// gone (nobody else would), once their deadline passed by the grace period.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '@custodian/event-store-sqlite';
import { ApprovalCommandHandlers, RequestApprovalCommand } from './approval-commands.js';
import { approvalStream } from './approval.js';
import { ApprovalRepository } from './approval-repository.js';
import { ApprovalsRuntime } from './approvals.module.js';
import { TEST_POLICY, boundApprovalRequest } from './testing/index.js';

const dir = mkdtempSync(join(tmpdir(), 'custodian-approvals-runtime-'));
let store: SqliteEventStore;

beforeAll(async () => {
  store = await SqliteEventStore.open({ path: join(dir, 'events.sqlite'), pollIntervalMs: 50 });
});

afterAll(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('ApprovalsRuntime expiry sweep', () => {
  it('expires overdue pending approvals after the grace period, bound to the API service', async () => {
    const gone = new ApprovalCommandHandlers(new ApprovalRepository({ eventStore: store, source: { service: 'gateway', instance: 'gw-gone' } }));
    const overdue = randomUUID();
    const current = randomUUID();
    const base = {
      sessionId: randomUUID(),
      commandId: randomUUID(),
      requester: { subject: 'agent-7', issuer: 'https://idp.test', groups: [], kind: 'agent' as const },
      connection: { name: 'orders-prod', protocol: 'postgres' as const },
      command: 'DELETE FROM orders',
      language: 'sql',
      policy: TEST_POLICY,
      ruleId: 'hold-deletes',
      approverGroups: ['dba'],
      required: 1,
      grantScope: { kind: 'once' as const },
    };
    await gone.request.execute(new RequestApprovalCommand(boundApprovalRequest({ ...base, approvalId: overdue, timeoutSeconds: 1 })));
    await gone.request.execute(new RequestApprovalCommand(boundApprovalRequest({ ...base, approvalId: current, timeoutSeconds: 600 })));
    const runtime = new ApprovalsRuntime({ eventStore: store, source: { service: 'api', instance: 'api-sweep' }, sweep: { intervalMs: 100, graceMs: 200 } });
    runtime.start();
    try {
      await runtime.caughtUp;
      const last = async (id: string): Promise<string | undefined> => {
        let type: string | undefined;
        for await (const r of store.readStream(approvalStream(id))) type = r.event.type;
        return type;
      };
      for (let i = 0; i < 100 && (await last(overdue)) !== 'approval.expired'; i++) await new Promise((r) => setTimeout(r, 50));
      const events = [];
      for await (const r of store.readStream(approvalStream(overdue))) events.push(r.event);
      expect(events.map((e) => e.type)).toEqual(['approval.requested', 'approval.expired']);
      expect(events[1]).toMatchObject({ identity: { subject: 'custodian-api/api-sweep', kind: 'service' }, source: { service: 'api' } });
      expect(await last(current)).toBe('approval.requested');
    } finally {
      await runtime.stop();
    }
  });
});
