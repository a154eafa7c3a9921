// The gateway conformance suite: what every protocol adapter must do, observed from outside — at
// the client (what it saw, every byte it was sent), at the upstream (did the command get there),
// in the event store, in the gateway's logs and in an exported evidence pack. An adapter's test
// file calls describeGatewayConformance() with its fixture (see conformance-fixture.ts).
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApproveApprovalCommand, DenyApprovalCommand } from '@custodian/approvals';
import type { CustodianEvent } from '@custodian/event-contracts';
import { toOcsf } from '@custodian/siem-ocsf';
import type { ConformanceClient, ConformanceGateway, GatewayConformanceFixture } from './conformance-fixture.js';
import {
  APPROVAL_SECONDS,
  BLOCK_MESSAGE,
  CREDENTIAL_REF,
  CUSTODY_KEY,
  PIPELINE_INSTANCE,
  RULES,
  conformancePolicyYaml,
  startConformanceWorld,
  type ConformanceWorld,
} from './conformance-world.js';
import { verifyCustodyAttestation } from './custody-verification.js';
import { exportEvidencePack } from './evidence-export.js';
import { havePydanticOcsf, OCSF_PYTHON, validateWithPydanticOcsf } from './ocsf-validation.js';
import { findSecret, scanForSecrets } from './secret-scan.js';

export interface GatewayConformanceOptions {
  /** Longest wait for an event the gateway should record (default 10 s). */
  readonly eventTimeoutMs?: number;
}

type EventOf<T extends CustodianEvent['type']> = Extract<CustodianEvent, { type: T }>;

