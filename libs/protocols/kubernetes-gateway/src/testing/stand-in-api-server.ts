// Test-only: a STAND-IN Kubernetes API server. A real API server with a kubelet and a container
// runtime cannot run on these machines, so this small server implements just the exec
// subresource with the real framing (WebSocket, v5/v4.channel.k8s.io, channel bytes, the Status
// on channel 3 with the ExitCode cause, v5 close for stdin) and runs the command as a local child
// process (as Teleport's kube proxy tests do with their mock). It serves TLS with a certificate
// from the test cluster CA and checks the caller's bearer token or client certificate: the
// credential the gateway holds. Every exec it accepts is logged (the upstream observation point).
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import { Channel, V5_PROTOCOL, chooseProtocol, encodeChannelMessage, exitStatus } from '../channel-protocol.js';

export interface StandInExec {
  readonly namespace: string;
  readonly pod: string;
  readonly container: string | undefined;
  readonly command: readonly string[];
  readonly tty: boolean;
  readonly protocol: string;
  /** How the caller authenticated: `token` or `client-certificate:<CN>`. */
  readonly authenticatedBy: string;
  /** Everything the process was given on stdin so far, and the resize messages received. */
  stdin: string;
  resizes: string[];
  exitCode?: number;
}

export interface StandInApiServerOptions {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** The bearer token it accepts (the gateway's held credential). */
  readonly token?: string;
  /** CA whose client certificates it accepts, and the CN it requires. */
  readonly clientCa?: Buffer;
  readonly clientCommonName?: string;
  /** Extra environment for the commands (e.g. PII the conformance suite expects in output). */
  readonly env?: Readonly<Record<string, string>>;
  /** Sends this message as-is right after the upgrade (a hostile upstream). */
  readonly hostileFirstMessage?: Buffer;
}

export interface StandInApiServer {
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Every exec accepted, in order. */
  readonly execs: readonly StandInExec[];
  /** Every authenticated pod GET (`namespace/pod`), in order. */
  readonly podGets: readonly string[];
  /** Log reads that reached the stand-in (`ns/pod?query`). */
  readonly logGets: readonly string[];
  /** Requests refused for authentication (count). */
  readonly refused: number;
  /** The working directory commands run in. */
  readonly workdir: string;
  close(): Promise<void>;
}

/** Output bytes the stand-in lets wait in a WebSocket before it stops reading the command. */
const STAND_IN_MAX_QUEUED = 1024 * 1024;
const EXEC_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/exec$/;
const POD_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/;
const LOG_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/log$/;

/** An email address in every stand-in pod's log: what masking must redact on the way to the client. */
export const STAND_IN_LOG_EMAIL = 'log-user@example.com';

/** An environment value in every stand-in pod's spec: what a pod GET through the gateway must never show. */
export const STAND_IN_POD_SECRET = 'stand-in-pod-env-secret-value';

/** Pods named `multi-…` have two containers (app, sidecar); the others only `app`. */
function containersOf(name: string): string[] {
  return name.startsWith('multi-') ? ['app', 'sidecar'] : ['app'];
}

/** A pod as a real API server returns it (trimmed), with an env value and a volume the gateway must not pass on. */
function standInPod(namespace: string, name: string): unknown {
  const names = containersOf(name);
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: { name, namespace, uid: `uid-${namespace}-${name}`, resourceVersion: '1', labels: { app: name }, annotations: { 'kubectl.kubernetes.io/default-container': 'app', 'example.com/secret-annotation': STAND_IN_POD_SECRET } },
    spec: {
      containers: names.map((container) =>
        container === 'app' ? { name: 'app', image: 'busybox:1.36', env: [{ name: 'DB_PASSWORD', value: STAND_IN_POD_SECRET }], volumeMounts: [{ name: 'secrets', mountPath: '/secrets' }] } : { name: container, image: 'busybox:1.36' },
      ),
      volumes: [{ name: 'secrets', secret: { secretName: 'db' } }],
      nodeName: 'stand-in-node',
    },
    status: { phase: 'Running', podIP: '10.0.0.7', containerStatuses: names.map((container) => ({ name: container, ready: true, started: true, restartCount: 0, image: 'busybox:1.36' })) },
  };
}

