// Prints corpus samples of the given kinds that were masked wrongly (debugging aid for QUALITY.md).
// Run: scripts/node24 node libs/decisions/masking/scripts/show-corpus-errors.ts phone-de iban-bad-checksum
import { registerSourceResolution } from './source-resolution.ts';
registerSourceResolution();
const { generateLabelledCorpus, renderSample } = await import('../src/corpus/labelled-corpus.ts');
const { maskText, DetectionProfile } = await import('../src/text-masker.ts');
const profile = new DetectionProfile();
const kinds = new Set(process.argv.slice(2));
for (const s of generateLabelledCorpus().samples) {
  if (!kinds.has(s.kind)) continue;
  const t = renderSample(s);
  const m = maskText(t, { profile }).text;
  if (s.detector ? !m.includes('[REDACTED:') || m.split('[REDACTED').length !== 2 : m.includes('[REDACTED')) console.log(JSON.stringify(t), '=>', JSON.stringify(m));
}
