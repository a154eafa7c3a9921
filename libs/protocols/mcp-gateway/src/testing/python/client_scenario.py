"""A client built with the official Python SDK (mcp 2.x, mode='auto': probes server/discover and
speaks the stateless era 2026-07-28 when the server does, else falls back to initialize). Runs one
scenario against an MCP endpoint and prints one JSON object with what it saw.

Usage: python client_scenario.py <url> <bearer token> <tool> <arguments JSON> [<tool> <arguments JSON> ...]
"""

import asyncio
import json
import sys

import httpx2
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import ElicitResult


ELICITATIONS: list = []


async def elicit(_context, params):
    ELICITATIONS.append(params.model_dump(mode="json", by_alias=True, exclude_none=True))
    return ElicitResult(action="accept", content={"ok": True})


async def main() -> None:
    url, token, *calls = sys.argv[1:]
    out: dict = {"calls": []}
    async with httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=60) as http:
        async with Client(streamable_http_client(url, http_client=http), elicitation_callback=elicit) as client:
            out["protocolVersion"] = client.protocol_version
            out["tools"] = sorted(t.name for t in (await client.list_tools()).tools)
            for name, arguments in zip(calls[0::2], calls[1::2]):
                try:
                    result = await client.call_tool(name, json.loads(arguments))
                    out["calls"].append({"tool": name, "result": result.model_dump(mode="json", by_alias=True, exclude_none=True)})
                except MCPError as error:
                    out["calls"].append({"tool": name, "error": {"code": error.code, "message": error.error.message, "data": error.error.data}})
    out["elicitations"] = ELICITATIONS
    print(json.dumps(out), flush=True)


asyncio.run(main())
