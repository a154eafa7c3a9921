// Test-only stand-in for the Anthropic Messages API (the public API cannot be reached here): a
// small local server speaking its wire format (JSON, or SSE with message_start … message_stop) and
// playing one scripted turn: while the model has no tool result it calls the tool scripted for the
// prompt; once
// it has one it answers with the result's text. It keeps every request (the tools it was offered,
// the tool results it got) for the test to check.
import { createServer, type Server } from 'node:http';

export interface ModelRequest {
  readonly path: string;
  readonly body: { readonly tools?: { readonly name: string }[]; readonly messages?: { readonly role: string; readonly content: unknown }[]; readonly stream?: boolean; readonly model?: string };
}

export interface AnthropicModelStandIn {
  readonly url: string;
  readonly requests: ModelRequest[];
  /** The text of every tool_result block the model was sent. */
  toolResults(): string[];
  stop(): Promise<void>;
}

interface Block {
  readonly type: string;
  readonly text?: string;
  readonly content?: unknown;
}

function blocks(content: unknown): Block[] {
  return Array.isArray(content) ? (content as Block[]) : [];
}

function resultText(block: Block): string {
  return typeof block.content === 'string' ? block.content : blocks(block.content).map((b) => b.text ?? '').join('');
}

/** `script`: the tool call the model makes for a prompt (the first user message contains `prompt`), if the tool is offered. */
export async function startAnthropicModelStandIn(script: readonly { readonly prompt: string; readonly tool: string; readonly input: Record<string, unknown> }[]): Promise<AnthropicModelStandIn> {
  const requests: ModelRequest[] = [];
  const server: Server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
      const text = Buffer.concat(chunks).toString('utf8');
      const body = (text === '' ? {} : JSON.parse(text)) as ModelRequest['body'];
      const path = req.url ?? '/';
      requests.push({ path, body });
      if (path.startsWith('/v1/messages/count_tokens')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"input_tokens":10}');
        return;
      }
      if (!path.startsWith('/v1/messages')) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"type":"error","error":{"type":"not_found_error","message":"stand-in"}}');
        return;
      }
      const last = body.messages?.at(-1);
      const result = blocks(last?.content).find((b) => b.type === 'tool_result');
      const names = new Set((body.tools ?? []).map((t) => t.name));
      const first = body.messages?.[0];
      const prompt = typeof first?.content === 'string' ? first.content : blocks(first?.content).map((b) => b.text ?? '').join('');
      const call = script.find((step) => prompt.includes(step.prompt) && names.has(step.tool));
      const content = result
        ? [{ type: 'text', text: `The tool said: ${resultText(result)}` }]
        : call
          ? [{ type: 'tool_use', id: `toolu_${requests.length}`, name: call.tool, input: call.input }]
          : [{ type: 'text', text: 'No tool to call.' }];
      const stopReason = content[0]!.type === 'tool_use' ? 'tool_use' : 'end_turn';
      const message = { id: `msg_${requests.length}`, type: 'message', role: 'assistant', model: body.model ?? 'stand-in', content, stop_reason: stopReason, stop_sequence: null, usage: { input_tokens: 10, output_tokens: 5 } };
      if (!body.stream) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(message));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const event = (type: string, data: Record<string, unknown>): void => void res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
      event('message_start', { message: { ...message, content: [], stop_reason: null } });
      content.forEach((block, index) => {
        if (block.type === 'text') {
          event('content_block_start', { index, content_block: { type: 'text', text: '' } });
          event('content_block_delta', { index, delta: { type: 'text_delta', text: (block as { text: string }).text } });
        } else {
          const call = block as { id: string; name: string; input: unknown };
          event('content_block_start', { index, content_block: { type: 'tool_use', id: call.id, name: call.name, input: {} } });
          event('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: JSON.stringify(call.input) } });
        }
        event('content_block_stop', { index });
      });
      event('message_delta', { delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: 5 } });
      event('message_stop', {});
      res.end();
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    toolResults: () => requests.flatMap((r) => (r.body.messages ?? []).flatMap((m) => blocks(m.content).filter((b) => b.type === 'tool_result').map(resultText))),
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
