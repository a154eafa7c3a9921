// Masking of Messages API streams: an e-mail address split across text deltas at every position,
// across two blocks, and inside tool input JSON fragments; nothing unmasked reaches the output,
// thinking/signature and unknown events pass byte for byte, and the hold-back stays bounded.
import { describe, expect, it } from 'vitest';
import { MaskingFindings, MaskingPolicy } from '@custodian/masking';
import { MessagesStreamMasker, maskMessagesPrompt, maskMessagesResponse, type ToolUseSeen } from './messages-masking.js';
import { SseDecoder, encodeSseEvent } from './sse-codec.js';

const PII = 'jane.doe@example.com';
const masking = MaskingPolicy.create({ columns: [], jsonPaths: [], detection: { enabled: ['email'], strategies: { email: { kind: 'redact', label: 'pii' } }, ruleIds: { email: 'pii' } } });

const ev = (type: string, payload: object): string => encodeSseEvent(type, JSON.stringify({ type, ...payload })).toString();

function streamWithText(parts: readonly string[]): string {
  return [
    ev('message_start', { message: { id: 'msg_1', type: 'message', role: 'assistant', content: [], model: 'claude-test' } }),
    ev('content_block_start', { index: 0, content_block: { type: 'thinking', thinking: '' } }),
    ev('content_block_delta', { index: 0, delta: { type: 'thinking_delta', thinking: `I see ${PII}` } }),
    ev('content_block_delta', { index: 0, delta: { type: 'signature_delta', signature: 'c2lnbmF0dXJl' } }),
    ev('content_block_stop', { index: 0 }),
    ev('content_block_start', { index: 1, content_block: { type: 'text', text: '' } }),
    ev('ping', {}),
    ...parts.map((text) => ev('content_block_delta', { index: 1, delta: { type: 'text_delta', text } })),
    ev('content_block_stop', { index: 1 }),
    ev('content_block_start', { index: 2, content_block: { type: 'tool_use', id: 'toolu_1', name: 'send_mail', input: {} } }),
    ev('content_block_delta', { index: 2, delta: { type: 'input_json_delta', partial_json: '{"to": "jane.d' } }),
    ev('content_block_delta', { index: 2, delta: { type: 'input_json_delta', partial_json: 'oe@example.com", "n": 1}' } }),
    ev('content_block_stop', { index: 2 }),
    ev('future_event', { anything: true }),
    ev('message_delta', { delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 9 } }),
    ev('message_stop', {}),
  ].join('');
}

function run(stream: string): { out: string; masker: MessagesStreamMasker } {
  const decoder = new SseDecoder();
  const masker = new MessagesStreamMasker(masking);
  const out = [...decoder.push(Buffer.from(stream)), ...decoder.end()].flatMap((e) => masker.transform(e));
  return { out: Buffer.concat(out).toString(), masker };
}

/** The client's view: text per block, thinking, tool input (as an SDK would assemble it). */
function assemble(out: string): { text: string; thinking: string; toolInput: string; types: string[] } {
  const events = new SseDecoder().push(Buffer.from(out));
  let text = '';
  let thinking = '';
  let toolInput = '';
  for (const e of events) {
    const data = JSON.parse(e.data) as { delta?: { type: string; text?: string; thinking?: string; partial_json?: string } };
    if (data.delta?.type === 'text_delta') text += data.delta.text;
    if (data.delta?.type === 'thinking_delta') thinking += data.delta.thinking;
    if (data.delta?.type === 'input_json_delta') toolInput += data.delta.partial_json;
  }
  return { text, thinking, toolInput, types: events.map((e) => e.event ?? '') };
}

