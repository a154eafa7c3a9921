// Hostile clients and refused API calls against the Kubernetes gateway (in front of the STAND-IN
// API server): raw WebSocket clients sending unknown channels and oversized messages, SPDY,
// unsupported subprotocols, the pod subresources that are not served, and a scan of every byte
// the clients received, every event and every log line for the held cluster credential.
import { request as httpsRequest } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { CustodianEvent } from '@custodian/event-contracts';
import { scanForSecrets } from '@custodian/gateway-conformance';
import { Channel, encodeChannelMessage } from './channel-protocol.js';
import { CLUSTER, CERT_CLUSTER, startKubernetesFixture, type KubernetesFixture } from './testing/gateway-fixture.js';

let fixture: KubernetesFixture;
/** Every message any raw client here received (for the secrecy scan). */
const received: Buffer[] = [];

beforeAll(async () => {
  fixture = await startKubernetesFixture({ gateway: { maxMessageBytes: 64 * 1024 } });
}, 60_000);

afterAll(async () => {
  await fixture?.stop();
});

function gatewayUrl(path: string, cluster = CLUSTER): string {
  return `wss://127.0.0.1:${fixture.gateway.port}/clusters/${cluster}${path}`;
}

interface RawExec {
  readonly socket: WebSocket;
  readonly messages: Buffer[];
  readonly closed: Promise<{ code: number }>;
}

async function rawExec(token: string, query: string, protocols: string[] = ['v5.channel.k8s.io']): Promise<RawExec> {
  const socket = new WebSocket(gatewayUrl(`/api/v1/namespaces/default/pods/web-0/exec?${query}`), protocols, { ca: fixture.pki.ca, headers: { Authorization: `Bearer ${token}` } });
  const messages: Buffer[] = [];
  socket.on('message', (data: Buffer) => {
    messages.push(data);
    received.push(data);
  });
  const closed = new Promise<{ code: number }>((resolve) => socket.on('close', (code) => resolve({ code })));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return { socket, messages, closed };
}

/** An HTTPS request to the gateway; resolves with status and body. */
function httpCall(path: string, headers: Record<string, string>, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest({ host: '127.0.0.1', port: fixture.gateway.port, path: `/clusters/${CLUSTER}${path}`, method, headers, ca: fixture.pki.ca }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      response.on('end', () => {
        received.push(Buffer.from(body));
        resolve({ status: response.statusCode ?? 0, body });
      });
    });
    request.on('error', reject);
    request.end();
  });
}

function statusOf(messages: readonly Buffer[]): { message?: string; reason?: string } | undefined {
  const status = messages.find((m) => m[0] === Channel.error);
  return status ? (JSON.parse(status.subarray(1).toString('utf8')) as { message?: string; reason?: string }) : undefined;
}

