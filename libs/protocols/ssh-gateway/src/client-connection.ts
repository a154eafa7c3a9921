// One client's SSH connection: token authentication (password or keyboard-interactive) through
// the session pipeline, the upstream login, and the channels the client opens. Session channels
// are bridged (SessionChannel); port forwarding, agent forwarding, X11 and subsystems other than
// none are refused with an event.
import type { GatewayLogger } from '@custodian/gateway-kit';
import type { PolicyDecision } from '@custodian/policy';
import { SessionRefusal, type PipelineSession, type SessionPipeline } from '@custodian/session-pipeline';
import type ssh2 from 'ssh2';
import { SshGatewayError } from './gateway-errors.js';
import type { SshConnection, UnverifiableLinePolicy } from './gateway-options.js';
import { SessionChannel } from './session-channel.js';
import { connectUpstream, type UpstreamSsh } from './upstream-connection.js';

export interface ClientConnectionContext {
  readonly connections: ReadonlyMap<string, SshConnection>;
  readonly pipeline: SessionPipeline;
  readonly logger: GatewayLogger;
  readonly loginTimeoutMs: number;
  readonly maxChannels: number;
  readonly unverifiableLines: UnverifiableLinePolicy;
  readonly onEnded: () => void;
}

const AUTH_METHODS: ssh2.AuthenticationType[] = ['password', 'keyboard-interactive'];
/** Token attempts per connection (OpenSSH's MaxAuthTries is 6; tokens are not guessed by hand). */
const MAX_ATTEMPTS = 3;

export class SshClientConnection {
  private session: PipelineSession | undefined;
  private connection: SshConnection | undefined;
  private upstream: Promise<UpstreamSsh> | undefined;
  private upstreamClient: ssh2.Client | undefined;
  private readonly channels = new Set<SessionChannel>();
  private attempts = 0;
  private refusedChannels = 0;
  private nextChannel = 0;
  private ended = false;
  private readonly address: string;
  private readonly loginTimer: NodeJS.Timeout;

  constructor(
    private readonly client: ssh2.Connection,
    private readonly info: ssh2.ClientInfo,
    private readonly context: ClientConnectionContext,
  ) {
    this.address = `${info.ip}:${info.port}`;
    this.loginTimer = setTimeout(() => {
      if (!this.session) this.client.end();
    }, context.loginTimeoutMs);
    client.on('authentication', (ctx) => void this.authenticate(ctx).catch((error: unknown) => this.unexpected(error, () => ctx.reject())));
    client.on('ready', () => this.ready());
    // ssh2 ends the connection on a transport violation (a packet over its 35,000-byte limit, bad
    // MACs, garbage before the key exchange); before login no session exists for an event, so it is logged.
    client.on('error', (error: Error) => {
      if (!this.ended) context.logger.info({ client: this.address, sessionId: this.session?.id, err: error.message.slice(0, 200) }, 'ssh connection error');
    });
    client.on('close', () => void this.end('client-closed'));
  }

  /** Ends the connection (gateway shutdown). */
  async shutdown(): Promise<void> {
    this.client.end();
    await this.end('shutdown');
  }

