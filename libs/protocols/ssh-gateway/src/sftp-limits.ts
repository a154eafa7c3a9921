// The gateway's SFTP server announces OpenSSH's `limits@openssh.com` extension, as OpenSSH's
// sftp-server does, and answers it. Without it an ssh2 client assumes a non-OpenSSH server takes
// WRITEs of at most 31,952 bytes and sends each 32 KiB chunk of fastPut (its default) as two
// requests, the second only after the first is acknowledged: half the pipelining, a quarter of
// the direct upload rate in the benchmark. OpenSSH's sftp (8.7 and later) sizes its requests
// from the reply too.
//
// ssh2's server-side SFTP has no call for either: its VERSION reply is a fixed packet and it has
// no EXTENDED_REPLY. So this replaces the VERSION packet on its way out (the first packet on the
// channel) and writes the EXTENDED_REPLY to the channel itself, both through ssh2 internals that
// are checked first: if their shape changes, nothing is replaced, the extension is not announced,
// and clients fall back to their defaults (slower, still correct).
import type ssh2 from 'ssh2';

/** What the gateway announces (its SFTP parser takes packets up to 256 KiB; MAX_SFTP_READ is 256 KiB). */
export const SFTP_LIMITS = {
  maxPacketLength: 256 * 1024,
  maxReadLength: 64 * 1024,
  maxWriteLength: 64 * 1024,
} as const;

const LIMITS_EXTENSION = 'limits@openssh.com';
const SSH_FXP_VERSION = 2;
const SSH_FXP_EXTENDED_REPLY = 201;

interface SftpInternals {
  _protocol?: { channelData?: (channel: number, data: Buffer) => void };
  outgoing?: { id?: number; state?: string; window?: number };
  _buffer?: unknown[];
}

interface CheckedInternals {
  readonly protocol: { channelData: (channel: number, data: Buffer) => void };
  readonly outgoing: { id: number; state?: string; window: number };
  readonly buffer: unknown[];
}

function internalsOf(sftp: ssh2.SFTPWrapper): CheckedInternals | undefined {
  const { _protocol: protocol, outgoing, _buffer: buffer } = sftp as unknown as SftpInternals;
  if (!protocol || typeof protocol.channelData !== 'function' || !outgoing || typeof outgoing.id !== 'number' || typeof outgoing.window !== 'number' || !Array.isArray(buffer)) return undefined;
  return { protocol: protocol as CheckedInternals['protocol'], outgoing: outgoing as CheckedInternals['outgoing'], buffer };
}

function uint64(value: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(BigInt(value));
  return out;
}

function packet(type: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat([Buffer.from([type]), ...parts]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  return Buffer.concat([length, body]);
}

function sshString(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** ssh2's fixed VERSION reply (version 3, no extensions). */
const PLAIN_VERSION = packet(SSH_FXP_VERSION, Buffer.from([0, 0, 0, 3]));
/** VERSION 3 announcing limits@openssh.com (extension data "1", as OpenSSH's sftp-server). */
const VERSION_WITH_LIMITS = packet(SSH_FXP_VERSION, Buffer.from([0, 0, 0, 3]), sshString(LIMITS_EXTENSION), sshString('1'));

/**
 * Makes ssh2's server-side SFTP object announce limits@openssh.com in its VERSION reply. Call
 * right after accept(), before the client's INIT is read. Returns false (and changes nothing)
 * when ssh2's internals do not have the expected shape.
 */
export function announceSftpLimits(sftp: ssh2.SFTPWrapper): boolean {
  const internal = sftp as unknown as SftpInternals;
  const internals = internalsOf(sftp);
  if (!internals) return false;
  const protocol = internals.protocol;
  const channelData = protocol.channelData;
  // This channel's writes only: the protocol object is shared by the connection's channels.
  internal._protocol = new Proxy(protocol, {
    get(target, property) {
      if (property === 'channelData') {
        return (channel: number, data: Buffer): void => {
          internal._protocol = protocol; // the VERSION is the first packet; afterwards, ssh2's own object again
          if (channel === internals.outgoing.id && data.equals(PLAIN_VERSION) && internals.outgoing.window >= VERSION_WITH_LIMITS.length - data.length) {
            // ssh2 took the plain packet's length off the client's window; the longer one takes the rest.
            internals.outgoing.window -= VERSION_WITH_LIMITS.length - data.length;
            channelData.call(target, channel, VERSION_WITH_LIMITS);
            return;
          }
          channelData.call(target, channel, data);
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return true;
}

/**
 * Answers a `limits@openssh.com` EXTENDED request with its EXTENDED_REPLY. False when it cannot be
 * written now (ssh2's internals changed, or the client's window holds queued replies): the caller
 * then answers OP_UNSUPPORTED and the client keeps its defaults.
 */
export function replySftpLimits(sftp: ssh2.SFTPWrapper, requestId: number, maxOpenHandles: number): boolean {
  const internals = internalsOf(sftp);
  if (!internals || internals.outgoing.state !== 'open' || internals.buffer.length > 0) return false;
  const id = Buffer.alloc(4);
  id.writeUInt32BE(requestId >>> 0);
  const reply = packet(SSH_FXP_EXTENDED_REPLY, id, uint64(SFTP_LIMITS.maxPacketLength), uint64(SFTP_LIMITS.maxReadLength), uint64(SFTP_LIMITS.maxWriteLength), uint64(maxOpenHandles));
  if (internals.outgoing.window < reply.length) return false;
  internals.outgoing.window -= reply.length;
  internals.protocol.channelData(internals.outgoing.id, reply);
  return true;
}

export { LIMITS_EXTENSION };
