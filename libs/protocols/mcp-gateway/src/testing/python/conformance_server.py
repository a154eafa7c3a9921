"""The gateway conformance suite's upstream in the stateless era (MCP 2026-07-28 only), built with
the official Python SDK (mcp 2.x): the suite's tools (echo, delete_records, transfer,
lookup_customer), the credential the gateway must present, and the PII value to return.

Usage: CONFORMANCE_CREDENTIAL=... CONFORMANCE_PII=... python conformance_server.py <port>.
Prints `READY <port>` once listening and `CALL <tool> <JSON arguments>` for every tool it runs (the
suite's "did it reach the upstream" observation). Requests without `Authorization: Bearer
<credential>` get 401; `initialize` gets -32022 (a server of the 2026-07-28 era only).
"""

import asyncio
import json
import os
import sys

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

port = int(sys.argv[1])
CREDENTIAL = os.environ["CONFORMANCE_CREDENTIAL"]
PII = os.environ["CONFORMANCE_PII"]
server = MCPServer("python-conformance-upstream")


def ran(tool, arguments):
    print(f"CALL {tool} {json.dumps(arguments, sort_keys=True)}", flush=True)


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def echo(message: str) -> str:
    """Echoes a message."""
    ran("echo", {"message": message})
    return f"echo {message}"


@server.tool(annotations=ToolAnnotations(destructive_hint=True))
def delete_records(table: str) -> str:
    """Deletes records."""
    ran("delete_records", {"table": table})
    return f"deleted {table}"


@server.tool()
def transfer(to: str, amount: float) -> str:
    """Moves money."""
    ran("transfer", {"to": to, "amount": amount})
    return f"transferred {amount} to {to}"


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def lookup_customer(id: str) -> str:
    """Looks a customer up."""
    ran("lookup_customer", {"id": id})
    return f"customer {id}: {PII}"


app = server.streamable_http_app(stateless_http=True)


async def reply(send, status, body):
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


class Guard:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if headers.get("authorization") != f"Bearer {CREDENTIAL}":
            await reply(send, 401, {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "unauthorized"}})
            return
        if scope["method"] != "POST":
            await self.inner(scope, receive, send)
            return
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
            await reply(send, 400, {"jsonrpc": "2.0", "id": parsed.get("id"), "error": {"code": -32022, "message": "Unsupported protocol version", "data": {"supported": ["2026-07-28"]}}})
            return
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.inner(scope, replay, send)


config = uvicorn.Config(Guard(app), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
uv = uvicorn.Server(config)


async def main():
    task = asyncio.create_task(uv.serve())
    while not uv.started:
        await asyncio.sleep(0.05)
    print(f"READY {port}", flush=True)
    await task


asyncio.run(main())