describe('Kubernetes gateway: hostile clients and refused calls (stand-in API server)', () => {
  it('ends an exec whose client writes on an unknown channel, with a BadRequest Status naming it', async () => {
    const exec = await rawExec(await fixture.token(), 'command=cat&stdin=true&stdout=true&stderr=true');
    exec.socket.send(encodeChannelMessage(Channel.stdin, 'before\n'));
    exec.socket.send(Buffer.from([7, 1, 2, 3]));
    const { code } = await exec.closed;
    expect(code).toBe(1000);
    const status = statusOf(exec.messages);
    expect(status?.reason).toBe('BadRequest');
    expect(status?.message).toContain('CHANNEL_UNKNOWN');
    expect(status?.message).toContain('custodian:protocol-violation');
  });

  it('ends an exec whose client writes on the error channel (wrong direction)', async () => {
    const exec = await rawExec(await fixture.token(), 'command=cat&stdin=true&stdout=true');
    exec.socket.send(encodeChannelMessage(Channel.error, '{"status":"Success"}'));
    await exec.closed;
    expect(statusOf(exec.messages)?.message).toContain('CHANNEL_WRONG_DIRECTION');
  });

  it('refuses an oversized message (WebSocket close 1009) and records the session as ended in error', async () => {
    const exec = await rawExec(await fixture.token(), 'command=cat&stdin=true&stdout=true&stderr=true');
    exec.socket.send(encodeChannelMessage(Channel.stdin, Buffer.alloc(128 * 1024, 0x61)));
    const { code } = await exec.closed;
    expect(code).toBe(1009);
    const deadline = Date.now() + 10_000;
    let closed: CustodianEvent | undefined;
    while (!closed && Date.now() < deadline) {
      closed = (await fixture.events()).find((e) => e.type === 'session.closed' && e.payload.reason === 'error' && e.payload.errorCode === 'MESSAGE_TOO_LARGE');
      if (!closed) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(closed).toBeDefined();
  });

  it('refuses SPDY naming the WebSocket subprotocols it speaks', async () => {
    const result = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = httpsRequest(
        {
          host: '127.0.0.1',
          port: fixture.gateway.port,
          path: `/clusters/${CLUSTER}/api/v1/namespaces/default/pods/web-0/exec?command=ls&stdout=true`,
          method: 'POST',
          ca: fixture.pki.ca,
          headers: { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'v4.channel.k8s.io', Authorization: `Bearer ${fixture.upstreamToken.slice(0, 4)}` },
        },
        (response) => {
          let body = '';
          response.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
        },
      );
      request.on('error', reject);
      request.end();
    });
    expect(result.status).toBe(400);
    expect(result.body).toContain('v5.channel.k8s.io or v4.channel.k8s.io');
    expect(result.body).toContain('SPDY');
  });

  it('refuses a WebSocket client that offers only older channel protocols', async () => {
    const socket = new WebSocket(gatewayUrl('/api/v1/namespaces/default/pods/web-0/exec?command=ls&stdout=true'), ['v3.channel.k8s.io', 'channel.k8s.io'], { ca: fixture.pki.ca, headers: { Authorization: `Bearer ${await fixture.token()}` } });
    const status = await new Promise<number>((resolve) => {
      socket.on('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
      socket.on('error', () => undefined);
    });
    expect(status).toBe(400);
  });

  it('refuses logs, attach, port-forward, pod lists and writes with a Status naming what is served', async () => {
    const headers = { Authorization: `Bearer ${await fixture.token()}` };
    for (const path of ['/api/v1/namespaces/default/pods', '/apis/apps/v1/namespaces/default/deployments']) {
      const result = await httpCall(path, headers);
      expect(result.status, path).toBe(403);
      expect(JSON.parse(result.body)).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'Forbidden' });
      expect(result.body).toContain('only pods/exec');
    }
    const deleted = await httpCall('/api/v1/namespaces/default/pods/web-0', headers, 'DELETE');
    expect(deleted.status).toBe(403);
    expect(deleted.body).toContain('pods (DELETE) is not served');
    for (const subresource of ['attach', 'portforward']) {
      const socket = new WebSocket(gatewayUrl(`/api/v1/namespaces/default/pods/web-0/${subresource}?stdout=true`), ['v5.channel.k8s.io'], { ca: fixture.pki.ca, headers });
      const status = await new Promise<number>((resolve) => {
        socket.on('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
        socket.on('error', () => undefined);
      });
      expect(status, subresource).toBe(403);
    }
    expect(fixture.apiServer.execs.length).toBe(fixture.apiServer.execs.filter((e) => e.command[0] === 'cat').length);
  });

  it('serves discovery to authenticated clients only', async () => {
    const ok = await httpCall('/api', { Authorization: `Bearer ${await fixture.token()}` });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ kind: 'APIVersions', versions: ['v1'] });
    const anonymous = await httpCall('/api', {});
    expect(anonymous.status).toBe(401);
  });

  it('the held cluster credentials never appear in a client byte, an event or a log line', async () => {
    // One more successful exec over each credential kind, so there is something to scan.
    expect((await fixture.exec(await fixture.token(), 'default', 'web-0', ['echo', 'scan-me'])).stdout).toBe('scan-me\n');
    expect((await fixture.exec(await fixture.token(), 'default', 'web-0', ['echo', 'scan-me-too'], { cluster: CERT_CLUSTER })).stdout).toBe('scan-me-too\n');
    const secrets = [
      { name: 'the cluster bearer token', value: fixture.upstreamToken },
      { name: 'the client certificate key', value: fixture.pki.clientKey.toString('utf8').split('\n').filter((l) => l && !l.startsWith('-----')).join('') },
    ];
    expect(received.length).toBeGreaterThan(0);
    expect(scanForSecrets(received.map((data, i) => ({ where: `client message ${i}`, data })), secrets)).toEqual([]);
    const events = await fixture.events();
    expect(scanForSecrets(events.map((e, i) => ({ where: `event ${i} (${e.type})`, data: JSON.stringify(e) })), secrets)).toEqual([]);
    expect(scanForSecrets(events.flatMap((e, i) => (e.type === 'frame.recorded' ? [{ where: `frame ${i}`, data: Buffer.from(e.payload.data, 'base64') }] : [])), secrets)).toEqual([]);
    expect(fixture.logLines.length).toBeGreaterThan(0);
    expect(scanForSecrets(fixture.logLines.map((data, i) => ({ where: `log line ${i}`, data })), secrets)).toEqual([]);
    const attested = events.filter((e) => (e.type as string) === 'custody.attested').map((e) => (e.payload as { exposed?: boolean }).exposed);
    expect(attested.length).toBeGreaterThanOrEqual(2);
    expect(attested.every((exposed) => exposed === false)).toBe(true);
  });
});
