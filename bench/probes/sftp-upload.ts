// Child process of the ssh-gateway benchmark: one ssh2 SFTP client uploading a file, so that the
// client's own work (its ciphers, its SFTP framing) runs on another thread than the gateway's, as
// in use (in the benchmark's process they would share one event loop and the gateway's figure
// would include the client's cost). The same probe uploads direct and through the gateway.
// Connection setup is not timed. Prints one JSON line: {"seconds": …}.
//   scripts/node24 node bench/probes/sftp-upload.ts <config json> <local file> <remote path>
// config: ssh2 ConnectConfig fields host, port, username and password or privateKeyPath.
import { readFileSync } from 'node:fs';
import ssh2 from 'ssh2';

const [configText, local, remote] = process.argv.slice(2);
if (configText === undefined || local === undefined || remote === undefined) {
  process.stderr.write('usage: sftp-upload.ts <config json> <local file> <remote path>\n');
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
const started = process.hrtime.bigint();
await new Promise<void>((resolve, reject) => sftp.fastPut(local, remote, { concurrency: 64, chunkSize: 32 * 1024 }, (error) => (error ? reject(error) : resolve())));
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
sftp.end();
client.end();
process.stdout.write(`${JSON.stringify({ seconds })}\n`);
