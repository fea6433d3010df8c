"""A FastMCP 4 server that checks Tessera tokens itself (a *direct* server, issue #15): the
three lines after the imports are the ones the README's walkthrough tells a team to add, and
frontend/tests/direct.test.mjs checks the README still quotes them verbatim.

    TESSERA_URL=http://127.0.0.1:8080 TESSERA_CLIENT_ID=tsc_… TESSERA_CLIENT_SECRET=tss_… \\
        python direct_server.py PORT     # serves http://127.0.0.1:PORT/mcp

With TESSERA_ADVERTISE=NAME (the name it is registered under) the verifier is wrapped in
FastMCP's RemoteAuthProvider, as the README's OAuth variant has it: its RFC 9728 document
and its 401 then name Tessera.

The credentials come from the environment, not argv, so they never show in a process listing.
"""

import os
import sys

import uvicorn
from fastmcp import FastMCP
from fastmcp.server.auth.providers.introspection import IntrospectionTokenVerifier

# --- the lines a team adds (quoted in docs/direct-servers.md) ---
auth = IntrospectionTokenVerifier(
    introspection_url=os.environ["TESSERA_URL"] + "/oauth/introspect",
    client_id=os.environ["TESSERA_CLIENT_ID"], client_secret=os.environ["TESSERA_CLIENT_SECRET"],
    required_scopes=["read:notes"])
mcp = FastMCP("notes", auth=auth)
# --- end ---

if os.environ.get("TESSERA_ADVERTISE"):
    # The README's OAuth variant, for the server registered as TESSERA_ADVERTISE: the verifier
    # wrapped so that the server's RFC 9728 document and its 401 name Tessera as the
    # authorization server.
    from fastmcp.server.auth import RemoteAuthProvider
    name = os.environ["TESSERA_ADVERTISE"]
    mcp = FastMCP(name, auth=RemoteAuthProvider(
        token_verifier=IntrospectionTokenVerifier(
            introspection_url=os.environ["TESSERA_URL"] + "/oauth/introspect",
            client_id=os.environ["TESSERA_CLIENT_ID"], client_secret=os.environ["TESSERA_CLIENT_SECRET"],
            required_scopes=[f"read:{name}"]),
        authorization_servers=[os.environ["TESSERA_URL"]],
        base_url=f"http://127.0.0.1:{sys.argv[1]}", scopes_supported=[f"read:{name}", f"write:{name}"]))

NOTES: list[str] = ["first note"]


@mcp.tool(annotations={"readOnlyHint": True})
def list_notes() -> list[str]:
    """List the notes."""
    return NOTES


if __name__ == "__main__":
    port = int(sys.argv[1])
    uvicorn.run(mcp.http_app(path="/mcp"), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
