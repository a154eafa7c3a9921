// The SSH gateway: an ssh2 server. The SSH user name chooses the connection (`ssh <connection>@gateway`);
// the client proves an identity with its OIDC access token as the password or through
// keyboard-interactive; the gateway then logs in upstream with the credential it holds (the
// upstream host key checked against config) and bridges each session channel (SshClientConnection).
import type { Server } from 'node:net';
import ssh2 from 'ssh2';
import { listenOn, SILENT_GATEWAY_LOGGER, type GatewayLogger } from '@custodian/gateway-kit';
import { shellLanguage } from '@custodian/policy-languages';
import { SshClientConnection } from './client-connection.js';
import { SshGatewayError } from './gateway-errors.js';
import type { SshConnection, SshGatewayOptions } from './gateway-options.js';
import { sshNativeCrypto } from './native-crypto.js';

export class SshGateway {
  private server: ssh2.Server | undefined;
  private readonly connections: ReadonlyMap<string, SshConnection>;
  private readonly live = new Set<SshClientConnection>();
  private readonly logger: GatewayLogger;
  private boundPort: number | undefined;
  private closing = false;

  constructor(private readonly options: SshGatewayOptions) {
    this.logger = options.logger ?? SILENT_GATEWAY_LOGGER;
    const byName = new Map<string, SshConnection>();
    for (const connection of options.connections) {
      if (byName.has(connection.name)) throw new SshGatewayError('GATEWAY_CONFIG_INVALID', `connection ${connection.name} is configured twice`);
      byName.set(connection.name, connection);
    }
    this.connections = byName;
  }

  /** Loads the shell parser (decisions are synchronous afterwards), then listens; resolves with the bound port. */
  async listen(): Promise<number> {
    await shellLanguage.ready();
    const server = new ssh2.Server({ hostKeys: [this.options.hostKey.privateKey], ident: 'Custodian' }, (client, info) => this.accept(client, info));
    this.server = server;
    // ssh2's Server listens through a net.Server and forwards its events; its types do not say so.
    this.boundPort = await listenOn(server as unknown as Server, this.options.port, this.options.host);
    this.logger.info({ host: this.options.host, port: this.boundPort, hostKeyFingerprint: this.options.hostKey.fingerprint, nativeCrypto: sshNativeCrypto() }, 'ssh gateway listening');
    return this.boundPort;
  }

  get port(): number {
    if (this.boundPort === undefined) throw new SshGatewayError('GATEWAY_CONFIG_INVALID', 'the gateway is not listening');
    return this.boundPort;
  }

  get host(): string {
    return this.options.host;
  }

  /** Client connections currently open (authenticated or not). */
  get connectionCount(): number {
    return this.live.size;
  }

  /** Stops accepting and ends every client connection (their sessions close). */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const server = this.server;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    await Promise.all([...this.live].map((connection) => connection.shutdown()));
    await closed;
  }

  private accept(client: ssh2.Connection, info: ssh2.ClientInfo): void {
    if (this.closing) {
      client.end();
      return;
    }
    // Keystrokes are single small packets: without TCP_NODELAY, Nagle and delayed ACKs add ~40 ms
    // per key on each of the two hops (OpenSSH sets it for interactive sessions too).
    // (@types/ssh2 omits the server connection's setNoDelay; ssh2 has it.)
    (client as ssh2.Connection & { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    const connection = new SshClientConnection(client, info, {
      connections: this.connections,
      pipeline: this.options.pipeline,
      logger: this.logger,
      loginTimeoutMs: this.options.loginTimeoutMs ?? 30_000,
      maxChannels: this.options.maxChannels ?? 10,
      unverifiableLines: this.options.unverifiableLines ?? 'agent-refuses',
      onEnded: () => this.live.delete(connection),
    });
    this.live.add(connection);
  }
}
