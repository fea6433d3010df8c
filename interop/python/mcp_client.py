"""Drives Tessera's /mcp with the official MCP Python SDK, as a real client would.

Usage: TESSERA_TOKEN=<secret> python mcp_client.py <mcp url> [<protocol version>]

Without a version: the handshake era (initialize -> tools/list -> tools/call whoami and
create_task). With a stateless-era version such as 2026-07-28: the SDK's `Client` pinned to
it (no initialize; every request carries the version and the Mcp-Method/Mcp-Name headers).
The token goes in the Authorization header; prints one JSON object describing what the
server answered, and exits 0. Any failure (401 included) prints {"error": ...} and exits 1. The token comes
from the environment, not argv, so it never shows in a process listing.
"""

import asyncio
import json
import os
import sys

import httpx2
from mcp import ClientSession
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client


async def run(url: str, token: str) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with streamable_http_client(url, http_client=http, terminate_on_close=False) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                init = await session.initialize()
                tools = await session.list_tools()
                whoami = await session.call_tool("whoami", {})
                created = await session.call_tool("create_task", {"title": "from the Python SDK"})
                return {
                    "protocol_version": init.protocol_version,
                    "server": init.server_info.name,
                    "tools": sorted(t.name for t in tools.tools),
                    "whoami": {"is_error": bool(whoami.is_error), "structured": whoami.structured_content},
                    "create_task": {"is_error": bool(created.is_error), "structured": created.structured_content},
                }


async def run_pinned(url: str, token: str, version: str) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=version) as client:
            tools = await client.list_tools()
            whoami = await client.call_tool("whoami", {})
            created = await client.call_tool("create_task", {"title": "from the Python SDK"})
            return {
                "protocol_version": client.protocol_version,
                "tools": sorted(t.name for t in tools.tools),
                "whoami": {"is_error": bool(whoami.is_error), "structured": whoami.structured_content},
                "create_task": {"is_error": bool(created.is_error), "structured": created.structured_content},
            }


def main() -> int:
    if len(sys.argv) not in (2, 3) or "TESSERA_TOKEN" not in os.environ:
        print(__doc__, file=sys.stderr)
        return 2
    url, token = sys.argv[1], os.environ["TESSERA_TOKEN"]
    try:
        if len(sys.argv) == 3:
            result = asyncio.run(run_pinned(url, token, sys.argv[2]))
        else:
            result = asyncio.run(run(url, token))
    except BaseException as e:  # noqa: BLE001 - report anything, including exception groups
        print(json.dumps({"error": f"{type(e).__name__}: {describe(e)}"}))
        return 1
    print(json.dumps(result))
    return 0


def describe(e: BaseException) -> str:
    """The innermost messages of an exception group (anyio wraps transport errors)."""
    inner = getattr(e, "exceptions", None)
    if inner:
        return "; ".join(describe(x) for x in inner)
    return str(e)


if __name__ == "__main__":
    sys.exit(main())
