import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { CompiledPolicy } from './compiled-policy.js';
import { PolicyError } from './errors.js';
import { parsePolicyBytes, policyIssueAt } from './policy-file.js';
import { policyActivation, type PolicyActivation } from './policy-events.js';
import type { AnyPolicyLanguage } from './policy-language.js';

export interface PolicyStoreOptions {
  /** Called once for every version that becomes active (emit `policy.activated` here). */
  readonly onActivated?: (activation: PolicyActivation) => void;
  /** Called when a new version is refused; the previous version stays active. */
  readonly onRejected?: (error: PolicyError) => void;
  /** Languages whose match blocks are compiled before a version is activated (see ParsePolicyOptions.languages). */
  readonly languages?: readonly AnyPolicyLanguage[];
}

export type PolicyLoadResult =
  | { readonly status: 'activated'; readonly activation: PolicyActivation }
  /** Same bytes as the active version: nothing to do. */
  | { readonly status: 'unchanged'; readonly policy: CompiledPolicy }
  | { readonly status: 'rejected'; readonly error: PolicyError };

/**
 * Holds the active policy and the version counter. A candidate becomes active only when it is
 * valid and, if it declares a version, that version is higher than the active one; versions
 * without a declaration are numbered after the highest seen, so versions only ever increase.
 */
export class PolicyStore {
  private activePolicy: CompiledPolicy | undefined;
  private lastVersion = 0;

  constructor(private readonly options: PolicyStoreOptions = {}) {}

  /** The active policy, or undefined before the first successful activation. */
  get current(): CompiledPolicy | undefined {
    return this.activePolicy;
  }

  /** Reads the file and activates it if it is valid and new. Never throws PolicyError: see the result. */
  activateFile(path: string): PolicyLoadResult {
    const file = resolve(path);
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
      return this.reject(new PolicyError('POLICY_FILE_UNREADABLE', `policy file ${file} cannot be read (${code})`, [], { cause: error }));
    }
    return this.activateBytes(bytes, file);
  }

  activateBytes(bytes: Uint8Array, source: string): PolicyLoadResult {
    let candidate: CompiledPolicy;
    try {
      candidate = parsePolicyBytes(bytes, source, { fallbackVersion: this.lastVersion + 1, ...(this.options.languages === undefined ? {} : { languages: this.options.languages }) });
    } catch (error) {
      if (error instanceof PolicyError) return this.reject(error);
      throw error;
    }
    const active = this.activePolicy;
    if (active !== undefined && active.digest === candidate.digest && active.source === candidate.source) return { status: 'unchanged', policy: active };
    if (candidate.declaredVersion !== undefined && candidate.declaredVersion <= this.lastVersion) {
      const text = Buffer.from(bytes).toString('utf8');
      const issue = policyIssueAt(text, source, ['version'], `must be higher than the active version ${this.lastVersion}`);
      return this.reject(new PolicyError('POLICY_VERSION_NOT_INCREASED', `policy file ${source} was not activated`, [issue]));
    }
    this.activePolicy = candidate;
    this.lastVersion = candidate.version;
    const activation = policyActivation(candidate);
    this.options.onActivated?.(activation);
    return { status: 'activated', activation };
  }

  private reject(error: PolicyError): PolicyLoadResult {
    this.options.onRejected?.(error);
    return { status: 'rejected', error };
  }
}

export interface PolicyWatcherOptions extends PolicyStoreOptions {
  /** Quiet time after the last file-system event before the file is read again (default 200 ms). */
  readonly debounceMs?: number;
  /** Unexpected failures: the watch itself broke, or a callback threw. Default: process warning. */
  readonly onError?: (error: unknown) => void;
}

/**
 * Hot reload: watches the policy file's directory (editors and config maps replace files by
 * rename, which a watch on the file itself would lose) and re-reads the file once events settle.
 * Invalid versions are reported through `onRejected` and leave the active version in place.
 */
export class PolicyWatcher {
  readonly file: string;
  readonly store: PolicyStore;
  private readonly debounceMs: number;
  private readonly onError: (error: unknown) => void;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;

  private constructor(path: string, options: PolicyWatcherOptions) {
    this.file = resolve(path);
    this.store = new PolicyStore(options);
    this.debounceMs = options.debounceMs ?? 200;
    this.onError = options.onError ?? ((error) => process.emitWarning(error instanceof Error ? error : new Error(String(error)), 'PolicyWatcherWarning'));
  }

  /** Loads the file (throws PolicyError when the first version is invalid) and starts watching. */
  static start(path: string, options: PolicyWatcherOptions = {}): PolicyWatcher {
    const watcher = new PolicyWatcher(path, options);
    const first = watcher.store.activateFile(watcher.file);
    if (first.status === 'rejected') throw first.error;
    watcher.watch();
    return watcher;
  }

  /** The active policy. */
  get policy(): CompiledPolicy {
    const policy = this.store.current;
    if (policy === undefined) throw new Error('no policy is active');
    return policy;
  }

  /** Re-reads the file now (also what a file-system event triggers after the debounce). */
  reload(): PolicyLoadResult {
    return this.store.activateFile(this.file);
  }

  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.watcher?.close();
    this.watcher = undefined;
  }

  private watch(): void {
    this.watcher = watch(dirname(this.file), { persistent: false }, () => this.schedule());
    this.watcher.on('error', (error) => this.onError(error));
  }

  private schedule(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      try {
        this.reload();
      } catch (error) {
        this.onError(error);
      }
    }, this.debounceMs);
    this.timer.unref();
  }
}
