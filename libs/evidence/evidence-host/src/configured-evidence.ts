// The `evidence` config section turned into what the projector, the API and the CLI need. The
// signing key is read at the point of use (resolveSecret), never stored in the config object.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { EvidenceError, loadOrCreateKeyFile, signerFromSkey, verifierFromVkey, type CheckpointPolicy, type EvidenceLogState } from '@custodian/evidence';
import { SqliteEvidenceLogState } from '@custodian/evidence/sqlite';
import { resolveSecret, type LoadedConfig } from '@custodian/runtime-config';
import type { Ed25519NoteSigner, NoteVerifier } from '@custodian/transparency-log';

/** The default key file (in dataDir) when `evidence.signingKey` is not set. */
export const DEFAULT_KEY_FILE = 'evidence-log.skey';

export interface LoadedSigner {
  readonly signer: Ed25519NoteSigner;
  /** True when the default key file was created just now. */
  readonly created: boolean;
  /** Where the key came from (a path or an environment variable name; never the key). */
  readonly source: string;
}

export interface ConfiguredEvidence {
  readonly origin: string;
  readonly statePath: string;
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
  return {
    origin: settings.origin,
    statePath,
    policy: { everyEvents: settings.checkpoint.everyEvents, everySeconds: settings.checkpoint.everySeconds },
    maxCheckpointDelaySeconds: settings.checkpoint.maxDelaySeconds,
    previousKeys: settings.previousKeys,
    witnesses: settings.witnesses,
    auditorGroups: settings.auditorGroups,
    maskingRules: settings.maskingRules,
    loadSigner,
    openState: async () => {
      mkdirSync(dirname(statePath), { recursive: true });
      return SqliteEvidenceLogState.open({ path: statePath, origin: settings.origin });
    },
    async verifiers(state) {
      const vkeys = new Set<string>([...settings.previousKeys, ...(state ? await state.keys() : [])]);
      return [...vkeys].map(verifierFromVkey);
    },
  };
}
