// The conversation view of a session transcript (`GET /v1/streams/{stream}/transcript?view=conversation`):
// one uniform entry list (kind, time, role, text / tool name, input, result, usage) built from the
// stored events only, whatever the protocol.
// - LLM sessions (Messages API, protocol `anthropic`): the prompt from each `command.issued` (the
//   request body as approvers saw it, detectors' findings masked), only the turns new since the
//   last model answer; the model's output, tool calls and usage decoded from the bytes the client
//   was sent (HTTP/1.1 or the HTTP/2 form the gateway records, SSE or JSON, after masking).
// - MCP sessions: `tools/call` requests and their results from the decoded JSON-RPC messages.
import { StringDecoder } from 'node:string_decoder';
import type { CustodianEvent } from '@custodian/event-contracts';
import { decodeJsonFrame } from './session-transcript.js';

export type ConversationEntryKind = 'system' | 'prompt' | 'tool-result' | 'output' | 'thinking' | 'tool-call' | 'usage' | 'error';

export interface ConversationUsage {
  readonly inputTokens?: number;
  readonly outputTokens?: number;
  readonly cacheCreationInputTokens?: number;
  readonly cacheReadInputTokens?: number;
}

export interface ConversationEntry {
  /** The stream revision of the event the entry was read from. */
  readonly revision: number;
  /** When that event occurred (ISO 8601). */
  readonly time: string;
  readonly kind: ConversationEntryKind;
  readonly role?: 'system' | 'user' | 'assistant';
  readonly model?: string;
  /** Prompt, output, thinking or error text (as recorded: masked). */
  readonly text?: string;
  readonly toolName?: string;
  readonly toolUseId?: string;
  /** A tool call's input (parsed JSON when it parses, else the text). */
  readonly input?: unknown;
  /** A tool result's content as text. */
  readonly result?: string;
  readonly isError?: boolean;
  readonly usage?: ConversationUsage;
  readonly stopReason?: string;
}

/** Most bytes of one response head or body kept while decoding (a larger one is skipped, not decoded). */
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const MAX_HEAD_BYTES = 64 * 1024;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((block: unknown) => (isRecord(block) ? (block['type'] === 'text' && typeof block['text'] === 'string' ? block['text'] : `[${String(block['type'])}]`) : ''))
    .filter((text) => text !== '')
    .join('\n');
}

function usageOf(value: unknown): ConversationUsage | undefined {
  if (!isRecord(value)) return undefined;
  const number = (key: string): number | undefined => (typeof value[key] === 'number' ? value[key] : undefined);
  const usage = { inputTokens: number('input_tokens'), outputTokens: number('output_tokens'), cacheCreationInputTokens: number('cache_creation_input_tokens'), cacheReadInputTokens: number('cache_read_input_tokens') };
  const defined = Object.fromEntries(Object.entries(usage).filter(([, v]) => v !== undefined)) as ConversationUsage;
  return Object.keys(defined).length > 0 ? defined : undefined;
}

function parsedInput(json: string): unknown {
  if (json === '') return {};
  try {
    return JSON.parse(json) as unknown;
  } catch {
    return json;
  }
}

type Emit = (entry: Omit<ConversationEntry, 'revision' | 'time'>) => void;

/** Folds one Messages API answer (SSE events or a whole message) into entries. */
class MessageFolder {
  private model: string | undefined;
  private usage: ConversationUsage | undefined;
  private readonly blocks = new Map<number, { type: string; text: string; id?: string; name?: string }>();

  constructor(private readonly emit: Emit) {}

