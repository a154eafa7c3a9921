// `custodian log …` and `custodian evidence …` (and `custodian verify`, an alias of `evidence verify`):
// verify the Merkle log against the event store, make signing keys, export and verify evidence packs.
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { EventFactory, streamName, type CustodianEvent, type Identity } from '@custodian/event-contracts';
import { EvidenceError, buildEvidencePack, loadControlCatalogue, verifierFromVkey, verifyEvidencePackFile, verifyLog, type EvidenceLogState } from '@custodian/evidence';
import { ed25519PublicKeyFromPem } from '@custodian/custody';
import { configuredEvidence } from '@custodian/evidence-host';
import { loadConfig } from '@custodian/runtime-config';
import { openConfiguredEventStore } from '@custodian/service-host';
import { Ed25519NoteSigner, isValidKeyName, type NoteVerifier } from '@custodian/transparency-log';
import type { CliIo } from './cli.js';
import { cliVersion } from './version.js';

export const LOG_USAGE = `Usage: custodian log <command> [options]

Commands:
  verify [--config FILE] [--key VKEY]... [--json]
        Recompute the evidence Merkle log from the event store and check every signed checkpoint
        (from the store and from the log's own records). Reports a modified, deleted, inserted or
        reordered event with its position. --key pins the log keys (default: the configured and
        recorded ones). Also checks every node of the log's stored tree and tells an altered
        leaf record from an altered event. Exit 0 when everything holds, 1 on a problem, 3 when
        nothing is wrong but events after the last checkpoint are not covered by a signature yet.
  keygen --origin NAME --out FILE
        Write a new Ed25519 signing key (skey, mode 0600) for evidence.signingKey and print its
        vkey (the public key auditors pin). Rotate by configuring the new key as signingKey and
        listing the old vkey in evidence.previousKeys.
`;

export const EVIDENCE_USAGE = `Usage: custodian evidence <command> [options]

Commands:
  export --from TIME --to TIME [--identity SUBJECT] [--connection NAME] [--control ID] --out FILE [--config FILE]
        Write a signed evidence pack (tar.gz): events, the leaf-set proof that they are in the
        log, consistency proofs, checkpoints, keys, OSCAL assessment results, HTML report, DSSE attestation. The export is
        recorded as an evidence-pack.exported event. TIME is RFC 3339 UTC, e.g. 2026-03-01T00:00:00Z.
        The pack is attested with evidence.attestationKey (default <dataDir>/evidence-attestation.skey,
        created at the first export), not the log key; its vkey is printed for auditors to pin.
  verify FILE [--key VKEY]... [--key-file FILE]... [--attestation-key VKEY]... [--witness VKEY]... [--custody-key PEMFILE]... [--trust-pack-keys] [--allow-incomplete] [--json]
        Check a pack offline (no network, no store): the DSSE signature, every digest, checkpoint
        signature, cosignature, consistency proof, the leaf-set proof of the events, every custody
        statement (custody.attested: the gateway's DSSE signature, statement = event), the
        OSCAL document, and that evidence.json, the OSCAL findings and the report agree with the
        events and the pack's control mapping (counts, findings, statuses). Pin the log's keys (they sign checkpoints) with --key/--key-file, the
        pack attestation key (it signs the attestation; exporters hold it, never the log key)
        with --attestation-key, and the gateway's custody key (PEM) with --custody-key. Without
        --key and --attestation-key the pack's own keys are used, which proves only that the pack
        is self-consistent (anyone can sign one): exit 3 unless --trust-pack-keys says that is all
        you want. A pack that does not prove it holds every event its scope selects (a filtered
        pack without the headers of its window, or format v2) fails the completeness check:
        whoever holds the attestation key could issue one that leaves events out. Pass
        --allow-incomplete to accept such a pack; the verdict then says completeness is NOT
        proven. Checkpoint-gap findings are recomputed from the signing times the checkpoints
        state under the log key (checkpoints signed before that line: time not proven).
        Exit 0 when all hold against pinned keys, 1 naming the first
        failure, 3 self-consistent but unpinned. Also: custodian verify FILE.
`;

