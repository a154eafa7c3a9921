import type { GatewayLogger } from '@custodian/gateway-kit';
import type { SessionPipeline } from '@custodian/session-pipeline';
import type { SshHostKey } from './host-key.js';

/** The secret the gateway logs in upstream with, read at each login (a rotated secret applies to the next session). */
export type SshUpstreamCredential =
  | {
      readonly kind: 'private-key';
      /** The private key (OpenSSH or PEM). */
      readonly read: () => Promise<Buffer>;
      /** Its passphrase, when it is encrypted. */
      readonly passphrase?: () => Promise<string | undefined>;
    }
  | { readonly kind: 'password'; readonly read: () => Promise<string> };

/** How the gateway reaches and logs in to one SSH server. */
export interface SshUpstreamTarget {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  /**
   * The host keys trusted for this upstream, read at each login: bare public-key lines
   * (`ssh-ed25519 AAAA…`, pinned) and/or OpenSSH known_hosts entries. Nothing trusted → refused.
   */
  readonly knownHosts: () => Promise<string> | string;
  readonly credential: SshUpstreamCredential;
  /** Where the secret comes from (`env:NAME`, `file:/path`), the only thing events say about it. */
  readonly credentialRef: string;
  readonly connectTimeoutMs?: number;
}

export interface SshConnection {
  /** What clients put as the SSH user name: `ssh <name>@gateway`. */
  readonly name: string;
  readonly upstream: SshUpstreamTarget;
}

/**
 * What happens to an interactive line the gateway cannot know for sure (alternate screen,
 * unbalanced quotes, a key it does not model): `refuse` drops it (erased upstream with ^U, a
 * message printed), `pass` forwards it with an `unverified` command event. `agent-refuses`:
 * refuse for identities of kind agent, pass for people.
 */
export type { UnverifiableLinePolicy } from '@custodian/terminal-line-policy';
import type { UnverifiableLinePolicy } from '@custodian/terminal-line-policy';

export interface SshGatewayOptions {
  readonly host: string;
  readonly port: number;
  readonly hostKey: SshHostKey;
  readonly connections: readonly SshConnection[];
  readonly pipeline: SessionPipeline;
  /** Time a client has to authenticate (default 30 s). */
  readonly loginTimeoutMs?: number;
  /** Default `agent-refuses`. */
  readonly unverifiableLines?: UnverifiableLinePolicy;
  /** Most session channels open at once per client connection (default 10). */
  readonly maxChannels?: number;
  readonly logger?: GatewayLogger;
}
