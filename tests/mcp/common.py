"""What the MCP client scripts share: connecting to DevGem with the official Python `mcp`
package (2.x) over stdio (`devgem mcp`) or Streamable HTTP (`POST /mcp`), and checks that say
what went wrong. tests/mcp.rs runs the scripts; each exits non-zero when a check fails.

The server is named by the environment:
  MCP_TRANSPORT=stdio  MCP_COMMAND=/path/to/devgem   (devgem mcp, with this environment)
  MCP_TRANSPORT=http   MCP_URL=http://127.0.0.1:PORT/mcp  MCP_TOKEN=... (optional)
  MCP_MODE=auto|legacy  (auto: the 2026-07-28 server/discover probe; legacy: initialize)
"""

import contextlib
import json
import os
import sys

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client


def check(condition, what, detail=None):
    if not condition:
        extra = f"\n{json.dumps(detail, indent=2, default=str)}" if detail is not None else ""
        sys.exit(f"CHECK FAILED: {what}{extra}")


def report(**facts):
    """The script's findings, one JSON line on stdout, for the Rust test to read."""
    print(json.dumps(facts, default=str), flush=True)


@contextlib.asynccontextmanager
async def http_client(token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # Deploys wait until the app is live: allow minutes between bytes of a response.
    timeout = httpx2.Timeout(30.0, read=600.0)
    async with httpx2.AsyncClient(headers=headers, timeout=timeout) as client:
        yield client


@contextlib.asynccontextmanager
async def connect(token=None):
    """A connected Client for the server the environment names."""
    mode = os.environ.get("MCP_MODE", "auto")
    transport = os.environ["MCP_TRANSPORT"]
    if transport == "stdio":
        params = StdioServerParameters(
            command=os.environ["MCP_COMMAND"], args=["mcp"], env=dict(os.environ)
        )
        async with Client(params, mode=mode, read_timeout_seconds=600) as client:
            yield client
    elif transport == "http":
        if token is None:
            token = os.environ.get("MCP_TOKEN")
        async with http_client(token) as http:
            async with Client(
                streamable_http_client(os.environ["MCP_URL"], http_client=http),
                mode=mode,
                read_timeout_seconds=600,
            ) as client:
                yield client
    else:
        sys.exit(f"MCP_TRANSPORT must be stdio or http, not {transport!r}")
