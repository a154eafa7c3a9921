// Throughput of the masking engine: MB/s scanned with all detectors vs a single plain regex over
// the same text. Plain node script, not a test:
//   scripts/node24 node libs/masking/bench/masking.bench.ts [megabytes]
import { registerSourceResolution } from '../scripts/source-resolution.ts';

registerSourceResolution();
const { createStreamMasker, DetectionProfile, DETECTOR_IDS } = await import('../src/index.ts');
const { SeededRandom } = await import('../src/corpus/seeded-random.ts');

const megabytes = Number(process.argv[2] ?? 16);
const total = megabytes * 1024 * 1024;
const CHUNK = 64 * 1024;

interface Workload {
  readonly name: string;
  readonly pieces: readonly string[];
}

const WORKLOADS: readonly Workload[] = [
  { name: 'prose (LLM output, rare PII)', pieces: ['The quick brown fox jumps over the lazy dog. ', 'Results were summarised in the quarterly report. ', 'Revenue grew by 12% in 2024. ', 'Contact support@example.com for help. '] },
  { name: 'JSON rows (dense PII)', pieces: ['{"id":12345,"email":"john.smith@example.com","ip":"10.1.2.3","card":"4111 1111 1111 1111"},', '{"id":12346,"name":"Maria Rossi","phone":"+1 212 555 0123","updated":"2024-01-15T10:30:00Z"},'] },
  { name: 'SQL result TSV (ids, dates)', pieces: ['1042\t2024-01-15\tshipped\t19.99\tEUR\n', '1043\t2024-01-16\tpending\t5.00\tUSD\n', 'a3f1c2d4e5b6a7c8\tok\n'] },
];

function makeChunks(pieces: readonly string[]): string[] {
  const rnd = new SeededRandom(42);
  return Array.from({ length: 8 }, () => {
    let s = '';
    while (s.length < CHUNK) s += rnd.pick(pieces);
    return s;
  });
}

function time(run: () => void): number {
  const start = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

const mbps = (seconds: number): string => (total / 1024 / 1024 / seconds).toFixed(1);

console.log(`node ${process.version}, ${megabytes} MiB per run, ${CHUNK / 1024} KiB chunks`);
for (const workload of WORKLOADS) {
  const chunks = makeChunks(workload.pieces);
  const plain = /[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{4}/g;
  let plainHits = 0;
  const plainSeconds = time(() => {
    for (let done = 0, i = 0; done < total; i++, done += CHUNK) plainHits += (chunks[i % chunks.length] as string).match(plain)?.length ?? 0;
  });
  const rows: string[] = [`  single regex (card shape)        ${mbps(plainSeconds).padStart(8)} MB/s  (${plainHits} hits)`];
  const configs: readonly [string, readonly (typeof DETECTOR_IDS)[number][]][] = [
    ['all detectors', DETECTOR_IDS],
    ['all but secret (secretlint)', DETECTOR_IDS.filter((d) => d !== 'secret')],
    ['card+iban+ssn+email+ip only', ['card', 'iban', 'ssn', 'email', 'ipv4', 'ipv6']],
  ];
  for (const [name, enabled] of configs) {
    const profile = new DetectionProfile({ enabled });
    const masker = createStreamMasker({ profile });
    const seconds = time(() => {
      for (let done = 0, i = 0; done < total; i++, done += CHUNK) masker.push(chunks[i % chunks.length] as string);
      masker.end();
    });
    rows.push(`  ${name.padEnd(32)} ${mbps(seconds).padStart(8)} MB/s  (${masker.findings().total} maskings)`);
  }
  console.log(`\n${workload.name}`);
  for (const r of rows) console.log(r);
}