class EvidenceUsageError extends Error {
  override readonly name = 'EvidenceUsageError';
  readonly code = 'CLI_USAGE';
}

/** Exit codes: 0 verified / done, 1 verification failed, 2 bad usage or configuration, 3 checks hold but something is not verified (no key pinned; events not yet checkpointed). */
export const EVIDENCE_EXIT = { ok: 0, failed: 1, usage: 2, unpinned: 3 } as const;

function parse(argv: readonly string[], options: ParseArgsOptionsConfig): { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] } {
  try {
    return parseArgs({ args: [...argv], allowPositionals: true, strict: true, options: { ...options, help: { type: 'boolean', short: 'h' } } }) as { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] };
  } catch (err) {
    throw new EvidenceUsageError(err instanceof Error ? err.message : String(err));
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const strs = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

function cliIdentity(): Identity {
  return { subject: `local:${userInfo().username}`, issuer: 'urn:custodian:cli', groups: [], kind: 'human' };
}

async function withUsage(io: CliIo, usage: string, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof EvidenceUsageError) {
      io.stderr(`custodian: ${err.message}\n\n${usage}`);
      return EVIDENCE_EXIT.usage;
    }
    if (err instanceof EvidenceError) {
      io.stderr(`custodian: ${err.code}: ${err.message}\n`);
      return err.code === 'EVIDENCE_SCOPE_INVALID' || err.code === 'EVIDENCE_KEY_INVALID' ? EVIDENCE_EXIT.usage : EVIDENCE_EXIT.failed;
    }
    throw err;
  }
}

/** Whether the arguments ask for help (`--help` / `-h` before any `--`). */
function wantsHelp(args: readonly string[]): boolean {
  for (const arg of args) {
    if (arg === '--') return false;
    if (arg === '--help' || arg === '-h') return true;
  }
  return false;
}

