// Test-only: a STAND-IN for the Anthropic Messages API (the public API cannot be reached here).
// A local node:http server that accepts only the held API key (`x-api-key`) and replays Messages
// API responses in the real wire format: SSE events framed as the API frames them (`event:` line,
// `data:` line, blank line), written in uneven pieces so events arrive split across reads; tool-use
// turns, pings, an `overloaded_error` event mid-stream, and a connection cut mid-event. It logs
// every request (path with query, the headers that must pass unchanged, the body).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface StandInRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

export interface AnthropicStandIn {
  readonly url: string;
  readonly requests: StandInRequest[];
  stop(): Promise<void>;
}

export interface StandInOptions {
  /** The only API key accepted. */
  readonly apiKey: string;
  /** An e-mail address the `pii` scenario streams, split across deltas. */
  readonly piiValue: string;
  /** Text deltas per second in the `long` scenario (0: as fast as possible). */
  readonly chunkDelayMs?: number;
}

const sse = (type: string, payload: object): string => `event: ${type}\ndata: ${JSON.stringify({ type, ...payload })}\n\n`;

function messageStart(model: string): string {
  return sse('message_start', {
    message: { id: 'msg_standin_01', type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 25, output_tokens: 1 } },
  });
}

/** The events of a streamed reply: text in the given deltas, then optionally a tool call whose input arrives in fragments. */
export function recordedStream(model: string, textDeltas: readonly string[], tool?: { name: string; inputFragments: readonly string[] }): string[] {
  const events = [messageStart(model), sse('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }), sse('ping', {})];
  for (const text of textDeltas) events.push(sse('content_block_delta', { index: 0, delta: { type: 'text_delta', text } }));
  events.push(sse('content_block_stop', { index: 0 }));
  if (tool) {
    events.push(sse('content_block_start', { index: 1, content_block: { type: 'tool_use', id: 'toolu_standin_01', name: tool.name, input: {} } }));
    for (const partial_json of tool.inputFragments) events.push(sse('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json } }));
    events.push(sse('content_block_stop', { index: 1 }));
  }
  events.push(sse('message_delta', { delta: { stop_reason: tool ? 'tool_use' : 'end_turn', stop_sequence: null }, usage: { output_tokens: 15 } }));
  events.push(sse('message_stop', {}));
  return events;
}

function lastUserText(body: Record<string, unknown>): string {
  const messages = Array.isArray(body['messages']) ? (body['messages'] as { role?: string; content?: unknown }[]) : [];
  const last = messages.filter((m) => m.role === 'user').at(-1);
  if (!last) return '';
  if (typeof last.content === 'string') return last.content;
  if (Array.isArray(last.content)) return (last.content as { type?: string; text?: string; content?: unknown }[]).map((b) => (b.type === 'text' ? b.text : typeof b.content === 'string' ? b.content : '')).join(' ');
  return '';
}

function hasToolResult(body: Record<string, unknown>): boolean {
  const messages = Array.isArray(body['messages']) ? (body['messages'] as { role?: string; content?: unknown }[]) : [];
  const last = messages.at(-1);
  return last?.role === 'user' && Array.isArray(last.content) && (last.content as { type?: string }[]).some((b) => b.type === 'tool_result');
}

/** Input fragments of a Write tool call whose content names the PII value (cut inside it). */
function writeFragments(filePath: string, pii: string): string[] {
  const input = JSON.stringify({ file_path: filePath, content: `Customer contact: ${pii}\n` });
  const at = input.indexOf(pii) + Math.floor(pii.length / 2);
  return [input.slice(0, 7), input.slice(7, at), input.slice(at)];
}

/** Splits text into deltas of 1..5 characters (deterministic), as the API streams tokens. */
function deltas(text: string): string[] {
  const out: string[] = [];
  for (let i = 0, n = 1; i < text.length; i += n, n = (n % 5) + 1) out.push(text.slice(i, i + n));
  return out;
}

async function writeEvents(res: ServerResponse, events: readonly string[], options: { cutAt?: number; delayMs?: number } = {}): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'request-id': 'req_standin' });
  for (let i = 0; i < events.length; i++) {
    const event = events[i]!;
    if (options.cutAt === i) {
      // Half an event, then the connection is gone.
      res.write(event.slice(0, Math.floor(event.length / 2)));
      await new Promise((resolve) => setTimeout(resolve, 20));
      res.socket?.destroy();
      return;
    }
    // Uneven pieces: the gateway must reassemble events from any split.
    const cut = Math.max(1, Math.floor(event.length / 3));
    res.write(event.slice(0, cut));
    res.write(event.slice(cut));
    if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
    else await new Promise((resolve) => setImmediate(resolve));
  }
  res.end();
}

export async function startAnthropicStandIn(options: StandInOptions): Promise<AnthropicStandIn> {
  const requests: StandInRequest[] = [];
  const server: Server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const text = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: text });
      const json = (status: number, value: unknown): void => {
        const out = JSON.stringify(value);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out), 'request-id': 'req_standin' }).end(out);
      };
      if (req.headers['x-api-key'] !== options.apiKey) return json(401, { type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } });
      const path = (req.url ?? '').split('?')[0];
      if (req.method === 'GET' && path === '/v1/models') return json(200, { data: [{ type: 'model', id: 'claude-standin-1', display_name: 'Stand-in', created_at: '2026-01-01T00:00:00Z' }], has_more: false, first_id: 'claude-standin-1', last_id: 'claude-standin-1' });
      const body = JSON.parse(text) as Record<string, unknown>;
      const model = String(body['model']);
      if (path === '/v1/messages/count_tokens') return json(200, { input_tokens: Math.ceil(text.length / 4) });
      if (path !== '/v1/messages') return json(404, { type: 'error', error: { type: 'not_found_error', message: 'not found' } });
      const prompt = lastUserText(body);
      // The Claude Agent SDK turn: `agent-write-file <path>` asks the model for a Write tool call
      // (its content carries the PII value, split across input fragments); the turn that carries
      // the tool result gets a closing text reply.
      const agentWrite = /agent-write-file (\S+)/.exec(prompt);
      if (hasToolResult(body) || agentWrite) {
        const agentTool = agentWrite && !hasToolResult(body) ? { name: 'Write', inputFragments: writeFragments(agentWrite[1]!, options.piiValue) } : undefined;
        const agentText = agentTool ? ['I will write', ' the note.'] : ['The note', ' is written.'];
        if (body['stream'] !== true) {
          const content: object[] = [{ type: 'text', text: agentText.join('') }];
          if (agentTool) content.push({ type: 'tool_use', id: 'toolu_standin_01', name: agentTool.name, input: JSON.parse(agentTool.inputFragments.join('')) as object });
          return json(200, { id: 'msg_standin_01', type: 'message', role: 'assistant', model, content, stop_reason: agentTool ? 'tool_use' : 'end_turn', stop_sequence: null, usage: { input_tokens: 25, output_tokens: 15 } });
        }
        await writeEvents(res, recordedStream(model, agentText, agentTool));
        return;
      }
      const reply = prompt.includes('pii') ? `You can reach them at ${options.piiValue} any time.` : `Reply to: ${prompt}`;
      const tool = prompt.includes('tool') ? { name: 'send_mail', inputFragments: ['{"to": "', options.piiValue.slice(0, 5), options.piiValue.slice(5), '", "subject": "hi"}'] } : undefined;
      if (prompt.includes('think first')) {
        // Extended thinking: a signed thinking block, then the text.
        const thinkingEvents = [
          messageStart(model),
          sse('content_block_start', { index: 0, content_block: { type: 'thinking', thinking: '' } }),
          sse('content_block_delta', { index: 0, delta: { type: 'thinking_delta', thinking: 'Let me think about this.' } }),
          sse('content_block_delta', { index: 0, delta: { type: 'signature_delta', signature: 'EqQBCkYIARgCIkB0ZXN0c2lnbmF0dXJl' } }),
          sse('content_block_stop', { index: 0 }),
          sse('content_block_start', { index: 1, content_block: { type: 'text', text: '' } }),
          sse('content_block_delta', { index: 1, delta: { type: 'text_delta', text: 'Thought it through.' } }),
          sse('content_block_stop', { index: 1 }),
          sse('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 15 } }),
          sse('message_stop', {}),
        ];
        if (body['stream'] === true) return writeEvents(res, thinkingEvents);
        return json(200, { id: 'msg_standin_01', type: 'message', role: 'assistant', model, content: [{ type: 'thinking', thinking: 'Let me think about this.', signature: 'EqQBCkYIARgCIkB0ZXN0c2lnbmF0dXJl' }, { type: 'text', text: 'Thought it through.' }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 25, output_tokens: 15 } });
      }
      if (body['stream'] !== true) {
        const content: object[] = [{ type: 'text', text: reply }];
        if (tool) content.push({ type: 'tool_use', id: 'toolu_standin_01', name: tool.name, input: JSON.parse(tool.inputFragments.join('')) as object });
        return json(200, { id: 'msg_standin_01', type: 'message', role: 'assistant', model, content, stop_reason: tool ? 'tool_use' : 'end_turn', stop_sequence: null, usage: { input_tokens: 25, output_tokens: 15 } });
      }
      if (prompt.includes('overloaded')) {
        await writeEvents(res, [messageStart(model), sse('ping', {}), sse('error', { error: { type: 'overloaded_error', message: 'Overloaded' } })]);
        return;
      }
      const textDeltas = prompt.includes('long') ? Array.from({ length: 2000 }, (_, i) => `token${i} `) : deltas(reply);
      const events = recordedStream(model, textDeltas, tool);
      await writeEvents(res, events, { ...(prompt.includes('disconnect') ? { cutAt: 6 } : {}), ...(options.chunkDelayMs ? { delayMs: options.chunkDelayMs } : {}) });
    })().catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('no address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