  private unexpected(error: unknown, then: () => void): void {
    this.context.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'ssh gateway: unexpected failure');
    try {
      then();
    } catch {
      this.client.end();
    }
  }

  private async authenticate(ctx: ssh2.AuthContext): Promise<void> {
    if (this.session || this.ended) {
      ctx.reject();
      return;
    }
    if (ctx.method === 'password') {
      await this.tryToken(ctx, ctx.username, ctx.password, 'password');
    } else if (ctx.method === 'keyboard-interactive') {
      const username = ctx.username;
      ctx.prompt([{ prompt: 'Custodian access token: ', echo: false }], 'Custodian', `Connection ${username}: enter your access token.`, (answers) => {
        void this.tryToken(ctx, username, answers[0] ?? '', 'keyboard-interactive').catch((error: unknown) => this.unexpected(error, () => ctx.reject()));
      });
    } else {
      ctx.reject(AUTH_METHODS);
    }
  }

  private async tryToken(ctx: ssh2.AuthContext, connectionName: string, token: string, presentedAs: 'password' | 'keyboard-interactive'): Promise<void> {
    this.attempts++;
    const connection = this.context.connections.get(connectionName);
    try {
      const authorized = await this.context.pipeline.authenticate({
        protocol: 'ssh',
        presentedAs,
        connection: connectionName,
        connectionExists: connection !== undefined,
        token,
        clientAddress: this.address,
        signal: AbortSignal.timeout(this.context.loginTimeoutMs),
      });
      token = '';
      if (this.ended) return;
      this.session = await this.context.pipeline.openSession(authorized, { address: this.address, application: this.info.header.identRaw.slice(0, 200) });
      this.connection = connection;
      clearTimeout(this.loginTimer);
      ctx.accept();
    } catch (error) {
      token = '';
      if (!(error instanceof SessionRefusal)) throw error;
      this.context.logger.info({ code: error.code, connection: connectionName.slice(0, 100), client: this.address }, 'ssh login refused');
      if (this.attempts >= MAX_ATTEMPTS) {
        ctx.reject();
        this.client.end();
      } else ctx.reject(AUTH_METHODS);
    }
  }

  private ready(): void {
    const session = this.session;
    const connection = this.connection;
    if (!session || !connection) {
      this.client.end();
      return;
    }
    this.upstream = connectUpstream(connection.upstream).then((upstream) => {
      // The value goes to the custody scan only (every client-bound byte and event is checked for it).
      session.credentialInjected(connection.upstream.credentialRef, upstream.method, upstream.secret);
      upstream.secret.fill(0);
      this.upstreamClient = upstream.client;
      if (this.ended) upstream.client.end();
      upstream.client.on('close', () => {
        for (const channel of this.channels) channel.upstreamGone();
        this.client.end();
      });
      this.context.logger.info({ sessionId: session.id, connection: connection.name, subject: session.identity.subject, upstreamHostKey: upstream.hostKeyFingerprint }, 'ssh session opened');
      return upstream;
    });
    this.upstream.catch((error: unknown) => {
      const code = error instanceof SshGatewayError ? error.code : 'UPSTREAM_UNAVAILABLE';
      this.context.logger.warn({ sessionId: session.id, connection: connection.name, code }, `ssh upstream login failed: ${error instanceof Error ? error.message : String(error)}`);
    });

    this.client.on('session', (accept, reject) => {
      if (this.channels.size >= this.context.maxChannels || this.ended) {
        reject();
        // One event per connection (a flood of opens must not become a flood of events); later ones are counted in the log.
        if (!this.ended && this.refusedChannels++ === 0) void this.refuse('session channel', 'custodian:channel-limit', `at most ${this.context.maxChannels} channels are open at once per connection through the Custodian gateway`);
        return;
      }
      const channel = new SessionChannel(accept(), this.nextChannel++, {
        session,
        connection,
        upstream: () => this.upstream!,
        logger: this.context.logger,
        unverifiableLines: this.context.unverifiableLines,
        refuse: (what, ruleId, message) => this.refuse(what, ruleId, message),
        failSession: (code) => void this.end('error', code).then(() => this.client.end()),
        onClosed: () => this.channels.delete(channel),
      });
      this.channels.add(channel);
    });
    this.client.on('tcpip', (_accept, reject, info) => {
      reject();
      void this.refuse(`direct-tcpip ${info.destIP}:${info.destPort}`, 'custodian:port-forwarding-refused', 'port forwarding is not allowed through the Custodian gateway');
    });
    this.client.on('openssh.streamlocal', (_accept, reject, info) => {
      reject();
      void this.refuse(`direct-streamlocal ${info.socketPath}`, 'custodian:port-forwarding-refused', 'socket forwarding is not allowed through the Custodian gateway');
    });
    this.client.on('request', (_accept, reject, name, info) => {
      reject?.();
      const where = 'bindAddr' in info ? ` ${info.bindAddr}:${info.bindPort}` : '';
      void this.refuse(`${name}${where}`, 'custodian:port-forwarding-refused', 'remote port forwarding is not allowed through the Custodian gateway');
    });
  }

  /** Records a request the gateway refuses on its own (forwarding, X11, agent, subsystems) as a blocked command. */
  private async refuse(what: string, ruleId: string, message: string): Promise<void> {
    const session = this.session;
    if (!session || this.ended) return;
    const decision: PolicyDecision = session.gatewayBlock('shell', ruleId, `${what} refused by the gateway`, message);
    await session.issue({ language: 'shell', kind: 'shell', text: what.slice(0, 1000), summary: { request: what.split(' ')[0] }, decision }).catch(() => undefined);
  }

  private async end(reason: 'client-closed' | 'shutdown' | 'error', code?: string): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    if (this.refusedChannels > 0) this.context.logger.warn({ sessionId: this.session?.id, client: this.address, refused: this.refusedChannels }, 'ssh channels refused over the per-connection limit');
    clearTimeout(this.loginTimer);
    for (const channel of this.channels) channel.clientGone();
    this.upstreamClient?.end();
    this.upstream?.then((u) => u.client.end(), () => undefined);
    this.context.onEnded();
    await this.session?.close(reason, code);
  }
}
