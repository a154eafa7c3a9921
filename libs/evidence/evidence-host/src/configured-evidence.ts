// The `evidence` config section turned into what the projector, the API and the CLI need: the
// log's state in SQLite (embedded) or PostgreSQL (evidence.store, distributed). The signing key
// is read at the point of use (resolveSecret), never stored in the config object.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { EvidenceError, loadOrCreateKeyFile, signerFromSkey, verifierFromVkey, type CheckpointPolicy, type EvidenceLogState } from '@custodian/evidence';
import { SqliteEvidenceLogState } from '@custodian/evidence/sqlite';
import { PostgresEvidenceLogState } from '@custodian/evidence-log-postgres';
import { resolveSecret, type LoadedConfig } from '@custodian/runtime-config';
import type { Ed25519NoteSigner, NoteVerifier } from '@custodian/transparency-log';

/** The default key file (in dataDir) when `evidence.signingKey` is not set. */
export const DEFAULT_KEY_FILE = 'evidence-log.skey';
/** The default pack attestation key file (in dataDir) when `evidence.attestationKey` is not set. */
export const DEFAULT_ATTESTATION_KEY_FILE = 'evidence-attestation.skey';
/** The name of a default attestation key: not the origin, so it can never pass for the log key. */
export const attestationKeyName = (origin: string): string => `${origin}/packs`;

export interface LoadedSigner {
  readonly signer: Ed25519NoteSigner;
  /** True when the default key file was created just now. */
  readonly created: boolean;
  /** Where the key came from (a path or an environment variable name; never the key). */
  readonly source: string;
}

export interface ConfiguredEvidence {
  readonly origin: string;
  /** The SQLite file of the log (used when `store` is `sqlite`). */
  readonly statePath: string;
  /** Where the log's state lives, for messages: `sqlite <path>` or `postgres (schema <name>)`; never a connection string. */
  readonly store: string;
  readonly policy: CheckpointPolicy;
  readonly maxCheckpointDelaySeconds: number;
  readonly previousKeys: readonly string[];
  readonly witnesses: readonly string[];
  readonly auditorGroups: readonly string[];
  readonly maskingRules: readonly string[];
  /**
   * Loads the current signing key: its secret reference, or the default key file. Only the
   * projector (the log's writer) passes `create`: then a missing default key file is created.
   */
  loadSigner(options?: { readonly create?: boolean }): LoadedSigner;
  /**
   * Loads the key that attests evidence packs (not the log key: exporters never hold that): its
   * secret reference, or the default key file, created at the first export with `create`.
   * Refuses a key that is the log's (same name as the origin).
   */
  loadAttestationSigner(options?: { readonly create?: boolean }): LoadedSigner;
  openState(): Promise<EvidenceLogState>;
  /** Verifiers for every key the log is known to have used: current, previous, and those the log recorded. */
  verifiers(state?: EvidenceLogState): Promise<NoteVerifier[]>;
}

export function configuredEvidence(loaded: LoadedConfig, env: Readonly<Record<string, string | undefined>> = process.env): ConfiguredEvidence {
  const { config } = loaded;
  const settings = config.evidence;
  const statePath = isAbsolute(settings.path) ? settings.path : resolve(config.dataDir, settings.path);
  const loadSigner = (options: { readonly create?: boolean } = {}): LoadedSigner => {
    if (settings.signingKey) {
      const source = 'fromEnv' in settings.signingKey ? `environment variable ${settings.signingKey.fromEnv}` : `file ${settings.signingKey.fromFile}`;
      return { signer: signerFromSkey(resolveSecret(settings.signingKey, { env, baseDir: loaded.baseDir })), created: false, source };
    }
    const path = join(config.dataDir, DEFAULT_KEY_FILE);
    if (!options.create && !existsSync(path)) throw new EvidenceError('EVIDENCE_KEY_INVALID', `no evidence log signing key: ${path} does not exist yet (the projector creates it at first start) and evidence.signingKey is not set`);
    return { ...loadOrCreateKeyFile(path, settings.origin), source: `file ${path}` };
  };
  const loadAttestationSigner = (options: { readonly create?: boolean } = {}): LoadedSigner => {
    let loadedKey: LoadedSigner;
    if (settings.attestationKey) {
      const source = 'fromEnv' in settings.attestationKey ? `environment variable ${settings.attestationKey.fromEnv}` : `file ${settings.attestationKey.fromFile}`;
      loadedKey = { signer: signerFromSkey(resolveSecret(settings.attestationKey, { env, baseDir: loaded.baseDir })), created: false, source };
    } else {
      const path = join(config.dataDir, DEFAULT_ATTESTATION_KEY_FILE);
      if (!options.create && !existsSync(path)) throw new EvidenceError('EVIDENCE_KEY_INVALID', `no evidence pack attestation key: ${path} does not exist yet (the first export creates it) and evidence.attestationKey is not set`);
      mkdirSync(dirname(path), { recursive: true });
      loadedKey = { ...loadOrCreateKeyFile(path, attestationKeyName(settings.origin)), source: `file ${path}` };
    }
    if (loadedKey.signer.name === settings.origin) throw new EvidenceError('EVIDENCE_KEY_INVALID', `the pack attestation key is named ${settings.origin}, the log's origin: use a key of its own (e.g. ${attestationKeyName(settings.origin)}), so that exporters cannot sign checkpoints`);
    return loadedKey;
  };
  return {
    loadAttestationSigner,
    origin: settings.origin,
    statePath,
    store: settings.store.kind === 'postgres' ? `postgres (schema ${settings.store.schema})` : `sqlite ${statePath}`,
    policy: { everyEvents: settings.checkpoint.everyEvents, everySeconds: settings.checkpoint.everySeconds },
    maxCheckpointDelaySeconds: settings.checkpoint.maxDelaySeconds,
    previousKeys: settings.previousKeys,
    witnesses: settings.witnesses,
    auditorGroups: settings.auditorGroups,
    maskingRules: settings.maskingRules,
    loadSigner,
    openState: async () => {
      const store = settings.store;
      if (store.kind === 'postgres') {
        // Resolved here, at the point of use, so the secret never sits in the config object.
        return PostgresEvidenceLogState.open({
          connectionString: resolveSecret(store.connectionString, { env, baseDir: loaded.baseDir }),
          origin: settings.origin,
          schema: store.schema,
          migrate: store.migrate,
          ...(store.writerRole === undefined ? {} : { writerRole: store.writerRole }),
        });
      }
      mkdirSync(dirname(statePath), { recursive: true });
      return SqliteEvidenceLogState.open({ path: statePath, origin: settings.origin });
    },
    async verifiers(state) {
      const vkeys = new Set<string>([...settings.previousKeys, ...(state ? await state.keys() : [])]);
      return [...vkeys].map(verifierFromVkey);
    },
  };
}
