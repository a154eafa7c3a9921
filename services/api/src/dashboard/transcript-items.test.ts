// The dashboard's transcript rendering (services/api/web/src/replay/transcript-items.ts): what each
// transcript entry shows, by kind, for MCP's JSON-RPC and the LLM APIs' bodies and streamed events.
import { describe, expect, it } from 'vitest';
import { transcriptItems } from '../../web/src/replay/transcript-items.js';

const entry = (messages: unknown[]) => ({ messages, byteLength: 1 });

describe('transcript items', () => {
  it('MCP: a tools/call is a tool call with its arguments, its result a tool result; other requests and errors keep their method and message', () => {
    expect(transcriptItems(entry([{ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'read_text_file', arguments: { path: '/srv/note.txt' } } }]))).toEqual([
      { kind: 'tool-call', label: 'read_text_file', text: JSON.stringify({ path: '/srv/note.txt' }, null, 2) },
    ]);
    expect(transcriptItems(entry([{ jsonrpc: '2.0', id: 3, result: { content: [{ type: 'text', text: 'hello' }] } }]))).toEqual([{ kind: 'tool-result', label: 'result', text: 'hello' }]);
    expect(transcriptItems(entry([{ jsonrpc: '2.0', id: 3, result: { content: [{ type: 'text', text: 'no such file' }], isError: true } }]))[0]).toMatchObject({ kind: 'error', text: 'no such file' });
    expect(transcriptItems(entry([{ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }]))[0]).toMatchObject({ kind: 'request', label: 'initialize' });
    expect(transcriptItems(entry([{ jsonrpc: '2.0', method: 'notifications/initialized' }]))[0]).toMatchObject({ kind: 'notification', label: 'notifications/initialized' });
    expect(transcriptItems(entry([{ jsonrpc: '2.0', id: 4, error: { code: -32001, message: 'blocked by policy (rule no-drops)' } }]))).toEqual([{ kind: 'error', label: 'error -32001', text: 'blocked by policy (rule no-drops)' }]);
  });

  it('LLM: the request shows its newest turn as the prompt (tool results apart); the response its output, tool calls and usage', () => {
    const request = { model: 'claude-x', system: 'Be brief.', messages: [{ role: 'user', content: 'What is in orders?' }] };
    expect(transcriptItems(entry([request]))).toEqual([
      { kind: 'prompt', label: 'claude-x · system', text: 'Be brief.' },
      { kind: 'prompt', label: 'claude-x · user', text: 'What is in orders?' },
    ]);
    const followUp = { model: 'claude-x', messages: [request.messages[0], { role: 'assistant', content: 'x' }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'tu_1', content: [{ type: 'text', text: '3 rows' }] }] }] };
    expect(transcriptItems(entry([followUp]))).toEqual([{ kind: 'tool-result', label: 'tu_1', text: '3 rows' }]);
    const response = { type: 'message', model: 'claude-x', content: [{ type: 'text', text: 'Let me look.' }, { type: 'tool_use', id: 'tu_1', name: 'query', input: { sql: 'SELECT 1' } }], usage: { input_tokens: 12, output_tokens: 7 } };
    expect(transcriptItems(entry([response]))).toEqual([
      { kind: 'output', label: 'claude-x', text: 'Let me look.' },
      { kind: 'tool-call', label: 'query', text: JSON.stringify({ sql: 'SELECT 1' }, null, 2) },
      { kind: 'usage', label: 'tokens', text: 'input tokens 12, output tokens 7' },
    ]);
  });

  it('LLM streams: text deltas of one frame join into one output; OpenAI chunks and bodies too', () => {
    const events = [
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hel' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'lo' } },
      { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 2 } },
      { type: 'message_stop' },
    ];
    expect(transcriptItems(entry(events))).toEqual([
      { kind: 'output', label: 'output', text: 'Hello' },
      { kind: 'usage', label: 'tokens', text: 'output tokens 2' },
    ]);
    const openai = { model: 'gpt-x', choices: [{ message: { role: 'assistant', content: 'Hi', tool_calls: [{ function: { name: 'lookup', arguments: '{"id":1}' } }] } }], usage: { prompt_tokens: 5, completion_tokens: 1 } };
    expect(transcriptItems(entry([openai]))).toEqual([
      { kind: 'output', label: 'gpt-x', text: 'Hi' },
      { kind: 'tool-call', label: 'lookup', text: '{"id":1}' },
      { kind: 'usage', label: 'tokens', text: 'prompt tokens 5, completion tokens 1' },
    ]);
  });

  it('frames that are not JSON show their bytes: as text when UTF-8, else base64; an entry naming its kind is shown as it says', () => {
    expect(transcriptItems({ data: Buffer.from('plain text').toString('base64'), byteLength: 10 })).toEqual([{ kind: 'bytes', label: '10 bytes', text: 'plain text' }]);
    expect(transcriptItems({ data: Buffer.from([0xff, 0xfe]).toString('base64'), byteLength: 2 })[0]?.text).toBe('(base64) //4=');
    expect(transcriptItems({ kind: 'usage', label: 'tokens', text: 'input 3', byteLength: 0 })).toEqual([{ kind: 'usage', label: 'tokens', text: 'input 3' }]);
  });
});
