// Masking of Anthropic Messages API responses, streamed (SSE events) and whole. Per content block:
// `text_delta` text goes through a StreamMasker (bounded hold-back: only text that can no longer
// start a match is emitted; the rest at `content_block_stop`); `input_json_delta` fragments are
// buffered to the block's end and the parsed tool input is masked by JSON paths and detectors;
// `thinking` and `signature` content is never rewritten (it is signed); `ping`, `error` and
// unknown events pass byte for byte. Event order and SSE framing are kept.
import { MaskingFindings, type MaskingPolicy, type StreamMasker } from '@custodian/masking';
import { encodeSseEvent, type SseEvent } from './sse-codec.js';

/** A tool call the model made, with its input after masking (for the record). */
export interface ToolUseSeen {
  readonly id: string;
  readonly name: string;
  /** The masked input as JSON text. */
  readonly input: string;
}

type Block =
  | { readonly type: 'text'; readonly masker: StreamMasker }
  | { readonly type: 'tool_use'; readonly id: string; readonly name: string; json: string[]; jsonChars: number }
  | { readonly type: 'other' };

/** What a connection does with `thinking` / `redacted_thinking` blocks, which are signed and so never rewritten. */
export type ThinkingPolicy = 'pass' | 'refuse';
export const THINKING_REFUSED_RULE = 'custodian:thinking-refused';
export const THINKING_REFUSED_MESSAGE = `the model answered with a thinking block, which this connection does not pass (rule ${THINKING_REFUSED_RULE})`;

/** Largest tool input buffered (UTF-16 code units); beyond it the input is replaced whole. */
const MAX_TOOL_INPUT_CHARS = 4 * 1024 * 1024;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class MessagesStreamMasker {
  readonly findings = new MaskingFindings();
  readonly toolUses: ToolUseSeen[] = [];
  private readonly blocks = new Map<number, Block>();
  /** Most characters any text block held back at once (the measured hold-back). */
  maxHeldBack = 0;

  /** Set once the stream was ended by the gateway (a thinking block on a `thinking: refuse` connection): send nothing more. */
  ended = false;

  constructor(
    private readonly masking: MaskingPolicy,
    private readonly thinking: ThinkingPolicy = 'pass',
  ) {}

  /** Maps one upstream event to the bytes to send the client (possibly none, possibly several events). */
  transform(event: SseEvent): Buffer[] {
    if (this.ended) return [];
    if (event.event === undefined && event.data === '') return [event.raw];
    let payload: unknown;
    try {
      payload = JSON.parse(event.data);
    } catch {
      return [event.raw];
    }
    if (!isRecord(payload)) return [event.raw];
    const type = payload['type'];
    const index = typeof payload['index'] === 'number' ? payload['index'] : -1;
    if (type === 'content_block_start' && isRecord(payload['content_block'])) return this.start(event, index, payload, payload['content_block']);
    if (type === 'content_block_delta' && isRecord(payload['delta'])) return this.delta(event, index, payload, payload['delta']);
    if (type === 'content_block_stop') return this.stop(event, index);
    return [event.raw];
  }

  private start(event: SseEvent, index: number, payload: Record<string, unknown>, block: Record<string, unknown>): Buffer[] {
    if (this.thinking === 'refuse' && (block['type'] === 'thinking' || block['type'] === 'redacted_thinking')) {
      // Signed content the gateway cannot mask: the stream ends with an error event instead.
      this.ended = true;
      this.findings.add(`content[${index}]`, THINKING_REFUSED_RULE);
      return [encodeSseEvent('error', JSON.stringify({ type: 'error', error: { type: 'api_error', message: THINKING_REFUSED_MESSAGE } }))];
    }
    if (block['type'] === 'text') {
      const masker = this.masking.createStreamMasker(`content[${index}].text`, this.findings);
      this.blocks.set(index, { type: 'text', masker });
      const text = typeof block['text'] === 'string' ? block['text'] : '';
      if (text === '') return [event.raw];
      // Initial text is rare; it joins the stream masker so a match can span it and the first delta.
      const out = masker.push(text);
      this.measure(masker);
      return [encodeSseEvent(event.event, JSON.stringify({ ...payload, content_block: { ...block, text: out } }))];
    }
    if (block['type'] === 'tool_use' || block['type'] === 'server_tool_use') {
      const initial = isRecord(block['input']) && Object.keys(block['input']).length > 0 ? JSON.stringify(block['input']) : '';
      this.blocks.set(index, { type: 'tool_use', id: String(block['id'] ?? ''), name: String(block['name'] ?? ''), json: initial ? [initial] : [], jsonChars: initial.length });
      if (initial === '') return [event.raw];
      return [encodeSseEvent(event.event, JSON.stringify({ ...payload, content_block: { ...block, input: {} } }))];
    }
    this.blocks.set(index, { type: 'other' });
    return [event.raw];
  }

  private delta(event: SseEvent, index: number, payload: Record<string, unknown>, delta: Record<string, unknown>): Buffer[] {
    const block = this.blocks.get(index);
    if (delta['type'] === 'text_delta' && block?.type === 'text' && typeof delta['text'] === 'string') {
      const out = block.masker.push(delta['text']);
      this.measure(block.masker);
      if (out === '') return [];
      // Nothing held back or masked: the event goes on as received (no re-encoding).
      if (out === delta['text']) return [event.raw];
      return [encodeSseEvent(event.event, JSON.stringify({ ...payload, delta: { ...delta, text: out } }))];
    }
    if (delta['type'] === 'input_json_delta' && block?.type === 'tool_use' && typeof delta['partial_json'] === 'string') {
      const part = delta['partial_json'];
      if (block.jsonChars + part.length <= MAX_TOOL_INPUT_CHARS) block.json.push(part);
      block.jsonChars += part.length;
      return [];
    }
    // thinking_delta, signature_delta, citations_delta and deltas we do not know: unchanged.
    return [event.raw];
  }

  private stop(event: SseEvent, index: number): Buffer[] {
    const block = this.blocks.get(index);
    this.blocks.delete(index);
    if (block?.type === 'text') {
      const rest = block.masker.end();
      if (rest === '') return [event.raw];
      return [encodeSseEvent('content_block_delta', JSON.stringify({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: rest } })), event.raw];
    }
    if (block?.type === 'tool_use') {
      const input = this.maskToolInput(block, index);
      this.toolUses.push({ id: block.id, name: block.name, input });
      const out: Buffer[] = [];
      if (input !== '') out.push(encodeSseEvent('content_block_delta', JSON.stringify({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: input } })));
      out.push(event.raw);
      return out;
    }
    return [event.raw];
  }

  private maskToolInput(block: Extract<Block, { type: 'tool_use' }>, index: number): string {
    if (block.jsonChars > MAX_TOOL_INPUT_CHARS) {
      this.findings.add(`content[${index}].input`, 'custodian:json-limit');
      return JSON.stringify({ redacted: '[REDACTED:custodian:json-limit]' });
    }
    const text = block.json.join('');
    if (text === '') return '';
    const result = this.masking.maskJsonText(text, { location: `content[${index}].input`, findings: this.findings });
    if (result.outcome === 'masked') return result.text;
    if (result.outcome === 'refused') return JSON.stringify({ redacted: JSON.parse(result.text) as string });
    // Not JSON: the client could not parse it either; mask it as text so nothing leaks.
    return JSON.stringify({ unparsed: this.masking.maskText(text, `content[${index}].input`, this.findings) });
  }

  private measure(masker: StreamMasker): void {
    const { consumed, emittedInput } = masker.stats;
    this.maxHeldBack = Math.max(this.maxHeldBack, consumed - emittedInput);
  }

  /** The stream ended (or broke) with blocks open: what they held is dropped, never sent unmasked. */
  abandon(): void {
    this.blocks.clear();
  }
}

