// What a transcript entry (GET /v1/streams/{session}/transcript) says, as items of a few kinds the
// page renders the same way for every protocol: a prompt, model output, a tool call, a tool result,
// token usage, and the protocol's other requests, responses, notifications and errors. Entries carry
// the decoded JSON messages of the frame: MCP's JSON-RPC, or an LLM API's request and response
// bodies (Anthropic Messages, OpenAI Chat Completions; whole bodies or their streamed SSE events).
// An entry may name its kind itself (`kind`); then that is used as is.

export type TranscriptItemKind =
  | "prompt"
  | "output"
  | "tool-call"
  | "tool-result"
  | "usage"
  | "request"
  | "response"
  | "notification"
  | "error"
  | "bytes";

export interface TranscriptItem {
  readonly kind: TranscriptItemKind;
  /** Short heading: the method, tool or model. */
  readonly label: string;
  readonly text: string;
}

export interface TranscriptEntryLike {
  readonly messages?: readonly unknown[];
  readonly data?: string;
  readonly byteLength: number;
  readonly kind?: string;
  readonly text?: string;
  readonly label?: string;
}

export const KIND_LABELS: Readonly<Record<TranscriptItemKind, string>> = {
  prompt: "Prompt",
  output: "Output",
  "tool-call": "Tool call",
  "tool-result": "Tool result",
  usage: "Usage",
  request: "Request",
  response: "Response",
  notification: "Notification",
  error: "Error",
  bytes: "Bytes",
};

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

function json(value: unknown): string {
  return JSON.stringify(value, null, 2) ?? "";
}

/** Text of a content value: a string, or blocks with `text` (MCP and Anthropic content, OpenAI parts). */
function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content))
    return content === undefined ? "" : json(content);
  return content
    .map((block) => {
      if (!isObject(block)) return json(block);
      if (typeof block["text"] === "string") return block["text"];
      if (block["type"] === "tool_result") return contentText(block["content"]);
      return json(block);
    })
    .join("\n");
}

function usageText(usage: Json): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(usage))
    if (typeof value === "number")
      parts.push(`${key.replace(/_/g, " ")} ${value}`);
  return parts.join(", ");
}

function toolArguments(value: unknown): string {
  if (typeof value === "string") return value;
  return value === undefined ? "" : json(value);
}

/** JSON-RPC 2.0 (MCP). */
function jsonRpcItems(message: Json): TranscriptItem[] {
  const method = str(message["method"]);
  const params = message["params"];
  if (method === "tools/call" && isObject(params))
    return [
      {
        kind: "tool-call",
        label: str(params["name"]) ?? "tool",
        text: toolArguments(params["arguments"]),
      },
    ];
  if (
    method === "sampling/createMessage" &&
    isObject(params) &&
    Array.isArray(params["messages"])
  ) {
    const last: unknown = params["messages"][params["messages"].length - 1];
    return [
      {
        kind: "prompt",
        label: "sampling",
        text: isObject(last) ? contentText(last["content"]) : json(last),
      },
    ];
  }
  if (method !== undefined)
    return [
      {
        kind: "id" in message ? "request" : "notification",
        label: method,
        text: params === undefined ? "" : json(params),
      },
    ];
  if (isObject(message["error"])) {
    const error = message["error"];
    return [
      {
        kind: "error",
        label: `error ${String(error["code"] ?? "")}`.trim(),
        text: str(error["message"]) ?? json(error),
      },
    ];
  }
  const result = message["result"];
  if (
    isObject(result) &&
    (Array.isArray(result["content"]) || "structuredContent" in result)
  ) {
    const text = Array.isArray(result["content"])
      ? contentText(result["content"])
      : json(result["structuredContent"]);
    return [
      {
        kind: result["isError"] === true ? "error" : "tool-result",
        label: result["isError"] === true ? "tool error" : "result",
        text,
      },
    ];
  }
  return [{ kind: "response", label: "result", text: json(result) }];
}

/** The newest turn of an LLM request (the earlier ones were shown when they were sent). */
function llmRequestItems(body: Json): TranscriptItem[] {
  const model = str(body["model"]) ?? "model";
  const messages = body["messages"] as unknown[];
  const items: TranscriptItem[] = [];
  if (messages.length <= 1 && body["system"] !== undefined)
    items.push({
      kind: "prompt",
      label: `${model} · system`,
      text: contentText(body["system"]),
    });
  const last = messages[messages.length - 1];
  if (!isObject(last)) return items;
  const role = str(last["role"]) ?? "user";
  const content = last["content"];
  if (Array.isArray(content)) {
    const results = content.filter(
      (b) => isObject(b) && b["type"] === "tool_result",
    );
    for (const block of results)
      items.push({
        kind: "tool-result",
        label: str((block as Json)["tool_use_id"]) ?? "tool result",
        text: contentText((block as Json)["content"]),
      });
    const rest = content.filter((b) => !results.includes(b));
    if (rest.length > 0)
      items.push({
        kind: "prompt",
        label: `${model} · ${role}`,
        text: contentText(rest),
      });
  } else if (role === "tool") {
    items.push({
      kind: "tool-result",
      label: str(last["tool_call_id"]) ?? "tool result",
      text: contentText(content),
    });
  } else {
    items.push({
      kind: "prompt",
      label: `${model} · ${role}`,
      text: contentText(content),
    });
  }
  return items;
}

