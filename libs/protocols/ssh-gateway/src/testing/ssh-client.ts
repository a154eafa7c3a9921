// Test-only: an ssh2 client session through the gateway that runs exec commands and keeps every
// channel byte the gateway sent it (stdout and stderr in arrival order), the SSH equivalent of
// the recording relay (the transport is encrypted; the custody digest covers channel data).
import ssh2 from 'ssh2';

export interface ExecResult {
  readonly code: number | null;
  readonly signal: string | undefined;
  readonly stdout: string;
  readonly stderr: string;
}

export interface GatewayClientOptions {
  readonly host: string;
  readonly port: number;
  readonly connection: string;
  readonly token: string;
  /** Present the token through keyboard-interactive instead of as the password. */
  readonly keyboardInteractive?: boolean;
  /** `ssh-ed25519 AAAA…` of the gateway: the client checks it. */
  readonly gatewayHostKey: string;
}

export class GatewaySshClient {
  private readonly received: Buffer[] = [];

  private constructor(readonly client: ssh2.Client) {}

  static connect(options: GatewayClientOptions): Promise<GatewaySshClient> {
    const client = new ssh2.Client();
    const expected = Buffer.from(options.gatewayHostKey.split(' ')[1] ?? '', 'base64');
    return new Promise((resolve, reject) => {
      client.once('ready', () => {
        client.removeAllListeners('error');
        client.on('error', () => undefined);
        resolve(new GatewaySshClient(client));
      });
      client.once('error', reject);
      if (options.keyboardInteractive) client.on('keyboard-interactive', (_name, _instructions, _lang, prompts, finish) => finish(prompts.map(() => options.token)));
      client.connect({
        host: options.host,
        port: options.port,
        username: options.connection,
        ...(options.keyboardInteractive ? { tryKeyboard: true } : { password: options.token }),
        hostVerifier: (key: Buffer) => key.equals(expected),
        readyTimeout: 20_000,
      });
    });
  }

  exec(command: string, options: { stdin?: string; pty?: boolean } = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, options.pty ? { pty: true } : {}, (error, stream) => {
        if (error) return reject(error);
        let stdout = '';
        let stderr = '';
        let code: number | null = null;
        let signal: string | undefined;
        stream.on('data', (chunk: Buffer) => {
          this.received.push(chunk);
          stdout += chunk.toString('utf8');
        });
        stream.stderr.on('data', (chunk: Buffer) => {
          this.received.push(chunk);
          stderr += chunk.toString('utf8');
        });
        stream.on('exit', (c: number | null, s?: string) => {
          code = c;
          signal = s;
        });
        stream.on('close', () => resolve({ code, signal, stdout, stderr }));
        if (options.stdin !== undefined) stream.end(options.stdin);
        else stream.end();
      });
    });
  }

  /** Every channel byte the gateway sent this client. */
  clientBound(): Buffer {
    return Buffer.concat(this.received);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.client.once('close', () => resolve());
      this.client.end();
      setTimeout(resolve, 5_000).unref();
    });
  }

  disconnect(): void {
    this.client.destroy();
  }
}