  event(payload: unknown): void {
    if (!isRecord(payload)) return;
    const type = payload['type'];
    if (type === 'message_start' && isRecord(payload['message'])) {
      this.model = typeof payload['message']['model'] === 'string' ? payload['message']['model'] : undefined;
      this.usage = usageOf(payload['message']['usage']);
    } else if (type === 'content_block_start' && typeof payload['index'] === 'number' && isRecord(payload['content_block'])) {
      const block = payload['content_block'];
      const initial = typeof block['text'] === 'string' ? block['text'] : typeof block['thinking'] === 'string' ? block['thinking'] : isRecord(block['input']) && Object.keys(block['input']).length > 0 ? JSON.stringify(block['input']) : '';
      this.blocks.set(payload['index'], { type: String(block['type']), text: initial, ...(typeof block['id'] === 'string' ? { id: block['id'] } : {}), ...(typeof block['name'] === 'string' ? { name: block['name'] } : {}) });
    } else if (type === 'content_block_delta' && typeof payload['index'] === 'number' && isRecord(payload['delta'])) {
      const block = this.blocks.get(payload['index']);
      const delta = payload['delta'];
      const piece = delta['text'] ?? delta['partial_json'] ?? delta['thinking'];
      if (block && typeof piece === 'string') block.text += piece;
    } else if (type === 'content_block_stop' && typeof payload['index'] === 'number') {
      const block = this.blocks.get(payload['index']);
      this.blocks.delete(payload['index']);
      if (block) this.block(block);
    } else if (type === 'message_delta') {
      const usage = { ...this.usage, ...usageOf(payload['usage']) };
      const stopReason = isRecord(payload['delta']) && typeof payload['delta']['stop_reason'] === 'string' ? payload['delta']['stop_reason'] : undefined;
      this.emit({ kind: 'usage', role: 'assistant', ...(this.model ? { model: this.model } : {}), usage, ...(stopReason ? { stopReason } : {}) });
    } else if (type === 'error') {
      const error = isRecord(payload['error']) ? payload['error'] : {};
      this.emit({ kind: 'error', text: `${String(error['type'] ?? 'error')}: ${String(error['message'] ?? '')}` });
    } else if (type === 'message' && Array.isArray(payload['content'])) {
      // A whole (non-streamed) message.
      this.model = typeof payload['model'] === 'string' ? payload['model'] : undefined;
      for (const block of payload['content'] as unknown[]) {
        if (!isRecord(block)) continue;
        const text = typeof block['text'] === 'string' ? block['text'] : typeof block['thinking'] === 'string' ? block['thinking'] : block['input'] !== undefined ? JSON.stringify(block['input']) : '';
        this.block({ type: String(block['type']), text, ...(typeof block['id'] === 'string' ? { id: block['id'] } : {}), ...(typeof block['name'] === 'string' ? { name: block['name'] } : {}) });
      }
      const usage = usageOf(payload['usage']);
      this.emit({ kind: 'usage', role: 'assistant', ...(this.model ? { model: this.model } : {}), ...(usage ? { usage } : {}), ...(typeof payload['stop_reason'] === 'string' ? { stopReason: payload['stop_reason'] } : {}) });
    }
  }

  private block(block: { type: string; text: string; id?: string; name?: string }): void {
    const model = this.model ? { model: this.model } : {};
    if (block.type === 'text') this.emit({ kind: 'output', role: 'assistant', ...model, text: block.text });
    else if (block.type === 'thinking') this.emit({ kind: 'thinking', role: 'assistant', ...model, text: block.text });
    else if (block.type === 'tool_use' || block.type === 'server_tool_use') this.emit({ kind: 'tool-call', role: 'assistant', ...model, toolName: block.name ?? '', toolUseId: block.id ?? '', input: parsedInput(block.text) });
  }
}

/** Incremental SSE decoding of a body: each event's `data` JSON to the folder. */
class SseFolder {
  private readonly decoder = new StringDecoder('utf8');
  private buffer = '';

  constructor(private readonly folder: MessageFolder) {}

  push(bytes: Buffer): void {
    this.buffer += this.decoder.write(bytes);
    for (;;) {
      const match = /\r\n\r\n|\n\n|\r\r/.exec(this.buffer);
      if (!match) break;
      const block = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const data = block
        .split(/\r\n|\n|\r/)
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).replace(/^ /, ''));
      if (data.length === 0) continue;
      try {
        this.folder.event(JSON.parse(data.join('\n')) as unknown);
      } catch {
        // Not JSON: nothing to show.
      }
    }
    if (this.buffer.length > MAX_BODY_BYTES) this.buffer = '';
  }
}

/**
 * The client-bound bytes of one HTTP connection (or one HTTP/2 stream: the gateway records those as
 * `HTTP/2 <status>`, header lines, then the body) → the Messages API answers they carry.
 */
class ResponseDecoder {
  private head = Buffer.alloc(0);
  private state: 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailers' | 'rest' = 'head';
  private remaining = 0;
  private body: Buffer[] = [];
  private bodyBytes = 0;
  private sse: SseFolder | undefined;
  private json = false;
  private line = '';

  constructor(private readonly emit: Emit) {}

