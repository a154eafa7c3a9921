// A credential the gateway holds (an upstream password, an API key, a signing key) named by
// reference in the configuration and read at each use: a rotated secret applies to the next
// login, and the value never sits in a config object. Only the reference (`env:NAME`,
// `file:/path`) appears in events and logs.
import { open } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';

/** The configuration's secret reference (runtime-config's SecretRef): an environment variable or a file. */
export type CredentialSource = { readonly fromEnv: string } | { readonly fromFile: string };

export type CredentialErrorCode = 'CREDENTIAL_UNSET' | 'CREDENTIAL_UNREADABLE' | 'CREDENTIAL_EMPTY' | 'CREDENTIAL_TOO_LARGE';

/** A credential that cannot be read. The message names the reference, never a value. */
export class CredentialError extends Error {
  override readonly name = 'CredentialError';
  constructor(
    readonly code: CredentialErrorCode,
    readonly ref: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface CredentialReferenceOptions {
  /** Directory relative `fromFile` paths resolve against (the config file's directory). */
  readonly baseDir?: string;
  /** Environment `fromEnv` reads from at each read (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Largest credential file read (default 1 MiB): a reference to the wrong file cannot exhaust memory. */
  readonly maxBytes?: number;
}

const DEFAULT_MAX_BYTES = 1024 * 1024;

export class CredentialReference {
  /** `env:NAME` or `file:/absolute/path`: what events say about the credential. */
  readonly ref: string;
  private readonly path: string | undefined;
  private readonly variable: string | undefined;
  private readonly env: Readonly<Record<string, string | undefined>> | undefined;
  private readonly maxBytes: number;

  private constructor(source: CredentialSource, options: CredentialReferenceOptions) {
    if ('fromEnv' in source) {
      this.variable = source.fromEnv;
      this.ref = `env:${source.fromEnv}`;
    } else {
      this.path = isAbsolute(source.fromFile) ? source.fromFile : resolve(options.baseDir ?? process.cwd(), source.fromFile);
      this.ref = `file:${this.path}`;
    }
    this.env = options.env;
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  }

  static from(source: CredentialSource, options: CredentialReferenceOptions = {}): CredentialReference {
    return new CredentialReference(source, options);
  }

  /** The credential as text (UTF-8), read now; a file's one trailing newline is dropped (secret files are usually written with `echo`). */
  async read(): Promise<string> {
    const bytes = await this.readBytes();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  }

  /** The credential's bytes, read now (a file without its one trailing newline; a variable as UTF-8). */
  async readBytes(): Promise<Uint8Array> {
    if (this.variable !== undefined) {
      const value = (this.env ?? process.env)[this.variable];
      if (value === undefined || value === '') throw new CredentialError('CREDENTIAL_UNSET', this.ref, `credential ${this.ref}: environment variable ${this.variable} is not set`);
      return Buffer.from(value, 'utf8');
    }
    const bytes = await this.readFile(this.path!);
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === 0x0a) end -= 1;
    if (end > 0 && bytes[end - 1] === 0x0d) end -= 1;
    if (end === 0) throw new CredentialError('CREDENTIAL_EMPTY', this.ref, `credential ${this.ref}: the file is empty`);
    return bytes.subarray(0, end);
  }

  toString(): string {
    return this.ref;
  }

  private async readFile(path: string): Promise<Buffer> {
    let handle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      throw new CredentialError('CREDENTIAL_UNREADABLE', this.ref, `credential ${this.ref} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'EIO'})`, { cause: error });
    }
    try {
      // One byte more than allowed tells "too large" from "exactly the limit" without trusting stat.
      const buffer = Buffer.alloc(this.maxBytes + 1);
      let length = 0;
      for (;;) {
        const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
        if (bytesRead === 0) break;
        length += bytesRead;
        if (length > this.maxBytes) throw new CredentialError('CREDENTIAL_TOO_LARGE', this.ref, `credential ${this.ref} is larger than ${this.maxBytes} bytes`);
      }
      return buffer.subarray(0, length);
    } catch (error) {
      if (error instanceof CredentialError) throw error;
      throw new CredentialError('CREDENTIAL_UNREADABLE', this.ref, `credential ${this.ref} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'EIO'})`, { cause: error });
    } finally {
      await handle.close();
    }
  }
}