export async function runLogCommand(argv: readonly string[], io: CliIo): Promise<number> {
  return withUsage(io, LOG_USAGE, async () => {
    const [sub, ...rest] = argv;
    // `custodian log verify --help` and the like: help, exit 0, before anything runs.
    if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help' || wantsHelp(rest)) {
      io.stdout(LOG_USAGE);
      return EVIDENCE_EXIT.ok;
    }
    if (sub === 'keygen') {
      const { values } = parse(rest, { origin: { type: 'string' }, out: { type: 'string' } });
      const origin = str(values.origin);
      const out = str(values.out);
      if (!origin || !out) throw new EvidenceUsageError('keygen needs --origin and --out');
      if (!isValidKeyName(origin)) throw new EvidenceUsageError('--origin must be non-empty, without spaces or "+"');
      const { vkey, skey } = Ed25519NoteSigner.generate(origin);
      const path = resolve(io.cwd, out);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, `${skey.reveal()}\n`, { mode: 0o600, flag: 'wx' });
      io.stdout(`${vkey}\n`);
      io.stderr(`custodian: wrote the signing key to ${path} (mode 0600); the line above is its vkey, for auditors and evidence.previousKeys\n`);
      return EVIDENCE_EXIT.ok;
    }
    if (sub !== 'verify') throw new EvidenceUsageError(`unknown command: log ${sub}`);
    const { values, positionals } = parse(rest, { config: { type: 'string', short: 'c' }, key: { type: 'string', multiple: true }, json: { type: 'boolean' } });
    if (positionals.length > 0) throw new EvidenceUsageError(`unexpected argument ${positionals[0]!}`);
    const loaded = loadConfig({ file: str(values.config), env: io.env, cwd: io.cwd });
    const evidence = configuredEvidence(loaded, io.env);
    const store = await openConfiguredEventStore(loaded);
    let state: EvidenceLogState | undefined;
    try {
      state = await evidence.openState();
      const pinned = strs(values.key);
      let verifiers: NoteVerifier[];
      if (pinned.length > 0) verifiers = pinned.map(verifierFromVkey);
      else {
        verifiers = await evidence.verifiers(state);
        try {
          const current = evidence.loadSigner().signer.verifier();
          if (!verifiers.some((v) => v.keyId === current.keyId)) verifiers.unshift(current);
        } catch {
          // No signing key here (e.g. an auditor's copy): the recorded and configured keys suffice.
        }
      }
      if (verifiers.length === 0) throw new EvidenceUsageError('no log key known: pass --key <vkey>');
      const tty = io.isTerminal?.() === true;
      const report = await verifyLog({ origin: evidence.origin, verifiers, events: store.readAll(), readAfter: (position) => store.readAll({ fromPosition: position }), state, ...(tty ? { onProgress: (n: number) => io.stderr(`\rcustodian: ${n} events read`) } : {}) });
      if (tty) io.stderr('\n');
      if (values.json === true) io.stdout(`${JSON.stringify(report, null, 2)}\n`);
      else {
        const good = report.checkpoints.filter((c) => c.ok).length;
        io.stdout(`evidence log ${evidence.origin}: ${report.events} events, ${report.checkpoints.length} checkpoints checked (${good} match), ${report.uncheckpointed} events after the last checkpoint\n`);
        for (const p of report.problems) io.stdout(`  ✗ ${p.kind}${p.position ? ` at ${p.position}` : ''}${p.leafIndex !== undefined ? ` (leaf ${p.leafIndex})` : ''}: ${p.message}\n`);
        io.stdout(
          !report.ok
            ? `FAILED: ${report.problems.length} problem(s)\n`
            : report.complete
              ? 'OK: the event store matches every signed checkpoint\n'
              : `NOT VERIFIED: ${report.uncheckpointed} event(s) after the last checkpoint are not covered by a signature yet (everything before holds); run again after the next checkpoint\n`,
        );
      }
      // Anything unverified is not OK: 3 when nothing is wrong but events are not covered yet.
      return !report.ok ? EVIDENCE_EXIT.failed : report.complete ? EVIDENCE_EXIT.ok : EVIDENCE_EXIT.unpinned;
    } finally {
      await state?.close();
      await store.close();
    }
  });
}

