"""An MCP server built with the official Python SDK (mcp 2.x), which serves the stateless era
(2026-07-28: server/discover, per-request _meta, Mcp-Method/Mcp-Name) and the session era on the
same endpoint. Used as an upstream by the MCP gateway's tests.

Usage: python stateless_server.py <port> [modern-only]. With `modern-only`, `initialize` is refused
(-32022, as a server of the 2026-07-28 era only answers it), so only stateless requests work. Prints `READY <port>` once listening; prints
`AUTH <value>` for every Authorization header it receives (the tests assert the client's token never
arrives) and `ERA <method> <protocol-version header>` for every POST.
"""

import json
import sys

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import InputRequiredResult, ToolAnnotations

port = int(sys.argv[1])
MODERN_ONLY = len(sys.argv) > 2 and sys.argv[2] == "modern-only"
server = MCPServer("python-stateless-upstream", instructions="A test upstream.")


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def lookup(customer: str) -> str:
    """Looks a customer up."""
    return f"customer {customer}: contact ann.smith@example.com"


@server.tool(annotations=ToolAnnotations(destructive_hint=True))
def drop_table(table: str) -> str:
    """Drops a table."""
    return f"dropped {table}"


@server.tool()
def confirm_transfer(amount: int, ctx: Context) -> str | InputRequiredResult:
    """Asks the user to confirm (multi round-trip: input_required, then the retry)."""
    if ctx.request_state is None:
        return InputRequiredResult(
            input_requests={
                "confirm": {
                    "method": "elicitation/create",
                    "params": {
                        "mode": "form",
                        "message": f"Transfer {amount}? Reply to ann.smith@example.com",
                        "requestedSchema": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
                    },
                }
            },
            request_state="round-1",
            result_type="input_required",
        )
    responses = ctx.input_responses or {}
    return f"transfer {amount} confirmed={bool(responses)} state={ctx.request_state}"


app = server.streamable_http_app(stateless_http=True)


class Observe:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            if "authorization" in headers:
                print(f"AUTH {headers['authorization']}", flush=True)
            if scope["method"] == "POST":
                print(f"ERA {headers.get('mcp-method', '-')} {headers.get('mcp-protocol-version', '-')}", flush=True)
                if MODERN_ONLY:
                    chunks = []
                    more = True
                    while more:
                        message = await receive()
                        chunks.append(message.get("body", b""))
                        more = message.get("more_body", False)
                    body = b"".join(chunks)
                    try:
                        parsed = json.loads(body)
                    except ValueError:
                        parsed = None
                    if isinstance(parsed, dict) and parsed.get("method") == "initialize":
                        error = {"jsonrpc": "2.0", "id": parsed.get("id"), "error": {"code": -32022, "message": "Unsupported protocol version", "data": {"supported": ["2026-07-28"], "requested": str(parsed.get("params", {}).get("protocolVersion"))}}}
                        payload = json.dumps(error).encode()
                        await send({"type": "http.response.start", "status": 400, "headers": [(b"content-type", b"application/json")]})
                        await send({"type": "http.response.body", "body": payload})
                        return
                    replayed = False

                    async def replay():
                        nonlocal replayed
                        if not replayed:
                            replayed = True
                            return {"type": "http.request", "body": body, "more_body": False}
                        return await receive()

                    await self.inner(scope, replay, send)
                    return
        await self.inner(scope, receive, send)


config = uvicorn.Config(Observe(app), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
uv = uvicorn.Server(config)


async def main():
    import asyncio

    task = asyncio.create_task(uv.serve())
    while not uv.started:
        await asyncio.sleep(0.05)
    print(f"READY {port}", flush=True)
    await task


import asyncio

asyncio.run(main())
