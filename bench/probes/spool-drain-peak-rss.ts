// Child process of the pipeline benchmark: peak RSS of the gateway's spool draining a backlog.
// Peak RSS is a whole-process figure, so the backlog is written by one process (`write`, nothing
// drains) and drained by a fresh one (`drain`: a gateway restarting with a backlog), whose peak
// then covers only start-up, opening the spool and the drain. Prints one JSON line.
//   scripts/node24 node bench/probes/spool-drain-peak-rss.ts <write|drain> <events> <spool dir> <segment bytes>
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Identity } from '@custodian/event-contracts';
import { registerWorkspaceSources } from '../workspace-sources.ts';

registerWorkspaceSources();
const { EventFactory } = await import('@custodian/event-contracts');
const { activeTopicSpecs } = await import('@custodian/event-bus');
const { InProcessEventBus } = await import('@custodian/event-bus-in-process');
const { Spool, SpooledEvidencePipeline, encodeEvents } = await import('@custodian/evidence-pipeline');

const [mode, eventsText, dir, segmentText] = process.argv.slice(2);
const events = Number(eventsText);
const segmentBytes = Number(segmentText);
if ((mode !== 'write' && mode !== 'drain') || !Number.isSafeInteger(events) || events < 2 || events % 2 !== 0 || dir === undefined || !Number.isSafeInteger(segmentBytes)) {
  process.stderr.write('usage: spool-drain-peak-rss.ts <write|drain> <even event count> <spool dir> <segment bytes>\n');
  process.exit(2);
}
// Room for the whole backlog: the figure is about draining it, not about refusing it.
const maxBytes = 8 * 1024 * 1024 * 1024;

/** VmHWM (the kernel's peak RSS of this process), bytes. */
function peakRssBytes(): number {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) * 1024 : process.resourceUsage().maxRSS * 1024;
}

if (mode === 'write') {
  // The pipeline benchmark's events: per command, command.issued + policy.decided in one record
  // (what strict mode accepts together), 100 sessions interleaved. Built and appended in chunks so
  // the writer itself stays small.
  const factory = new EventFactory({ service: 'gateway', instance: 'bench' });
  const agent: Identity = { subject: 'agent-bench', issuer: 'https://idp.example.com', groups: ['agents'], kind: 'agent' };
  const sessions = Array.from({ length: 100 }, () => ({ sessionId: randomUUID(), commands: 0 }));
  const spool = await Spool.open({ dir, maxBytes, segmentBytes });
  const commands = events / 2;
  const chunk = 1_000;
  for (let done = 0; done < commands; done += chunk) {
    const appends: Promise<unknown>[] = [];
    for (let c = done; c < Math.min(commands, done + chunk); c++) {
      const session = sessions[c % sessions.length]!;
      const { sessionId } = session;
      const stream = `session-${sessionId}`;
      const sequence = 2 * session.commands++;
      const commandId = randomUUID();
      const pair = [
        factory.create({ type: 'command.issued', stream, sequence, identity: agent, payload: { sessionId, commandId, kind: 'sql', text: 'SELECT o.id, o.total FROM orders o WHERE o.created_at > $1 LIMIT 100', parameters: ['***'] } }),
        factory.create({
          type: 'policy.decided',
          stream,
          sequence: sequence + 1,
          identity: agent,
          payload: { sessionId, commandId, decision: 'allow', policy: { name: 'orders', version: 3, digest: 'a'.repeat(64) }, ruleId: 'read-orders', reason: 'reads are allowed' },
        }),
      ];
      appends.push(spool.append(encodeEvents(pair), pair.length));
    }
    await Promise.all(appends);
  }
  const depth = spool.depth();
  const segments = spool.segmentFiles().length;
  await spool.close();
  process.stdout.write(`${JSON.stringify({ mode, events: depth.events, bytes: depth.bytes, segments })}\n`);
} else {
  const rssBeforeOpenBytes = process.memoryUsage.rss();
  const spool = await Spool.open({ dir, maxBytes, segmentBytes });
  const backlog = spool.depth();
  if (backlog.events !== events) throw new Error(`the spool holds ${backlog.events} events, expected ${events}`);
  const rssAfterOpenBytes = process.memoryUsage.rss();
  // A bus that keeps next to nothing: the publisher acks and the messages are dropped, so what
  // grows is the spool's and the drainer's own memory.
  const bus = new InProcessEventBus({ retainPerPartition: 1 });
  await bus.ensureTopics(activeTopicSpecs({ partitions: 4, replicationFactor: 1, minInSyncReplicas: 1 }));
  let sampledPeakRssBytes = 0;
  const sampler = setInterval(() => (sampledPeakRssBytes = Math.max(sampledPeakRssBytes, process.memoryUsage.rss())), 20);
  const start = process.hrtime.bigint();
  const gateway = new SpooledEvidencePipeline({ spool, publisher: bus.publisher(), instance: 'bench' });
  await gateway.drained(600_000);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  clearInterval(sampler);
  const left = spool.depth().events;
  await gateway.close();
  await bus.close();
  process.stdout.write(
    `${JSON.stringify({ mode, events, drained: events - left, seconds, backlogBytes: backlog.bytes, rssBeforeOpenBytes, rssAfterOpenBytes, sampledPeakRssBytes, peakRssBytes: peakRssBytes() })}\n`,
  );
}
