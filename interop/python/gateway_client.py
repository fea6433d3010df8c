"""Drives a server behind Tessera's gateway (/mcp/{name}) with the official MCP Python SDK.

Usage: TESSERA_TOKEN=<secret> [MCP_PIN=<version>] python gateway_client.py <url of /mcp/NAME> <tool> [<json arguments>]

Initializes (or, with MCP_PIN set to a stateless-era version such as 2026-07-28, uses the
SDK's `Client` pinned to it: no initialize, Mcp-Method/Mcp-Name on every request), lists the tools, calls <tool> and prints one JSON object: the negotiated
version, the listed tool names and the call's text and error flag; exits 0. Any failure
prints {"error": ...} and exits 1. The token comes from the environment, not argv, so it
never shows in a process listing.
"""

import asyncio
import json
import os
import sys

import httpx2
from mcp import ClientSession
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_client import describe


def summary(version: str, tools, called) -> dict:
    """What the script prints: the negotiated version, the listed tool names, the call's result."""
    return {
        "protocol_version": version,
        "tools": sorted(t.name for t in tools.tools),
        "call": {
            "is_error": bool(called.is_error),
            "text": "\n".join(c.text for c in called.content if getattr(c, "type", "") == "text"),
        },
    }


async def run(url: str, token: str, tool: str, arguments: dict) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with streamable_http_client(url, http_client=http, terminate_on_close=False) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                init = await session.initialize()
                tools = await session.list_tools()
                called = await session.call_tool(tool, arguments)
                return summary(init.protocol_version, tools, called)


async def run_pinned(url: str, token: str, tool: str, arguments: dict, version: str) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=version) as client:
            tools = await client.list_tools()
            called = await client.call_tool(tool, arguments)
            return summary(client.protocol_version, tools, called)


def main() -> int:
    if len(sys.argv) not in (3, 4) or "TESSERA_TOKEN" not in os.environ:
        print(__doc__, file=sys.stderr)
        return 2
    arguments = json.loads(sys.argv[3]) if len(sys.argv) == 4 else {}
    try:
        if pin := os.environ.get("MCP_PIN"):
            result = asyncio.run(run_pinned(sys.argv[1], os.environ["TESSERA_TOKEN"], sys.argv[2], arguments, pin))
        else:
            result = asyncio.run(run(sys.argv[1], os.environ["TESSERA_TOKEN"], sys.argv[2], arguments))
    except BaseException as e:  # noqa: BLE001 - report anything, including exception groups
        print(json.dumps({"error": f"{type(e).__name__}: {describe(e)}"}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