  push(bytes: Buffer): void {
    let data = bytes;
    while (data.length > 0) {
      if (this.state === 'head') {
        this.head = Buffer.concat([this.head, data]);
        const end = this.head.indexOf('\r\n\r\n');
        if (end === -1) {
          if (this.head.length > MAX_HEAD_BYTES) this.head = Buffer.alloc(0);
          return;
        }
        data = this.head.subarray(end + 4);
        this.start(this.head.subarray(0, end).toString('latin1'));
        this.head = Buffer.alloc(0);
        continue;
      }
      if (this.state === 'rest') {
        this.bodyData(data);
        return;
      }
      if (this.state === 'length') {
        const take = Math.min(this.remaining, data.length);
        this.bodyData(data.subarray(0, take));
        this.remaining -= take;
        data = data.subarray(take);
        if (this.remaining === 0) this.finish();
        continue;
      }
      if (this.state === 'chunk-data') {
        const take = Math.min(this.remaining, data.length);
        this.bodyData(data.subarray(0, take));
        this.remaining -= take;
        data = data.subarray(take);
        if (this.remaining === 0) this.state = 'chunk-crlf';
        continue;
      }
      // Line-oriented states: chunk sizes, the CRLF after chunk data, trailers.
      const newline = data.indexOf('\n');
      if (newline === -1) {
        this.line += data.toString('latin1');
        return;
      }
      const line = (this.line + data.subarray(0, newline).toString('latin1')).replace(/\r$/, '');
      this.line = '';
      data = data.subarray(newline + 1);
      if (this.state === 'chunk-crlf') this.state = 'chunk-size';
      else if (this.state === 'chunk-size') {
        const size = Number.parseInt(line.split(';')[0]!, 16);
        if (!Number.isFinite(size)) this.reset();
        else if (size === 0) this.state = 'trailers';
        else {
          this.remaining = size;
          this.state = 'chunk-data';
        }
      } else if (this.state === 'trailers' && line === '') this.finish();
    }
  }

  /** The connection's recording ended: a body read to the end of the bytes is complete. */
  end(): void {
    if (this.state === 'rest') this.finish();
  }

  private start(head: string): void {
    const lines = head.split('\r\n');
    const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(lines[0] ?? '')?.[1] ?? '0');
    const http2 = (lines[0] ?? '').startsWith('HTTP/2 ');
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const type = (headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    this.sse = type === 'text/event-stream' ? new SseFolder(new MessageFolder(this.emit)) : undefined;
    this.json = type === 'application/json' || type.endsWith('+json');
    this.body = [];
    this.bodyBytes = 0;
    const length = headers.get('content-length');
    if (status === 204 || status === 304 || (status >= 100 && status < 200) || length === '0') this.finish();
    else if (!http2 && (headers.get('transfer-encoding') ?? '').toLowerCase().includes('chunked')) this.state = 'chunk-size';
    else if (length !== undefined && /^\d+$/.test(length)) {
      this.remaining = Number(length);
      this.state = 'length';
    } else this.state = 'rest';
  }

  private bodyData(bytes: Buffer): void {
    if (this.sse) this.sse.push(bytes);
    else if (this.json && this.bodyBytes + bytes.length <= MAX_BODY_BYTES) {
      this.body.push(bytes);
      this.bodyBytes += bytes.length;
    }
  }

  private finish(): void {
    if (this.json && this.bodyBytes > 0) {
      try {
        new MessageFolder(this.emit).event(JSON.parse(Buffer.concat(this.body).toString('utf8')) as unknown);
      } catch {
        // Not a whole JSON document (cut at the recording limit): nothing to show.
      }
    }
    this.reset();
  }

  private reset(): void {
    this.state = 'head';
    this.body = [];
    this.bodyBytes = 0;
    this.sse = undefined;
    this.json = false;
  }
}

/** Builds the conversation of one session stream from its events, in order. */
export class ConversationBuilder {
  readonly entries: ConversationEntry[] = [];
  protocol: string | undefined;
  private current: { revision: number; time: string } = { revision: 0, time: '' };
  private readonly decoders = new Map<number, ResponseDecoder>();
  private requests = 0;
  private lastSystem: string | undefined;
  /** MCP: tools/call request ids → the tool's name. */
  private readonly mcpCalls = new Map<string, string>();
  private readonly emit: Emit = (entry) => void this.entries.push({ revision: this.current.revision, time: this.current.time, ...entry });

