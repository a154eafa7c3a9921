import { describe, expect, it } from 'vitest';
import { renderContracts, staleFiles } from './generate-contracts.js';

describe('generated contracts', () => {
  it('types, embedded schemas and docs/events.md are up to date with schemas/events', async () => {
    const rendered = await renderContracts();
    expect(staleFiles(rendered), 'run `npm run generate` and commit the result').toEqual([]);
  });
});
