"""A stdio MCP server built with the official Python SDK (mcp 2.x): it answers the stateless era
(2026-07-28: server/discover, requests carrying their own _meta, no initialize) and the session era
on the same stdin/stdout. Used as a stdio connection by the MCP gateway's tests.

Usage: python stdio_server.py (the gateway runs it; nothing but MCP goes to stdout).
"""

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

server = MCPServer("python-stdio-upstream", instructions="A stdio test upstream.")


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def lookup(customer: str) -> str:
    """Looks a customer up."""
    return f"customer {customer}: contact ann.smith@example.com"


@server.tool(annotations=ToolAnnotations(destructive_hint=True))
def drop_table(table: str) -> str:
    """Drops a table."""
    return f"dropped {table}"


server.run("stdio")
