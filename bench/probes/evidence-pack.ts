// Child process of the evidence-pack benchmark: export and verify each run alone in a fresh
// process, as `custodian evidence export|verify` would, so that time and peak RSS are theirs
// alone. Prints one JSON line.
//   scripts/node24 node bench/probes/evidence-pack.ts export <events.sqlite> <evidence.sqlite> <origin> <skey file> <from> <to> <out> [identity]
//   scripts/node24 node bench/probes/evidence-pack.ts verify <pack> <vkey>
import { readFileSync, writeFileSync } from 'node:fs';
import { registerWorkspaceSources } from '../workspace-sources.ts';

registerWorkspaceSources();
const { buildEvidencePack, loadControlCatalogue, verifyEvidencePackFile } = await import('@custodian/evidence');
const { SqliteEvidenceLogState } = await import('@custodian/evidence/sqlite');
const { SqliteEventStore } = await import('@custodian/event-store-sqlite');
const { Ed25519NoteSigner } = await import('@custodian/transparency-log');

const [mode, ...args] = process.argv.slice(2);
const started = process.hrtime.bigint();
const seconds = (): number => Number(process.hrtime.bigint() - started) / 1e9;
const peakRssBytes = (): number => process.resourceUsage().maxRSS * 1024;

if (mode === 'export' && (args.length === 7 || args.length === 8)) {
  const [storePath, statePath, origin, skeyFile, from, to, out, identity] = args as [string, string, string, string, string, string, string, string | undefined];
  const store = await SqliteEventStore.open({ path: storePath });
  const state = await SqliteEvidenceLogState.open({ path: statePath, origin });
  const signer = Ed25519NoteSigner.fromSkey(readFileSync(skeyFile, 'utf8').trim());
  const pack = await buildEvidencePack({ store, state, catalogue: loadControlCatalogue(), scope: { from, to, ...(identity ? { identity } : {}) }, signer, exportedBy: { subject: 'bench', issuer: 'urn:bench', groups: [], kind: 'human' }, now: () => new Date(to) });
  writeFileSync(out, pack.bytes);
  await state.close();
  await store.close();
  process.stdout.write(`${JSON.stringify({ mode, seconds: seconds(), peakRssBytes: peakRssBytes(), events: pack.manifest.counts.events, bytes: pack.bytes.length })}\n`);
} else if (mode === 'verify' && args.length === 2) {
  const [packPath, vkey] = args as [string, string];
  // Streamed from the file, as `custodian verify` does.
  const report = await verifyEvidencePackFile(packPath, { trustedLogKeys: [vkey] });
  process.stdout.write(`${JSON.stringify({ mode, seconds: seconds(), peakRssBytes: peakRssBytes(), ok: report.ok, complete: report.complete, failure: report.firstFailure ?? null, events: report.manifest?.counts.events ?? 0 })}\n`);
} else {
  process.stderr.write('usage: evidence-pack.ts export <events.sqlite> <evidence.sqlite> <origin> <skey file> <from> <to> <out> [identity] | verify <pack> <vkey>\n');
  process.exit(2);
}
