"""Test stand-in for a stdio MCP server of the 2026-07-28 era only: runs the Python SDK's stdio
server (stdio_server.py, both eras) as a child and refuses `initialize` itself with -32022, as a
server that speaks only 2026-07-28 does; every other line passes through unchanged, both ways.

Usage: python stdio_modern_only.py (the gateway runs it; nothing but MCP goes to stdout).
"""

import json
import os
import subprocess
import sys
import threading

child = subprocess.Popen(
    [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "stdio_server.py")],
    stdin=subprocess.PIPE,
    stdout=subprocess.PIPE,
)
lock = threading.Lock()


def write(line: bytes) -> None:
    with lock:
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()


def pump() -> None:
    for line in child.stdout:
        write(line)
    os._exit(0)


threading.Thread(target=pump, daemon=True).start()
for line in sys.stdin.buffer:
    try:
        message = json.loads(line)
    except ValueError:
        message = None
    if isinstance(message, dict) and message.get("method") == "initialize":
        requested = str((message.get("params") or {}).get("protocolVersion"))
        error = {"jsonrpc": "2.0", "id": message.get("id"), "error": {"code": -32022, "message": "Unsupported protocol version", "data": {"supported": ["2026-07-28"], "requested": requested}}}
        write((json.dumps(error) + "\n").encode())
        continue
    child.stdin.write(line)
    child.stdin.flush()
child.stdin.close()
child.wait()