/** An LLM response body or one of its streamed events (Anthropic Messages, OpenAI Chat Completions). */
function llmResponseItems(message: Json): TranscriptItem[] | undefined {
  const type = str(message["type"]);
  const items: TranscriptItem[] = [];
  if (type === "message" && Array.isArray(message["content"])) {
    for (const block of message["content"]) {
      if (!isObject(block)) continue;
      if (block["type"] === "tool_use")
        items.push({
          kind: "tool-call",
          label: str(block["name"]) ?? "tool",
          text: toolArguments(block["input"]),
        });
      else if (typeof block["text"] === "string")
        items.push({
          kind: "output",
          label: str(message["model"]) ?? "output",
          text: block["text"],
        });
    }
    if (isObject(message["usage"]))
      items.push({
        kind: "usage",
        label: "tokens",
        text: usageText(message["usage"]),
      });
    return items;
  }
  if (
    type === "message_start" &&
    isObject(message["message"]) &&
    isObject(message["message"]["usage"])
  )
    return [
      {
        kind: "usage",
        label: "tokens",
        text: usageText(message["message"]["usage"]),
      },
    ];
  if (
    type === "content_block_start" &&
    isObject(message["content_block"]) &&
    message["content_block"]["type"] === "tool_use"
  )
    return [
      {
        kind: "tool-call",
        label: str(message["content_block"]["name"]) ?? "tool",
        text: "",
      },
    ];
  if (type === "content_block_delta" && isObject(message["delta"])) {
    const delta = message["delta"];
    if (typeof delta["text"] === "string")
      return [{ kind: "output", label: "output", text: delta["text"] }];
    if (typeof delta["partial_json"] === "string")
      return [
        { kind: "tool-call", label: "arguments", text: delta["partial_json"] },
      ];
    return [];
  }
  if (type === "message_delta")
    return isObject(message["usage"])
      ? [{ kind: "usage", label: "tokens", text: usageText(message["usage"]) }]
      : [];
  if (
    type === "content_block_stop" ||
    type === "message_stop" ||
    type === "ping"
  )
    return [];
  if (type === "error" && isObject(message["error"]))
    return [
      {
        kind: "error",
        label: str(message["error"]["type"]) ?? "error",
        text: str(message["error"]["message"]) ?? json(message["error"]),
      },
    ];
  if (Array.isArray(message["choices"])) {
    for (const choice of message["choices"]) {
      if (!isObject(choice)) continue;
      const part = isObject(choice["message"])
        ? choice["message"]
        : isObject(choice["delta"])
          ? choice["delta"]
          : undefined;
      if (!part) continue;
      if (typeof part["content"] === "string" && part["content"] !== "")
        items.push({
          kind: "output",
          label: str(message["model"]) ?? "output",
          text: part["content"],
        });
      if (Array.isArray(part["tool_calls"])) {
        for (const call of part["tool_calls"]) {
          const fn =
            isObject(call) && isObject(call["function"])
              ? call["function"]
              : undefined;
          if (fn)
            items.push({
              kind: "tool-call",
              label: str(fn["name"]) ?? "arguments",
              text: toolArguments(fn["arguments"]),
            });
        }
      }
    }
    if (isObject(message["usage"]))
      items.push({
        kind: "usage",
        label: "tokens",
        text: usageText(message["usage"]),
      });
    return items;
  }
  return undefined;
}

/** Consecutive streamed pieces of the same kind and label (text deltas) become one item. */
function merged(items: readonly TranscriptItem[]): TranscriptItem[] {
  const out: TranscriptItem[] = [];
  for (const item of items) {
    const previous = out[out.length - 1];
    if (
      previous &&
      (item.kind === "output" ||
        (item.kind === "tool-call" && item.label === "arguments")) &&
      previous.kind === item.kind &&
      (previous.label === item.label || item.label === "arguments")
    ) {
      out[out.length - 1] = { ...previous, text: previous.text + item.text };
    } else out.push(item);
  }
  return out;
}

function messageItems(message: unknown): TranscriptItem[] {
  if (!isObject(message))
    return Array.isArray(message)
      ? message.flatMap(messageItems)
      : [{ kind: "response", label: "value", text: json(message) }];
  if (message["jsonrpc"] === "2.0") return jsonRpcItems(message);
  if (Array.isArray(message["messages"])) return llmRequestItems(message);
  return (
    llmResponseItems(message) ?? [
      { kind: "response", label: "message", text: json(message) },
    ]
  );
}

/** The items one transcript entry shows. */
export function transcriptItems(entry: TranscriptEntryLike): TranscriptItem[] {
  if (typeof entry.kind === "string" && entry.kind in KIND_LABELS)
    return [
      {
        kind: entry.kind as TranscriptItemKind,
        label: entry.label ?? "",
        text: entry.text ?? (entry.messages ? json(entry.messages) : ""),
      },
    ];
  if (entry.messages) return merged(entry.messages.flatMap(messageItems));
  return [
    {
      kind: "bytes",
      label: `${entry.byteLength} bytes`,
      text: entry.data === undefined ? "" : bytesText(entry.data),
    },
  ];
}

/** The bytes as UTF-8 text when they are, else their base64. */
function bytesText(base64: string): string {
  try {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return `(base64) ${base64}`;
  }
}