describe('MessagesStreamMasker', () => {
  const sentence = `Contact ${PII} today.`;

  it('masks an address split across two text deltas at every position; nothing unmasked reaches the client', () => {
    for (let at = 0; at <= sentence.length; at++) {
      const { out, masker } = run(streamWithText([sentence.slice(0, at), sentence.slice(at)]));
      const view = assemble(out);
      expect(view.text, `split at ${at}`).toBe('Contact [REDACTED:pii] today.');
      // Thinking is signed: never rewritten (it is the model's, and the policy passes it).
      expect(view.thinking).toBe(`I see ${PII}`);
      expect(out.split(`I see ${PII}`).join('').includes(PII), `split at ${at}`).toBe(false);
      expect(JSON.parse(view.toolInput)).toEqual({ to: '[REDACTED:pii]', n: 1 });
      expect(masker.toolUses).toEqual([{ id: 'toolu_1', name: 'send_mail', input: '{"to": "[REDACTED:pii]", "n": 1}' }]);
    }
  });

  it('masks an address delivered one character per delta, and keeps event order (ping, unknown events pass)', () => {
    const { out } = run(streamWithText([...sentence]));
    const view = assemble(out);
    expect(view.text).toBe('Contact [REDACTED:pii] today.');
    expect(view.types.filter((t) => t !== 'content_block_delta')).toEqual([
      'message_start', 'content_block_start', 'content_block_stop', 'content_block_start', 'ping', 'content_block_stop',
      'content_block_start', 'content_block_stop', 'future_event', 'message_delta', 'message_stop',
    ]);
    expect(out).toContain(ev('future_event', { anything: true }));
    expect(out).toContain(ev('content_block_delta', { index: 0, delta: { type: 'signature_delta', signature: 'c2lnbmF0dXJl' } }));
  });

  it('bounds the hold-back: a long text without matches is emitted as it streams, holding back at most the longest pattern', () => {
    const words = Array.from({ length: 400 }, (_, i) => `word${i} `);
    const { masker } = run(streamWithText(words));
    const total = words.join('').length;
    expect(masker.maxHeldBack).toBeLessThan(400);
    expect(masker.maxHeldBack).toBeLessThan(total / 5);
  });

  it('masks a whole (non-streamed) response the same way, leaving thinking alone', () => {
    const body = JSON.stringify({ id: 'msg', content: [{ type: 'thinking', thinking: PII, signature: 'x' }, { type: 'text', text: sentence }, { type: 'tool_use', id: 't', name: 'send_mail', input: { to: PII } }] });
    const findings = new MaskingFindings();
    const uses: ToolUseSeen[] = [];
    const masked = JSON.parse(maskMessagesResponse(masking, body, findings, uses)) as { content: { text?: string; thinking?: string; input?: unknown }[] };
    expect(masked.content[0]!.thinking).toBe(PII);
    expect(masked.content[1]!.text).toBe('Contact [REDACTED:pii] today.');
    expect(masked.content[2]!.input).toEqual({ to: '[REDACTED:pii]' });
    expect(uses.map((u) => u.name)).toEqual(['send_mail']);
    expect(findings.toArray().length).toBeGreaterThan(0);
  });
});

describe('Messages prompt masking (maskPrompt connections)', () => {
  it('masks the system prompt, user and system turns and tool results; leaves assistant turns (thinking is signed) and tool inputs alone', () => {
    const thinking = { type: 'thinking', thinking: `noted ${PII}`, signature: 'c2ln' };
    const request: Record<string, unknown> = {
      model: 'claude-test',
      system: `Escalate to ${PII}.`,
      messages: [
        { role: 'user', content: `Mail ${PII} please` },
        { role: 'assistant', content: [thinking, { type: 'tool_use', id: 't1', name: 'lookup', input: { q: PII } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: [{ type: 'text', text: `found ${PII}` }] }, { type: 'text', text: 'and?' }] },
        { role: 'system', content: [{ type: 'text', text: `reminder: ${PII}` }] },
      ],
    };
    const findings = new MaskingFindings();
    expect(maskMessagesPrompt(masking, request, findings)).toBe(true);
    const text = JSON.stringify(request);
    expect(request['system']).toBe('Escalate to [REDACTED:pii].');
    expect(text).toContain('Mail [REDACTED:pii] please');
    expect(text).toContain('found [REDACTED:pii]');
    expect(text).toContain('reminder: [REDACTED:pii]');
    // Exactly the assistant turn keeps the address: its signed thinking block and the tool input, untouched.
    const messages = request['messages'] as { content: unknown }[];
    expect(messages[1]!.content).toEqual([thinking, { type: 'tool_use', id: 't1', name: 'lookup', input: { q: PII } }]);
    expect(text.split(PII).length - 1).toBe(2);
    expect(findings.toDataMaskedMaskings()?.reduce((n, m) => n + m.count, 0)).toBe(4);
  });

  it('reports no change for a prompt without findings', () => {
    const request: Record<string, unknown> = { model: 'claude-test', messages: [{ role: 'user', content: 'hello' }] };
    expect(maskMessagesPrompt(masking, request, new MaskingFindings())).toBe(false);
  });
});

describe('Messages stream with thinking: refuse', () => {
  it('ends the stream with an error event at the thinking block; nothing of it or after it is sent', () => {
    const decoder = new SseDecoder();
    const masker = new MessagesStreamMasker(masking, 'refuse');
    const out = Buffer.concat(decoder.push(Buffer.from(streamWithText(['hi']))).flatMap((event) => masker.transform(event))).toString();
    expect(masker.ended).toBe(true);
    expect(out).toContain('event: message_start');
    expect(out).toContain('event: error');
    expect(out).toContain('custodian:thinking-refused');
    expect(out).not.toContain('I see');
    expect(out).not.toContain('text_delta');
    expect(out.indexOf('event: error')).toBeGreaterThan(out.indexOf('event: message_start'));
  });
});

