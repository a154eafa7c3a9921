// The SSE codec fed the same recorded Messages stream split at every byte boundary (and byte by
// byte): the same events, each with its exact raw bytes, whatever the split.
import { describe, expect, it } from 'vitest';
import { SseDecoder, SseError, encodeSseEvent, type SseEvent } from './sse-codec.js';

const STREAM = [
  'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","content":[]}}\n\n',
  'event: ping\ndata: {"type": "ping"}\n\n',
  ': keep-alive comment\n\n',
  'event: content_block_delta\r\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"héllo ✓"}}\r\n\r\n',
  'event: multi\ndata: line one\ndata: line two\nid: 7\n\n',
  'event: message_stop\rdata: {"type":"message_stop"}\r\r',
].join('');

function decodeSplit(bytes: Buffer, splits: readonly number[]): SseEvent[] {
  const decoder = new SseDecoder();
  const events: SseEvent[] = [];
  let from = 0;
  for (const at of [...splits, bytes.length]) {
    events.push(...decoder.push(bytes.subarray(from, at)));
    from = at;
  }
  events.push(...decoder.end());
  return events;
}

describe('SseDecoder', () => {
  const bytes = Buffer.from(STREAM, 'utf8');
  const whole = decodeSplit(bytes, []);

  it('parses events, fields, CRLF / CR / LF line ends and comments, keeping raw bytes', () => {
    expect(whole.map((e) => e.event)).toEqual(['message_start', 'ping', undefined, 'content_block_delta', 'multi', 'message_stop']);
    expect(whole[4]).toMatchObject({ data: 'line one\nline two', id: '7' });
    expect(JSON.parse(whole[3]!.data)).toMatchObject({ delta: { text: 'héllo ✓' } });
    expect(Buffer.concat(whole.map((e) => e.raw)).equals(bytes)).toBe(true);
  });

  it('gives the same events at every single split point', () => {
    for (let at = 1; at < bytes.length; at++) {
      const events = decodeSplit(bytes, [at]);
      expect(events.map((e) => [e.event, e.data, e.raw.toString('hex')]), `split at ${at}`).toEqual(whole.map((e) => [e.event, e.data, e.raw.toString('hex')]));
    }
  });

  it('gives the same events fed byte by byte', () => {
    const splits = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
    expect(decodeSplit(bytes, splits).map((e) => e.raw.toString('hex'))).toEqual(whole.map((e) => e.raw.toString('hex')));
  });

  it('reports a stream cut inside an event, and bounds an event', () => {
    const decoder = new SseDecoder();
    decoder.push(Buffer.from('event: ping\ndata: {"ty'));
    expect(() => decoder.end()).toThrow(SseError);
    const small = new SseDecoder(64);
    expect(() => small.push(Buffer.from(`data: ${'x'.repeat(100)}`))).toThrow(/exceeds 64 bytes/);
  });

  it('encodes as the Anthropic API frames events', () => {
    expect(encodeSseEvent('ping', '{"type":"ping"}').toString()).toBe('event: ping\ndata: {"type":"ping"}\n\n');
    const [decoded] = new SseDecoder().push(encodeSseEvent('x', 'a\nb'));
    expect(decoded).toMatchObject({ event: 'x', data: 'a\nb' });
  });
});
