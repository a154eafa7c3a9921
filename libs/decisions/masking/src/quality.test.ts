import { describe, expect, it } from 'vitest';
import { generateLabelledCorpus } from './corpus/labelled-corpus.js';
import { evaluateCorpus } from './corpus/quality.js';
import { DetectionProfile } from './text-masker.js';

/**
 * 0.95 per detector: the corpus is built from the very formats the detectors target, so anything
 * lower means a detector lost a format it claims to support (or started firing on hard negatives).
 */
const FLOOR = 0.95;

describe('labelled corpus quality', () => {
  const corpus = generateLabelledCorpus();
  const report = evaluateCorpus(corpus, new DetectionProfile());

  it('is large and deterministic', () => {
    expect(report.positives).toBeGreaterThanOrEqual(2000);
    expect(report.hardNegatives).toBeGreaterThanOrEqual(500);
    expect(generateLabelledCorpus().samples.slice(0, 50)).toEqual(corpus.samples.slice(0, 50));
  });

  it.each(report.rows.map((r) => [r.detector, r] as const))('%s meets the precision and recall floor', (_name, row) => {
    expect(row.positives).toBeGreaterThan(0);
    expect(row.precision, `precision of ${row.detector}`).toBeGreaterThanOrEqual(FLOOR);
    expect(row.recall, `recall of ${row.detector}`).toBeGreaterThanOrEqual(FLOOR);
  });
});
