// Test-only: a throwaway certificate authority (the "cluster CA") made with openssl, a server
// certificate for 127.0.0.1 signed by it, and a client certificate (the gateway's upstream
// identity when a cluster is configured with client-certificate credentials).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from '@custodian/test-harness';

export interface TestPki {
  readonly ca: Buffer;
  readonly serverCert: Buffer;
  readonly serverKey: Buffer;
  readonly clientCert: Buffer;
  readonly clientKey: Buffer;
  /** A second, unrelated CA (a server certificate from it must fail verification). */
  readonly otherCa: Buffer;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  await runCommand('openssl', args, { cwd: dir, timeoutMs: 30_000 });
}

export async function makeTestPki(clientCommonName = 'custodian-gateway'): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'k8s-pki-'));
  try {
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    await openssl(dir, ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=stand-in-cluster-ca']);
    await openssl(dir, ['req', '-x509', ...ec, '-keyout', 'other.key', '-out', 'other.pem', '-days', '1', '-subj', '/CN=unrelated-ca']);
    await writeFile(join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
    await openssl(dir, ['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=stand-in-apiserver']);
    await openssl(dir, ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'server.ext']);
    await openssl(dir, ['req', ...ec, '-keyout', 'client.key', '-out', 'client.csr', '-subj', `/CN=${clientCommonName}`]);
    await openssl(dir, ['x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.pem', '-days', '1']);
    const read = (name: string): Promise<Buffer> => readFile(join(dir, name));
    return { ca: await read('ca.pem'), serverCert: await read('server.pem'), serverKey: await read('server.key'), clientCert: await read('client.pem'), clientKey: await read('client.key'), otherCa: await read('other.pem') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