/** Masks a whole (non-streamed) Messages response body; returns the text to send. */
export function maskMessagesResponse(masking: MaskingPolicy, body: string, findings: MaskingFindings, toolUses: ToolUseSeen[]): string {
  let message: unknown;
  try {
    message = JSON.parse(body);
  } catch {
    return masking.maskText(body, 'response.body', findings);
  }
  if (!isRecord(message) || !Array.isArray(message['content'])) {
    const result = masking.maskJsonText(body, { location: 'response.body', findings });
    return result.outcome === 'invalid' ? masking.maskText(body, 'response.body', findings) : result.text;
  }
  const content = (message['content'] as unknown[]).map((block, index) => {
    if (!isRecord(block)) return block;
    if (block['type'] === 'text' && typeof block['text'] === 'string') return { ...block, text: masking.maskText(block['text'], `content[${index}].text`, findings) };
    if ((block['type'] === 'tool_use' || block['type'] === 'server_tool_use') && block['input'] !== undefined) {
      const result = masking.maskJsonText(JSON.stringify(block['input']), { location: `content[${index}].input`, findings });
      const input: unknown = result.outcome === 'masked' ? JSON.parse(result.text) : { redacted: '[REDACTED:custodian:json-limit]' };
      toolUses.push({ id: String(block['id'] ?? ''), name: String(block['name'] ?? ''), input: JSON.stringify(input) });
      return { ...block, input };
    }
    return block;
  });
  return JSON.stringify({ ...message, content });
}

/**
 * Masks a Messages API request's prompt in place by the detectors, before it leaves: the system
 * prompt, the text of user and system turns, and tool results (string or text blocks). Assistant
 * turns are left alone (they came back through the gateway masked already, and `thinking` blocks
 * carry signatures the API checks), as are tool inputs and non-text blocks. Returns whether
 * anything changed.
 */
export function maskMessagesPrompt(masking: MaskingPolicy, request: Record<string, unknown>, findings: MaskingFindings): boolean {
  let changed = false;
  const maskString = (text: string, field: string): string => {
    const masked = masking.maskText(text, field, findings);
    if (masked !== text) changed = true;
    return masked;
  };
  const maskContent = (content: unknown, field: string): unknown => {
    if (typeof content === 'string') return maskString(content, field);
    if (!Array.isArray(content)) return content;
    return content.map((block: unknown, index) => {
      if (!isRecord(block)) return block;
      if (block['type'] === 'text' && typeof block['text'] === 'string') return { ...block, text: maskString(block['text'], `${field}[${index}].text`) };
      if (block['type'] === 'tool_result' && block['content'] !== undefined) return { ...block, content: maskContent(block['content'], `${field}[${index}].content`) };
      return block;
    });
  };
  if (request['system'] !== undefined) request['system'] = maskContent(request['system'], 'request.system');
  if (Array.isArray(request['messages'])) {
    request['messages'] = (request['messages'] as unknown[]).map((message, index) =>
      isRecord(message) && (message['role'] === 'user' || message['role'] === 'system') ? { ...message, content: maskContent(message['content'], `request.messages[${index}].content`) } : message,
    );
  }
  return changed;
}
