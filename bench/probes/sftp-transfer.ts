// Child process of the ssh-gateway benchmark: one ssh2 SFTP client uploading (`put`, fastPut) or
// downloading (`get`, fastGet) one file, 64 requests of 32 KiB in flight, so that the client's
// own work (its ciphers, its SFTP framing) runs on another thread than the gateway's, as in use
// (in the benchmark's process they would share one event loop and the gateway's figure would
// include the client's cost). The same probe runs direct and through the gateway.
// Connection setup is not timed. Prints one JSON line: {"seconds": …, "cpuSeconds": …} (this
// process's CPU time, user + system, during the transfer).
//   scripts/node24 node bench/probes/sftp-transfer.ts <put|get> <config json> <local file> <remote path>
// config: ssh2 ConnectConfig fields host, port, username and password or privateKeyPath.
import { readFileSync } from 'node:fs';
import ssh2 from 'ssh2';

const [direction, configText, local, remote] = process.argv.slice(2);
if ((direction !== 'put' && direction !== 'get') || configText === undefined || local === undefined || remote === undefined) {
  process.stderr.write('usage: sftp-transfer.ts <put|get> <config json> <local file> <remote path>\n');
  process.exit(2);
}
const { privateKeyPath, ...config } = JSON.parse(configText) as ssh2.ConnectConfig & { privateKeyPath?: string };
const client = new ssh2.Client();
await new Promise<void>((resolve, reject) => {
  client.once('ready', () => resolve());
  client.once('error', reject);
  client.connect({ readyTimeout: 60_000, ...config, ...(privateKeyPath ? { privateKey: readFileSync(privateKeyPath) } : {}) });
});
const sftp = await new Promise<ssh2.SFTPWrapper>((resolve, reject) => client.sftp((error, s) => (error ? reject(error) : resolve(s))));
const options = { concurrency: 64, chunkSize: 32 * 1024 };
const started = process.hrtime.bigint();
const cpuBefore = process.cpuUsage();
await new Promise<void>((resolve, reject) => {
  const done = (error: Error | null | undefined): void => (error ? reject(error) : resolve());
  if (direction === 'put') sftp.fastPut(local, remote, options, done);
  else sftp.fastGet(remote, local, options, done);
});
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const cpu = process.cpuUsage(cpuBefore);
sftp.end();
client.end();
process.stdout.write(`${JSON.stringify({ seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 })}\n`);