export async function runEvidenceCommand(argv: readonly string[], io: CliIo): Promise<number> {
  return withUsage(io, EVIDENCE_USAGE, async () => {
    const [sub, ...rest] = argv;
    // `custodian log verify --help` and the like: help, exit 0, before anything runs.
    if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help' || wantsHelp(rest)) {
      io.stdout(EVIDENCE_USAGE);
      return EVIDENCE_EXIT.ok;
    }
    if (sub === 'verify') return verifyPack(rest, io);
    if (sub !== 'export') throw new EvidenceUsageError(`unknown command: evidence ${sub}`);
    const { values, positionals } = parse(rest, {
      config: { type: 'string', short: 'c' },
      from: { type: 'string' },
      to: { type: 'string' },
      identity: { type: 'string' },
      connection: { type: 'string' },
      control: { type: 'string' },
      out: { type: 'string', short: 'o' },
    });
    if (positionals.length > 0) throw new EvidenceUsageError(`unexpected argument ${positionals[0]!}`);
    const from = str(values.from);
    const to = str(values.to);
    const out = str(values.out);
    if (!from || !to || !out) throw new EvidenceUsageError('export needs --from, --to and --out');
    const loaded = loadConfig({ file: str(values.config), env: io.env, cwd: io.cwd });
    const evidence = configuredEvidence(loaded, io.env);
    // The attestation key, not the log key: only the projector holds that one.
    const attestation = evidence.loadAttestationSigner({ create: true });
    const signer = attestation.signer;
    const store = await openConfiguredEventStore(loaded);
    let state: EvidenceLogState | undefined;
    try {
      state = await evidence.openState();
      const identity = cliIdentity();
      const pack = await buildEvidencePack({
        store,
        state,
        catalogue: loadControlCatalogue(),
        scope: { from, to, ...(str(values.identity) ? { identity: str(values.identity)! } : {}), ...(str(values.connection) ? { connection: str(values.connection)! } : {}), ...(str(values.control) ? { control: str(values.control)! } : {}) },
        signer,
        exportedBy: identity,
        witnessKeys: evidence.witnesses,
        maskingRules: evidence.maskingRules,
        maxCheckpointDelaySeconds: evidence.maxCheckpointDelaySeconds,
        tool: { name: 'custodian', version: cliVersion() },
      });
      // Recorded first: an export that cannot be recorded is not written.
      const factory = new EventFactory({ service: 'cli', instance: `${userInfo().username}@${process.pid}` });
      const event = factory.create({
        type: 'evidence-pack.exported',
        stream: streamName('evidence', pack.packId),
        sequence: 0,
        identity,
        payload: { packId: pack.packId, digest: pack.digest, filter: pack.manifest.scope, eventCount: pack.manifest.counts.events, treeSize: pack.manifest.latestCheckpoint.treeSize },
      });
      await store.append(event.stream, [event as CustodianEvent], { expectedRevision: 'no-stream' });
      const path = resolve(io.cwd, out);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, pack.bytes);
      const m = pack.manifest;
      io.stdout(`${path}\n`);
      io.stderr(
        `custodian: pack ${m.packId}: ${m.counts.events} events, ${m.counts.sessions} sessions, ${m.counts.findings} findings, ${m.counts.checkpoints} checkpoints (tree size ${m.latestCheckpoint.treeSize})${m.counts.notYetCheckpointed > 0 ? `; ${m.counts.notYetCheckpointed} event(s) of the period are not checkpointed yet and are left out` : ''}; sha256 ${pack.digest}\n`,
      );
      io.stderr(`custodian: attested with ${signer.vkey} (${attestation.created ? `created just now: ${attestation.source}` : attestation.source}); auditors pin it with --attestation-key\n`);
      return EVIDENCE_EXIT.ok;
    } finally {
      await state?.close();
      await store.close();
    }
  });
}

