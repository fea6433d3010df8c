"""Drives Tessera's OAuth with the official MCP Python SDK's OAuthClientProvider, identified
by a Client ID Metadata Document, as a native client would.

Usage: python mcp_oauth_client.py <mcp url> <client metadata document url> <redirect uri>

When the browser must open the authorization URL it prints {"authorize": "<url>"} on one
line and reads one line of JSON from stdin: the redirect's {"code", "state", "iss"} (the
test drives the browser). Then it lists tools and calls whoami, prints one JSON object as
its last line and exits 0; any failure prints {"error": ...} and exits 1.
"""

import asyncio
import json
import sys

import httpx2
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata


class MemoryStorage:
    """Tokens and client information kept for the life of the process."""

    def __init__(self):
        self.tokens = None
        self.client = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, client_info):
        self.client = client_info


async def redirect_handler(authorization_url: str) -> None:
    print(json.dumps({"authorize": authorization_url}), flush=True)


async def callback_handler() -> AuthorizationCodeResult:
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    params = json.loads(line)
    return AuthorizationCodeResult(code=params["code"], state=params.get("state"), iss=params.get("iss"))


async def run(url: str, document_url: str, redirect_uri: str) -> dict:
    storage = MemoryStorage()
    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="Python CIMD client", redirect_uris=[redirect_uri], token_endpoint_auth_method="none"
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
        client_metadata_url=document_url,
    )
    async with httpx2.AsyncClient(auth=provider, timeout=60) as http:
        async with streamable_http_client(url, http_client=http, terminate_on_close=False) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                tools = await session.list_tools()
                whoami = await session.call_tool("whoami", {})
                return {
                    "client_id": storage.client.client_id if storage.client else None,
                    "tools": sorted(t.name for t in tools.tools),
                    "whoami": {"is_error": bool(whoami.is_error), "structured": whoami.structured_content},
                }


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        result = asyncio.run(run(sys.argv[1], sys.argv[2], sys.argv[3]))
    except BaseException as e:  # noqa: BLE001 - report anything, including exception groups
        print(json.dumps({"error": f"{type(e).__name__}: {e!r}"}), flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
