// A strict reader of asciicast v3 and v2 text, for tests: every line must be what the format
// defines (header first, then 3-element events with known codes), or it throws saying which line.

export interface ParsedAsciicast {
  readonly version: 2 | 3;
  readonly header: Record<string, unknown>;
  readonly events: readonly (readonly [number, string, string])[];
  /** Absolute time of each event in seconds (v3 intervals summed). */
  readonly times: readonly number[];
}

const V3_CODES = new Set(['o', 'i', 'm', 'r', 'x']);
const V2_CODES = new Set(['o', 'i', 'm', 'r']);

export function parseAsciicast(text: string): ParsedAsciicast {
  if (!text.endsWith('\n')) throw new Error('asciicast must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  const header = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
  const version = header['version'];
  if (version !== 2 && version !== 3) throw new Error(`line 1: version must be 2 or 3, is ${String(version)}`);
  if (version === 3) {
    const term = header['term'] as { cols?: unknown; rows?: unknown } | undefined;
    if (!term || !Number.isInteger(term.cols) || !Number.isInteger(term.rows)) throw new Error('line 1: v3 header needs term.cols and term.rows');
  } else if (!Number.isInteger(header['width']) || !Number.isInteger(header['height'])) throw new Error('line 1: v2 header needs width and height');
  const events: [number, string, string][] = [];
  const times: number[] = [];
  let clock = 0;
  lines.slice(1).forEach((line, i) => {
    const where = `line ${i + 2}`;
    const event = JSON.parse(line) as unknown;
    if (!Array.isArray(event) || event.length !== 3) throw new Error(`${where}: an event is [time, code, data]`);
    const [time, code, data] = event as [unknown, unknown, unknown];
    if (typeof time !== 'number' || !Number.isFinite(time) || time < 0) throw new Error(`${where}: time must be a non-negative number`);
    if (typeof code !== 'string' || !(version === 3 ? V3_CODES : V2_CODES).has(code)) throw new Error(`${where}: unknown event code ${String(code)}`);
    if (typeof data !== 'string') throw new Error(`${where}: data must be a string`);
    if (code === 'r' && !/^\d+x\d+$/.test(data)) throw new Error(`${where}: resize data must be COLSxROWS`);
    if (code === 'x' && !/^-?\d+$/.test(data)) throw new Error(`${where}: exit data must be a status number`);
    if (version === 3) clock += time;
    else {
      if (time < clock) throw new Error(`${where}: v2 times must not go backwards`);
      clock = time;
    }
    events.push([time, code, data]);
    times.push(clock);
  });
  return { version, header, events, times };
}