export async function startStandInApiServer(options: StandInApiServerOptions): Promise<StandInApiServer> {
  const workdir = await mkdtemp(join(tmpdir(), 'stand-in-apiserver-'));
  const execs: StandInExec[] = [];
  let refused = 0;
  const children = new Set<ReturnType<typeof spawn>>();
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (offered) => chooseProtocol(offered) ?? false });
  const podGets: string[] = [];
  const logGets: string[] = [];
  const server: Server = createServer({ cert: options.cert, key: options.key, ...(options.clientCa ? { ca: options.clientCa, requestCert: true, rejectUnauthorized: false } : {}) }, (request, response) => {
    const send = (status: number, body: unknown): void => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    const url = new URL(request.url ?? '/', 'https://stand-in');
    const log = LOG_PATH.exec(url.pathname);
    const match = POD_PATH.exec(url.pathname);
    if ((!match && !log) || request.method !== 'GET') return send(404, { kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404 });
    if (!authenticate(request)) {
      refused++;
      return send(401, { kind: 'Status', status: 'Failure', reason: 'Unauthorized', code: 401 });
    }
    if (log) {
      // A pod's log: a few lines naming the pod and container, one with an email address (for masking tests).
      const [namespace, pod] = [decodeURIComponent(log[1]!), decodeURIComponent(log[2]!)];
      logGets.push(`${namespace}/${pod}?${url.searchParams.toString()}`);
      if (pod.startsWith('missing-')) return send(404, { kind: 'Status', status: 'Failure', reason: 'NotFound', message: `pods "${pod}" not found`, code: 404 });
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.end(`started ${namespace}/${pod} container ${url.searchParams.get('container') ?? 'app'}\nuser signed up: ${STAND_IN_LOG_EMAIL}\nready\n`);
      return;
    }
    if (!match) return send(404, { kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404 });
    const [namespace, pod] = [decodeURIComponent(match[1]!), decodeURIComponent(match[2]!)];
    podGets.push(`${namespace}/${pod}`);
    if (pod.startsWith('missing-')) return send(404, { kind: 'Status', status: 'Failure', reason: 'NotFound', message: `pods "${pod}" not found`, code: 404 });
    send(200, standInPod(namespace, pod));
  });

  const authenticate = (request: IncomingMessage): string | undefined => {
    if (options.token !== undefined && request.headers.authorization === `Bearer ${options.token}`) return 'token';
    const socket = request.socket as TLSSocket;
    if (options.clientCa && socket.authorized) {
      const cn = socket.getPeerCertificate().subject?.CN;
      if (cn !== undefined && cn === options.clientCommonName) return `client-certificate:${cn}`;
    }
    return undefined;
  };

  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => undefined);
    const url = new URL(request.url ?? '/', 'https://stand-in');
    const match = EXEC_PATH.exec(url.pathname);
    const deny = (status: number, text: string): void => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{"kind":"Status","status":"Failure","code":${status}}`);
    };
    if (!match) return deny(404, 'Not Found');
    const authenticatedBy = authenticate(request);
    if (!authenticatedBy) {
      refused++;
      return deny(401, 'Unauthorized');
    }
    const command = url.searchParams.getAll('command');
    if (command.length === 0) return deny(400, 'Bad Request');
    // As the API server: without a container, only a pod with one container can run the exec.
    if (!url.searchParams.get('container') && containersOf(decodeURIComponent(match[2]!)).length > 1) return deny(400, 'Bad Request');
    wss.handleUpgrade(request, socket, head, (ws) => {
      const exec: StandInExec = {
        namespace: decodeURIComponent(match[1]!),
        pod: decodeURIComponent(match[2]!),
        container: url.searchParams.get('container') || undefined,
        command,
        tty: url.searchParams.get('tty') === 'true',
        protocol: ws.protocol,
        authenticatedBy,
        stdin: '',
        resizes: [],
      };
      execs.push(exec);
      run(ws, exec, url.searchParams.get('stdin') === 'true');
    });
  });

  function run(ws: WebSocket, exec: StandInExec, withStdin: boolean): void {
    if (options.hostileFirstMessage) ws.send(options.hostileFirstMessage);
    const child = spawn(exec.command[0]!, exec.command.slice(1), { cwd: workdir, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', POD: exec.pod, NAMESPACE: exec.namespace, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    const stdinDecoder = new TextDecoder();
    // A tty exec: a real container runtime gives the command a pty; the stand-in models the
    // pty's canonical-mode line editing (no echo) so that what the command reads is what a shell
    // on a terminal would run.
    const cooked = exec.tty ? new CookedLines() : undefined;
    if (!withStdin) child.stdin.end();
    child.stdin.on('error', () => undefined);
    // Backpressure as an API server has it: the command's output is read only as fast as the
    // WebSocket drains (so that a test of the gateway's memory measures the gateway, not this).
    let queued = 0;
    const relay = (channel: number) => (chunk: Buffer) => {
      queued += chunk.length;
      if (queued > STAND_IN_MAX_QUEUED) {
        child.stdout.pause();
        child.stderr.pause();
      }
      ws.send(encodeChannelMessage(channel, chunk), () => {
        queued -= chunk.length;
        if (queued <= STAND_IN_MAX_QUEUED / 2) {
          child.stdout.resume();
          child.stderr.resume();
        }
      });
    };
    child.stdout.on('data', relay(Channel.stdout));
    child.stderr.on('data', relay(Channel.stderr));
    ws.on('message', (data: Buffer) => {
      const channel = data[0];
      const payload = data.subarray(1);
      if (channel === Channel.stdin && withStdin) {
        exec.stdin += stdinDecoder.decode(payload, { stream: true });
        child.stdin.write(cooked ? cooked.push(payload) : payload);
      } else if (channel === Channel.resize) exec.resizes.push(payload.toString('utf8'));
      else if (channel === Channel.close && ws.protocol === V5_PROTOCOL && payload[0] === Channel.stdin) child.stdin.end();
    });
    ws.on('close', () => {
      // The client went away (v4 has no half-close: closing the socket ends stdin too).
      child.stdin.end();
      if (child.exitCode === null) child.kill('SIGTERM');
    });
    let spawnError: Error | undefined;
    child.on('error', (error) => (spawnError = error));
    child.on('close', (code, signal) => {
      children.delete(child);
      const exitCode = spawnError ? 127 : (code ?? (signal ? 128 + 15 : 1));
      exec.exitCode = exitCode;
      if (ws.readyState !== ws.OPEN) return;
      const message = spawnError
        ? `failed to exec in container: ${spawnError.message}`
        : `command terminated with non-zero exit code: error executing command [${exec.command.join(' ')}], exit code ${exitCode}`;
      ws.send(encodeChannelMessage(Channel.error, JSON.stringify(exitStatus(exitCode, message))), () => ws.close(1000));
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    execs,
    podGets,
    logGets,
    get refused() {
      return refused;
    },
    workdir,
    async close() {
      for (const child of children) child.kill('SIGKILL');
      for (const client of wss.clients) client.terminate();
      wss.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await rm(workdir, { recursive: true, force: true });
    },
  };
}

/**
 * The line discipline of a pty in canonical mode, as far as a shell's input goes: a line is
 * delivered at CR or NL (CR becomes NL, ICRNL), ^U (VKILL) discards the line typed so far, DEL and
 * ^H (VERASE) erase one character; everything else (^E included) is part of the line. No echo.
 */
export class CookedLines {
  private line: number[] = [];

  push(bytes: Uint8Array): Buffer {
    const out: number[] = [];
    for (const byte of bytes) {
      if (byte === 0x0d || byte === 0x0a) {
        out.push(...this.line, 0x0a);
        this.line = [];
      } else if (byte === 0x15) this.line = [];
      else if (byte === 0x7f || byte === 0x08) this.line.pop();
      else this.line.push(byte);
    }
    return Buffer.from(out);
  }
}
