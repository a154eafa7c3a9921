// Writes the precision/recall report per detector on the labelled corpus to docs/masking-quality.md
// (the repository's documentation) and libs/decisions/masking/QUALITY.md (next to the code), same content.
// Run: scripts/node24 node libs/decisions/masking/scripts/write-quality-report.ts
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerSourceResolution } from './source-resolution.ts';

registerSourceResolution();
const here = dirname(fileURLToPath(import.meta.url));
const { generateLabelledCorpus } = await import('../src/corpus/labelled-corpus.ts');
const { evaluateCorpus, renderQualityMarkdown } = await import('../src/corpus/quality.ts');
const { DetectionProfile } = await import('../src/text-masker.ts');

const corpus = generateLabelledCorpus();
const report = evaluateCorpus(corpus, new DetectionProfile());
const markdown = renderQualityMarkdown(report, corpus.seed, 0.95);
for (const target of [join(here, '..', '..', '..', 'docs', 'masking-quality.md'), join(here, '..', 'QUALITY.md')]) writeFileSync(target, markdown);
console.log(markdown);
