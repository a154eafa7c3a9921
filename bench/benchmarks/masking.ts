// Throughput of the streaming masker: MiB/s scanned with all detectors (and two smaller sets)
// against one plain regex scan of the same bytes, on three kinds of traffic.
import { createStreamMasker, DetectionProfile, DETECTOR_IDS, type DetectorId } from '@custodian/masking';
import { BenchmarkError, figure, type Benchmark, type Figure } from '../benchmark.ts';
import { interleavedMedians, MIB, timeSync } from '../measurement.ts';

const NAME = 'masking';
/** The gateway hands the masker network-sized pieces. */
const CHUNK_CHARS = 64 * 1024;

interface Workload {
  readonly name: string;
  readonly pieces: readonly string[];
}

const WORKLOADS: readonly Workload[] = [
  {
    name: 'prose (LLM output, rare PII)',
    pieces: [
      'The quick brown fox jumps over the lazy dog. ',
      'Results were summarised in the quarterly report. ',
      'Revenue grew by 12% in 2024. ',
      'Contact support@example.com for help. ',
    ],
  },
  {
    name: 'JSON rows (dense PII)',
    pieces: [
      '{"id":12345,"email":"john.smith@example.com","ip":"10.1.2.3","card":"4111 1111 1111 1111"},',
      '{"id":12346,"name":"Maria Rossi","phone":"+1 212 555 0123","updated":"2024-01-15T10:30:00Z"},',
    ],
  },
  {
    name: 'SQL result TSV (ids, dates)',
    pieces: ['1042\t2024-01-15\tshipped\t19.99\tEUR\n', '1043\t2024-01-16\tpending\t5.00\tUSD\n', 'a3f1c2d4e5b6a7c8\tok\n'],
  },
];

const DETECTOR_SETS: readonly { readonly key: string; readonly label: string; readonly enabled: readonly DetectorId[] }[] = [
  { key: 'all', label: 'all detectors', enabled: DETECTOR_IDS },
  { key: 'noSecretlint', label: 'all but secret (secretlint rules)', enabled: DETECTOR_IDS.filter((d) => d !== 'secret') },
  { key: 'structured', label: 'card + iban + ssn + email + ip only', enabled: ['card', 'iban', 'ssn', 'email', 'ipv4', 'ipv6'] },
];

/** mulberry32: the same text on every run and machine. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Eight distinct 64 KiB chunks of a workload, cycled to make up the stream. */
function makeChunks(pieces: readonly string[]): string[] {
  const random = seededRandom(42);
  return Array.from({ length: 8 }, () => {
    let s = '';
    while (s.length < CHUNK_CHARS) s += pieces[Math.floor(random() * pieces.length)];
    return s;
  });
}

export const masking: Benchmark = {
  name: NAME,
  description: 'MiB/s through the streaming masker (all detectors, and two smaller sets) vs a single plain regex scan of the same bytes',
  async run({ quick, log }): Promise<Figure[]> {
    const mibPerRun = quick ? 1 : 6;
    const rounds = quick ? 1 : 5;
    const figures: Figure[] = [];
    log(`${WORKLOADS.length} workloads, ${rounds} interleaved round(s) of ${mibPerRun} MiB per candidate`);
    for (const workload of WORKLOADS) {
      const chunks = makeChunks(workload.pieces);
      const chunkBytes = chunks.map((c) => Buffer.byteLength(c));
      // Streams the chunks until `mib` MiB went through `scan`; returns MiB/s.
      const stream = (mib: number, scan: (chunk: string) => void, finish: () => void = () => {}): number => {
        let bytes = 0;
        const seconds = timeSync(() => {
          for (let i = 0; bytes < mib * MIB; i++) {
            scan(chunks[i % chunks.length]!);
            bytes += chunkBytes[i % chunks.length]!;
          }
          finish();
        });
        return bytes / MIB / seconds;
      };

      let plainHits = 0;
      const plain = /[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{4}/g;
      const maskings = new Map<string, number>();
      const candidates = (mib: number): Record<string, () => number> => {
        const measurements: Record<string, () => number> = {
          singleRegex: () =>
            stream(mib, (chunk) => {
              plainHits += chunk.match(plain)?.length ?? 0;
            }),
        };
        for (const set of DETECTOR_SETS) {
          const profile = new DetectionProfile({ enabled: set.enabled });
          measurements[set.key] = () => {
            const masker = createStreamMasker({ profile });
            let out = 0;
            const rate = stream(
              mib,
              (chunk) => {
                out += masker.push(chunk).length;
              },
              () => {
                out += masker.end().length;
              },
            );
            maskings.set(set.key, masker.findings().total);
            if (out === 0) throw new BenchmarkError('BENCH_MEASUREMENT_FAILED', `masker produced no output for ${workload.name}`);
            return rate;
          };
        }
        return measurements;
      };
      // Warm-up: a quarter of a run per candidate, so that the first timed round is not the JIT's.
      for (const warmUp of Object.values(candidates(mibPerRun / 4))) warmUp();
      const r = await interleavedMedians(rounds, candidates(mibPerRun));
      for (const set of DETECTOR_SETS) {
        figures.push(
          figure(NAME, {
            metric: `${workload.name}: ${set.label}`,
            unit: 'MiB/s',
            better: 'higher',
            value: r[set.key]!,
            baseline: { name: 'one plain regex (card shape) over the same text', value: r['singleRegex']! },
            notes: `${maskings.get(set.key) ?? 0} maskings per ${mibPerRun} MiB; 64 KiB chunks`,
          }),
        );
      }
      if (plainHits < 0) log('unreachable');
    }
    return figures;
  },
};