  push(revision: number, event: CustodianEvent): void {
    this.current = { revision, time: event.occurredAt };
    if (event.type === 'session.opened') this.protocol = event.payload.connection.protocol;
    else if (event.type === 'command.issued' && event.payload.kind === 'llm') this.prompt(event.payload.text);
    else if (event.type === 'frame.recorded') {
      const frame = event.payload;
      const bytes = Buffer.from(frame.data, 'base64');
      if (this.protocol === 'mcp') this.mcp(frame.direction, bytes);
      else if (this.protocol === 'anthropic' && frame.direction === 'upstream-to-client') {
        const channel = frame.channel ?? 0;
        let decoder = this.decoders.get(channel);
        if (!decoder) this.decoders.set(channel, (decoder = new ResponseDecoder(this.emit)));
        decoder.push(bytes);
      }
    }
  }

  /** The stream was read to its end. */
  end(): void {
    for (const decoder of this.decoders.values()) decoder.end();
  }

  private prompt(text: string): void {
    const newline = text.indexOf('\n');
    const requestLine = newline === -1 ? text : text.slice(0, newline);
    if (!/^POST \/v1\/messages(\?|$)/.test(requestLine)) return;
    const body = newline === -1 ? '' : text.slice(newline + 1);
    let request: unknown;
    try {
      request = JSON.parse(body);
    } catch {
      // Cut at the command's recording limit: shown as recorded.
      this.emit({ kind: 'prompt', role: 'user', text: body });
      return;
    }
    if (!isRecord(request)) return;
    const model = typeof request['model'] === 'string' ? { model: request['model'] } : {};
    const system = textOf(request['system']);
    if (system !== '' && system !== this.lastSystem) this.emit({ kind: 'system', role: 'system', ...model, text: system });
    this.lastSystem = system;
    const messages = Array.isArray(request['messages']) ? (request['messages'] as unknown[]) : [];
    // Each request repeats the conversation: after the first, only the turns after the last model answer are new.
    let from = 0;
    if (this.requests > 0) for (let i = 0; i < messages.length; i++) if (isRecord(messages[i]) && (messages[i] as Record<string, unknown>)['role'] === 'assistant') from = i + 1;
    this.requests++;
    for (const message of messages.slice(from)) {
      if (!isRecord(message)) continue;
      const role = message['role'] === 'assistant' ? 'assistant' : message['role'] === 'system' ? 'system' : 'user';
      const content = message['content'];
      if (typeof content === 'string' || !Array.isArray(content)) {
        this.emit({ kind: role === 'assistant' ? 'output' : role === 'system' ? 'system' : 'prompt', role, ...model, text: textOf(content) });
        continue;
      }
      for (const block of content as unknown[]) {
        if (!isRecord(block)) continue;
        if (block['type'] === 'tool_result') this.emit({ kind: 'tool-result', role, toolUseId: String(block['tool_use_id'] ?? ''), result: textOf(block['content']), ...(block['is_error'] === true ? { isError: true } : {}) });
        else if (block['type'] === 'tool_use') this.emit({ kind: 'tool-call', role, ...model, toolName: String(block['name'] ?? ''), toolUseId: String(block['id'] ?? ''), input: block['input'] });
        else if (block['type'] === 'thinking' || block['type'] === 'redacted_thinking') continue;
        else this.emit({ kind: role === 'assistant' ? 'output' : role === 'system' ? 'system' : 'prompt', role, ...model, text: textOf([block]) });
      }
    }
  }

  private mcp(direction: string, bytes: Buffer): void {
    for (const message of decodeJsonFrame(bytes) ?? []) {
      for (const one of Array.isArray(message) ? (message as unknown[]) : [message]) {
        if (!isRecord(one)) continue;
        const id = one['id'] === undefined ? undefined : JSON.stringify(one['id']);
        if (direction === 'client-to-upstream' && one['method'] === 'tools/call' && isRecord(one['params'])) {
          const name = String(one['params']['name'] ?? '');
          if (id !== undefined) this.mcpCalls.set(id, name);
          this.emit({ kind: 'tool-call', role: 'assistant', toolName: name, ...(id !== undefined ? { toolUseId: id } : {}), input: one['params']['arguments'] ?? {} });
        } else if (direction === 'upstream-to-client' && id !== undefined && this.mcpCalls.has(id)) {
          const name = this.mcpCalls.get(id)!;
          this.mcpCalls.delete(id);
          const result = isRecord(one['result']) ? one['result'] : undefined;
          const error = isRecord(one['error']) ? one['error'] : undefined;
          this.emit({ kind: 'tool-result', role: 'user', toolName: name, toolUseId: id, result: result ? textOf(result['content']) : String(error?.['message'] ?? ''), ...(error || result?.['isError'] === true ? { isError: true } : {}) });
        }
      }
    }
  }
}