/** `custodian verify FILE` / `custodian evidence verify FILE`. */
export async function verifyPack(argv: readonly string[], io: CliIo): Promise<number> {
  return withUsage(io, EVIDENCE_USAGE, async () => {
    const { values, positionals } = parse(argv, {
      key: { type: 'string', multiple: true },
      'key-file': { type: 'string', multiple: true },
      'attestation-key': { type: 'string', multiple: true },
      witness: { type: 'string', multiple: true },
      'custody-key': { type: 'string', multiple: true },
      'trust-pack-keys': { type: 'boolean' },
      'allow-incomplete': { type: 'boolean' },
      json: { type: 'boolean' },
    });
    if (values.help === true) {
      io.stdout(EVIDENCE_USAGE);
      return EVIDENCE_EXIT.ok;
    }
    if (positionals.length !== 1) throw new EvidenceUsageError('verify needs exactly one pack file');
    const file = resolve(io.cwd, positionals[0]!);
    try {
      accessSync(file, constants.R_OK);
    } catch (err) {
      throw new EvidenceUsageError(`cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'EIO'})`);
    }
    const keys = [...strs(values.key), ...strs(values['key-file']).flatMap((f) => readFileSync(resolve(io.cwd, f), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l.length > 0))];
    for (const k of keys) verifierFromVkey(k);
    const attestationKeys = strs(values['attestation-key']);
    for (const k of attestationKeys) verifierFromVkey(k);
    const custodyKeys = strs(values['custody-key']).map((f) => {
      const path = resolve(io.cwd, f);
      let pem: string;
      try {
        pem = readFileSync(path, 'utf8');
      } catch (err) {
        throw new EvidenceUsageError(`cannot read --custody-key ${path} (${(err as NodeJS.ErrnoException).code ?? 'EIO'})`);
      }
      try {
        ed25519PublicKeyFromPem(pem);
      } catch (err) {
        throw new EvidenceUsageError(`--custody-key ${path}: ${err instanceof Error ? err.message : String(err)}`);
      }
      return pem;
    });
    const progress = io.isTerminal?.() === true;
    // Streamed from the file: memory stays bounded for packs of millions of events.
    const report = await verifyEvidencePackFile(file, {
      trustedLogKeys: keys,
      trustedAttestationKeys: attestationKeys,
      requiredWitnesses: strs(values.witness),
      trustedCustodyKeys: custodyKeys,
      trustPackKeys: values['trust-pack-keys'] === true,
      allowIncomplete: values['allow-incomplete'] === true,
      ...(progress ? { onProgress: (done: number, total: number) => io.stderr(`\r${progressBar(done, total)}`) } : {}),
    });
    if (progress) io.stderr('\n');
    const exit = report.ok ? EVIDENCE_EXIT.ok : report.verdict === 'self-consistent' ? EVIDENCE_EXIT.unpinned : EVIDENCE_EXIT.failed;
    if (values.json === true) {
      io.stdout(`${JSON.stringify(report, null, 2)}\n`);
      return exit;
    }
    const width = Math.max(...report.checks.map((c) => c.name.length));
    io.stdout(`custodian: verifying ${file} (offline)\n`);
    for (const c of report.checks) io.stdout(`  ${c.ok ? '✓' : '✗'} ${c.name.padEnd(width)}  ${c.detail}\n`);
    const m = report.manifest;
    if (m) io.stdout(`pack ${m.packId}: ${m.counts.events} events from ${m.scope.from} to ${m.scope.to}, ${m.counts.findings} findings, ${m.counts.checkpoints} checkpoints, tree size ${m.latestCheckpoint.treeSize}\n`);
    if (m && report.verdict !== 'failed') {
      io.stdout(
        !report.complete
          ? 'completeness: NOT proven (a filtered pack without event headers, or format v2; accepted because --allow-incomplete was given): it shows what it holds, not that nothing was left out\n'
          : m.coverage?.kind === 'headers'
            ? 'completeness: proven for its filter (the header of every event of the window is in the pack, and every event they select)\n'
            : 'completeness: proven (every event of the window is in the pack)\n',
      );
    }
    if (report.signers && !report.signers.logKeysPinned) io.stdout('note: the log keys were taken from the pack itself; pin them with --key to check who signed the checkpoints\n');
    if (report.signers && !report.signers.attestationPinned) io.stdout('note: the attestation key was taken from the pack itself; pin it with --attestation-key to check who attested the pack\n');
    if (report.custody && report.custody.statements > 0 && !report.custody.pinned) io.stdout('note: each custody statement was checked against the gateway key its event carries; pin the gateway key with --custody-key to check who signed them\n');
    io.stdout(
      report.verdict === 'failed'
        ? `FAILED: ${report.firstFailure!.name}: ${report.firstFailure!.detail}\n`
        : report.verdict === 'verified'
          ? report.complete
            ? 'OK: every signature, digest and proof holds\n'
            : 'OK, COMPLETENESS NOT PROVEN (--allow-incomplete): every signature, digest and proof holds, but nothing shows that no event of its scope was left out\n'
          : report.ok
            ? 'SELF-CONSISTENT ONLY (--trust-pack-keys): every check holds against the keys the pack carries, which anyone can make; nothing says who signed it\n'
            : 'NOT VERIFIED: every check holds, but only against keys the pack carries, which anyone can make; pin the log keys with --key/--key-file and the attestation key with --attestation-key (or pass --trust-pack-keys to accept self-consistency)\n',
    );
    return exit;
  });
}

function progressBar(done: number, total: number): string {
  const width = 30;
  const filled = total === 0 ? width : Math.round((done / total) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} events`;
}