function ofType<T extends CustodianEvent['type']>(events: readonly CustodianEvent[], type: T): EventOf<T>[] {
  return events.filter((e): e is EventOf<T> => e.type === type);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A unique marker for one command: `[a-z0-9_]`, so it fits any protocol's command. */
function newMarker(label: string): string {
  return `cf_${label}_${randomBytes(6).toString('hex')}`;
}

/** A `frame.recorded` event's bytes (as recorded: after masking). */
function frameBytes(event: EventOf<'frame.recorded'>): Buffer {
  return Buffer.from(event.payload.data, 'base64');
}

export function describeGatewayConformance(name: string, makeFixture: () => GatewayConformanceFixture | Promise<GatewayConformanceFixture>, options: GatewayConformanceOptions = {}): void {
  const eventTimeoutMs = options.eventTimeoutMs ?? 10_000;

  describe(`gateway conformance: ${name}`, () => {
    let fixture: GatewayConformanceFixture;
    let world: ConformanceWorld;
    let strict: ConformanceGateway;
    let relaxed: ConformanceGateway;
    /** Every client opened, so that the secrecy case sees every byte any client was sent. */
    const clients: ConformanceClient[] = [];

    beforeAll(async () => {
      fixture = await makeFixture();
      world = await startConformanceWorld();
      await fixture.startUpstream({ credential: world.upstreamCredential, piiValue: world.piiValue });
      const policyYaml = conformancePolicyYaml(fixture.policy);
      strict = await fixture.startGateway(world.environment(policyYaml, true));
      relaxed = await fixture.startGateway(world.environment(policyYaml, false));
    });

    afterAll(async () => {
      if (world) world.outage.refusing = false;
      for (const client of clients) await client.close().catch(() => undefined);
      await strict?.stop();
      await relaxed?.stop();
      await fixture?.stop();
      await world?.stop();
    });

    /** Polls the store until `find` returns something, or fails naming `what`. */
    async function waitForEvents<T>(what: string, find: (events: CustodianEvent[]) => T | undefined, timeoutMs = eventTimeoutMs): Promise<T> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = find(await world.events());
        if (found !== undefined) return found;
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await sleep(50);
      }
    }

    /** Opens a session on `gateway` and finds its id (tests run one after another, so the newest session.opened is ours). */
    async function openSession(gateway: ConformanceGateway): Promise<{ client: ConformanceClient; sessionId: string }> {
      const before = new Set(ofType(await world.events(), 'session.opened').map((e) => e.payload.sessionId));
      const client = await gateway.connect(await world.token());
      clients.push(client);
      const sessionId = await waitForEvents('the new session.opened event', (events) => ofType(events, 'session.opened').find((e) => !before.has(e.payload.sessionId))?.payload.sessionId);
      return { client, sessionId };
    }

    async function sessionEvents(sessionId: string): Promise<CustodianEvent[]> {
      return (await world.events()).filter((e) => e.stream === `session-${sessionId}`);
    }

    /** Closes the client and waits for the session's session.closed (everything before it is then durable: streams are gap-free). */
    async function closeSession(client: ConformanceClient, sessionId: string): Promise<EventOf<'session.closed'>> {
      await client.close();
      return waitForEvents(`session.closed of session ${sessionId}`, (events) => ofType(events, 'session.closed').find((e) => e.payload.sessionId === sessionId));
    }

    async function expectReached(marker: string): Promise<void> {
      const deadline = Date.now() + 5_000;
      while (!(await fixture.reachedUpstream(marker))) {
        if (Date.now() > deadline) throw new Error(`the command carrying ${marker} never reached the upstream`);
        await sleep(100);
      }
    }

    async function expectNotReached(marker: string): Promise<void> {
      expect(await fixture.reachedUpstream(marker), `the command carrying ${marker} reached the upstream`).toBe(false);
    }

    async function approvalRequestedFor(sessionId: string): Promise<EventOf<'approval.requested'>> {
      return waitForEvents(`approval.requested for session ${sessionId}`, (events) => ofType(events, 'approval.requested').find((e) => e.payload.sessionId === sessionId));
    }

    async function approvalStreamTypes(approvalId: string): Promise<string[]> {
      return (await world.events()).filter((e) => e.stream === `approval-${approvalId}`).map((e) => e.type);
    }

    it('a blocked command never reaches the upstream, and the client gets an error naming the rule', async () => {
      const { client, sessionId } = await openSession(strict);
      // The observer works: an allowed command is seen at the upstream.
      const allowed = newMarker('allowed');
      expect((await client.run(fixture.commands.allowed(allowed))).ok).toBe(true);
      await expectReached(allowed);

      const blocked = newMarker('blocked');
      const reply = await client.run(fixture.commands.blocked(blocked));
      expect(reply.ok).toBe(false);
      expect(reply.output).toContain(BLOCK_MESSAGE);
      expect(reply.output).toContain(RULES.blocked);
      await expectNotReached(blocked);
      const decided = ofType(await sessionEvents(sessionId), 'policy.decided').filter((e) => e.payload.decision === 'block');
      expect(decided.map((e) => e.payload.ruleId)).toEqual([RULES.blocked]);
      await closeSession(client, sessionId);
    });

    it('the session stays usable after a block', async () => {
      const { client, sessionId } = await openSession(strict);
      const blocked = newMarker('blocked');
      expect((await client.run(fixture.commands.blocked(blocked))).ok).toBe(false);
      const after = newMarker('after_block');
      const reply = await client.run(fixture.commands.allowed(after));
      expect(reply, reply.output).toMatchObject({ ok: true });
      expect(reply.output).toContain(after);
      await expectReached(after);
      await expectNotReached(blocked);
      await closeSession(client, sessionId);
    });

    it('strict mode: while the evidence pipeline refuses, a command is refused with a clear error and not forwarded; the session then works again', async () => {
      const { client, sessionId } = await openSession(strict);
      try {
        expect((await client.run(fixture.commands.allowed(newMarker('before_outage')))).ok).toBe(true);
        world.outage.refusing = true;
        const during = newMarker('strict_outage');
        const refused = await client.run(fixture.commands.allowed(during));
        expect(refused.ok).toBe(false);
        expect(refused.output).toMatch(/cannot record events|could not be recorded/);
        expect(refused.output).toMatch(/not run|refused/);
        world.outage.refusing = false;
        await expectNotReached(during);
        const after = newMarker('after_outage');
        const reply = await client.run(fixture.commands.allowed(after));
        expect(reply, reply.output).toMatchObject({ ok: true });
        await expectReached(after);
      } finally {
        world.outage.refusing = false;
      }
      await closeSession(client, sessionId);
    });

    it('relaxed mode: a command issued while the pipeline refuses is served, and the refusal is recorded (command.refused naming the session)', async () => {
      const { client, sessionId } = await openSession(relaxed);
      const during = newMarker('relaxed_outage');
      try {
        expect((await client.run(fixture.commands.allowed(newMarker('before_outage')))).ok).toBe(true);
        // Let that command's frames reach the store, so the outage starts with nothing pending.
        await sleep(300);
        world.outage.refusing = true;
        const reply = await client.run(fixture.commands.allowed(during));
        expect(reply, reply.output).toMatchObject({ ok: true });
        await expectReached(during);
        // A fast command (an HTTP exchange takes a few ms) can end before the session's recorder
        // lingers out its batch (10 ms): keep the outage until the pipeline has met it, so the
        // command's events are among those it refused.
        const deadline = Date.now() + eventTimeoutMs;
        while (world.evidence.status().accepting && Date.now() < deadline) await sleep(20);
      } finally {
        world.outage.refusing = false;
      }
      // Recorded once the pipeline takes events again (ADR 0007): one command.refused per cause, naming the sessions.
      const refusal = await waitForEvents('a command.refused event naming the session', (events) =>
        ofType(events, 'command.refused').find((e) => e.payload.sessionIds.includes(sessionId)),
      );
      expect(refusal.stream.startsWith(`pipeline-${PIPELINE_INSTANCE}.`)).toBe(true);
      expect(refusal.payload.reasonCode).toBe('PIPELINE_STORE_UNWRITABLE');
      // The refused events were kept and written later: the served command is in the session's stream.
      const closed = await closeSession(client, sessionId);
      expect(closed.payload.sessionId).toBe(sessionId);
      const issued = ofType(await sessionEvents(sessionId), 'command.issued');
      expect(issued.length).toBeGreaterThanOrEqual(2);
    });

    it('relaxed mode keeps serving through an outage, also once the pipeline is known to refuse', async () => {
      const { client, sessionId } = await openSession(relaxed);
      const markers = [newMarker('relaxed_a'), newMarker('relaxed_b'), newMarker('relaxed_c')];
      const replies: { marker: string; ok: boolean; output: string }[] = [];
      try {
        expect((await client.run(fixture.commands.allowed(newMarker('before_outage')))).ok).toBe(true);
        await sleep(300);
        world.outage.refusing = true;
        const [first, ...rest] = markers;
        replies.push({ marker: first!, ...(await client.run(fixture.commands.allowed(first!))) });
        // Now the pipeline knows it is refusing (its status says so): the next commands meet a known outage.
        const deadline = Date.now() + eventTimeoutMs;
        while (world.evidence.status().accepting) {
          if (Date.now() > deadline) throw new Error('the evidence pipeline never noticed the outage');
          await sleep(20);
        }
        for (const marker of rest) replies.push({ marker, ...(await client.run(fixture.commands.allowed(marker))) });
      } finally {
        world.outage.refusing = false;
      }
      expect(replies.filter((r) => !r.ok).map((r) => `${r.marker}: ${r.output}`)).toEqual([]);
      for (const marker of markers) await expectReached(marker);
      await closeSession(client, sessionId);
    });

    it('frames are recorded after masking: the PII value is in no frame, the masked form is', async () => {
      const { client, sessionId } = await openSession(strict);
      const reply = await client.run(fixture.commands.pii());
      expect(reply, reply.output).toMatchObject({ ok: true });
      const masked = `[REDACTED:${RULES.pii}]`;
      expect(reply.output).toContain(masked);
      expect(reply.output).not.toContain(world.piiValue);
      await closeSession(client, sessionId);
      const events = await sessionEvents(sessionId);
      const frames = ofType(events, 'frame.recorded');
      expect(frames.length).toBeGreaterThan(0);
      const leaks = frames.flatMap((f, i) => findSecret(frameBytes(f), world.piiValue, `frame ${i} (${f.payload.direction}, ${f.payload.messageType})`));
      expect(leaks).toEqual([]);
      expect(frames.filter((f) => f.payload.direction === 'upstream-to-client' && frameBytes(f).includes(masked)).length).toBeGreaterThan(0);
      expect(findSecret(client.clientBound(), world.piiValue, 'client bytes')).toEqual([]);
      const maskings = ofType(events, 'data.masked').flatMap((e) => e.payload.maskings.map((m) => m.rule));
      expect(maskings).toContain(RULES.pii);
    });

    it('approval granted: the held command runs only once granted', async () => {
      const { client, sessionId } = await openSession(strict);
      const marker = newMarker('granted');
      const running = client.run(fixture.commands.held(marker));
      const requested = await approvalRequestedFor(sessionId);
      expect(requested.payload.ruleId).toBe(RULES.held);
      await expectNotReached(marker);
      await world.approvals.handlers.approve.execute(new ApproveApprovalCommand(requested.payload.approvalId, world.approver, 'conformance: granted'));
      const reply = await running;
      expect(reply, reply.output).toMatchObject({ ok: true });
      await expectReached(marker);
      expect(await approvalStreamTypes(requested.payload.approvalId)).toEqual(['approval.requested', 'approval.granted']);
      await closeSession(client, sessionId);
    });

    it('approval denied: a clear error naming the approver and the rule; the command is not run', async () => {
      const { client, sessionId } = await openSession(strict);
      const marker = newMarker('denied');
      const running = client.run(fixture.commands.held(marker));
      const requested = await approvalRequestedFor(sessionId);
      await world.approvals.handlers.deny.execute(new DenyApprovalCommand(requested.payload.approvalId, world.approver, 'conformance: denied on purpose'));
      const reply = await running;
      expect(reply.ok).toBe(false);
      expect(reply.output).toMatch(/denied/i);
      expect(reply.output).toContain(RULES.held);
      expect(reply.output).toContain('conformance: denied on purpose');
      await expectNotReached(marker);
      expect(await approvalStreamTypes(requested.payload.approvalId)).toEqual(['approval.requested', 'approval.denied']);
      // Still usable.
      expect((await client.run(fixture.commands.allowed(newMarker('after_denial')))).ok).toBe(true);
      await closeSession(client, sessionId);
    });

    it('approval expired: a clear error once the wait is over; the command is not run', async () => {
      const { client, sessionId } = await openSession(strict);
      const marker = newMarker('expired');
      const started = Date.now();
      const reply = await client.run(fixture.commands.held(marker));
      expect(Date.now() - started).toBeGreaterThanOrEqual(APPROVAL_SECONDS * 1000 - 500);
      expect(reply.ok).toBe(false);
      expect(reply.output).toMatch(/not granted within|expired/i);
      expect(reply.output).toContain(RULES.held);
      await expectNotReached(marker);
      const requested = await approvalRequestedFor(sessionId);
      expect(await approvalStreamTypes(requested.payload.approvalId)).toEqual(['approval.requested', 'approval.expired']);
      await closeSession(client, sessionId);
    }, 30_000);

    it('client gone while held: the approval is cancelled (approval.cancelled) and the command never runs', async () => {
      const { client, sessionId } = await openSession(strict);
      const marker = newMarker('gone');
      const running = client.run(fixture.commands.held(marker));
      const requested = await approvalRequestedFor(sessionId);
      client.disconnect();
      expect((await running).ok).toBe(false);
      const cancelled = await waitForEvents('approval.cancelled', (events) => ofType(events, 'approval.cancelled').find((e) => e.payload.approvalId === requested.payload.approvalId));
      expect(cancelled.payload.reason).toBe('client-disconnected');
      // An approver arriving late changes nothing.
      await world.approvals.handlers.approve.execute(new ApproveApprovalCommand(requested.payload.approvalId, world.approver, 'too late')).catch(() => undefined);
      await sleep(500);
      await expectNotReached(marker);
      await waitForEvents(`session.closed of session ${sessionId}`, (events) => ofType(events, 'session.closed').find((e) => e.payload.sessionId === sessionId));
    });

    it('session.closed counts the frames and bytes of the frame.recorded events, per direction', async () => {
      const { client, sessionId } = await openSession(strict);
      await client.run(fixture.commands.allowed(newMarker('counted')));
      await client.run(fixture.commands.blocked(newMarker('counted_blocked')));
      await client.run(fixture.commands.pii());
      const closed = await closeSession(client, sessionId);
      const frames = ofType(await sessionEvents(sessionId), 'frame.recorded');
      const count = (direction: string) => frames.filter((f) => f.payload.direction === direction);
      const bytes = (direction: string) => count(direction).reduce((sum, f) => sum + f.payload.byteLength, 0);
      expect(frames.length).toBeGreaterThan(0);
      expect(closed.payload.frames).toEqual({ clientToUpstream: count('client-to-upstream').length, upstreamToClient: count('upstream-to-client').length });
      expect(closed.payload.bytes).toEqual({ clientToUpstream: bytes('client-to-upstream'), upstreamToClient: bytes('upstream-to-client') });
    });

    it('the session ends with a custody statement (custody.attested) whose DSSE signature verifies and that says the credential was not exposed', async () => {
      const { client, sessionId } = await openSession(strict);
      await client.run(fixture.commands.allowed(newMarker('custody')));
      await client.run(fixture.commands.pii());
      await closeSession(client, sessionId);
      const attested = await waitForEvents(`a custody.attested event for session ${sessionId} (custody statements must be emitted at session end)`, (events) =>
        events.find((e) => (e.type as string) === 'custody.attested' && (e.payload as { sessionId?: unknown }).sessionId === sessionId),
      );
      const payload = attested.payload as unknown as { exposed?: unknown; credentialRef?: unknown; keyId?: unknown; publicKey?: unknown };
      // Signed by the gateway's key, and no other.
      expect(payload.publicKey).toBe(CUSTODY_KEY.publicKeyPem.endsWith('\n') ? CUSTODY_KEY.publicKeyPem : `${CUSTODY_KEY.publicKeyPem}\n`);
      const verified = verifyCustodyAttestation(attested.payload, sessionId);
      expect(verified.keyId).toBe(payload.keyId);
      expect(payload.exposed).toBe(false);
      expect((verified.predicate['scan'] as { exposed?: unknown } | undefined)?.exposed).toBe(false);
      expect(payload.credentialRef).toBe(CREDENTIAL_REF);
      // The statement's subject is exactly the bytes the client received.
      const subject = (verified.statement['subject'] as { digest: { sha256: string } }[] | undefined)?.[0];
      expect(subject?.digest.sha256).toBe(createHash('sha256').update(client.clientBound()).digest('hex'));
    });

    it.skipIf(!havePydanticOcsf())(`the session's events map to OCSF classes that pydantic-ocsf validates (needs ${OCSF_PYTHON}: scripts/setup-python.sh)`, async () => {
      const { client, sessionId } = await openSession(strict);
      await client.run(fixture.commands.allowed(newMarker('ocsf')));
      await client.run(fixture.commands.blocked(newMarker('ocsf_blocked')));
      await client.run(fixture.commands.pii());
      await closeSession(client, sessionId);
      const recorded = (await world.recorded()).filter((r) => r.stream === `session-${sessionId}`);
      const ocsf = recorded.map((r) => toOcsf(r.event, { recordedAt: r.recordedAt }));
      const results = await validateWithPydanticOcsf(ocsf);
      expect(results).toHaveLength(ocsf.length);
      expect(results.filter((r) => !r.ok).map((r) => `${recorded[r.index]!.event.type} → ${r.class_uid}: ${r.errors.join('; ')}`)).toEqual([]);
      const commandClasses = recorded.flatMap((r, i) => (r.event.type === 'command.issued' ? [ocsf[i]!.class_uid] : []));
      expect(commandClasses.length).toBe(3);
      expect(new Set(commandClasses)).toEqual(new Set([fixture.ocsfClassUid]));
    }, 120_000);

    it('the token and the upstream credential never appear in a client byte, an event, a gateway log line or an exported evidence pack', async () => {
      const { client, sessionId } = await openSession(strict);
      await client.run(fixture.commands.allowed(newMarker('secrecy')));
      await client.run(fixture.commands.blocked(newMarker('secrecy_blocked')));
      await client.run(fixture.commands.pii());
      await closeSession(client, sessionId);
      const secrets = [{ name: 'the upstream credential', value: world.upstreamCredential }, ...world.tokens.map((value, i) => ({ name: `access token ${i}`, value }))];

      const clientBytes = clients.map((c, i) => ({ where: `bytes sent to client ${i}`, data: c.clientBound() }));
      expect(clientBytes.reduce((n, c) => n + c.data.length, 0)).toBeGreaterThan(0);
      expect(scanForSecrets(clientBytes, secrets)).toEqual([]);

      const events = await world.events();
      const eventTexts = events.flatMap((e, i) => [
        { where: `event ${i} (${e.type}, ${e.stream})`, data: JSON.stringify(e) },
        ...(e.type === 'frame.recorded' ? [{ where: `event ${i} (frame.recorded data, decoded)`, data: frameBytes(e) }] : []),
      ]);
      expect(scanForSecrets(eventTexts, secrets)).toEqual([]);

      // The gateway logs through the suite's logger (an adapter that logs nowhere would pass this vacuously).
      expect(world.logLines.length).toBeGreaterThan(0);
      expect(scanForSecrets(world.logLines.map((data, i) => ({ where: `log line ${i}`, data })), secrets)).toEqual([]);

      const { files, pack } = await exportEvidencePack(world.store);
      expect(pack.manifest.counts.events).toBeGreaterThan(0);
      expect(scanForSecrets(files.map((f) => ({ where: `pack file ${f.path}`, data: f.data })), secrets)).toEqual([]);
    }, 120_000);
  });
}
