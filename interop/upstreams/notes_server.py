"""A small FastMCP upstream for the gateway tests: one read-only tool, one write tool, and a
record of the raw HTTP headers of every request it received (FastMCP's own
get_http_headers() drops authorization and cookie, so it could not prove they never came).

    python notes_server.py PORT     # serves http://127.0.0.1:PORT/mcp, GET /seen-headers
"""

import sys

import uvicorn
from fastmcp import FastMCP
from starlette.requests import Request
from starlette.responses import JSONResponse

mcp = FastMCP("notes")
NOTES: list[str] = []
SEEN: list[dict[str, str]] = []


@mcp.tool(annotations={"readOnlyHint": True})
def list_notes() -> list[str]:
    """List the notes."""
    return NOTES


@mcp.tool(annotations={"readOnlyHint": False})
def add_note(text: str) -> str:
    """Add a note."""
    NOTES.append(text)
    return f"added note {len(NOTES)}"


@mcp.custom_route("/seen-headers", methods=["GET"])
async def seen_headers(_: Request) -> JSONResponse:
    return JSONResponse(SEEN)


def recording(app):
    """ASGI wrapper: keeps the raw headers of every request to /mcp."""

    async def wrapped(scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith("/mcp"):
            SEEN.append({k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]})
        await app(scope, receive, send)

    return wrapped


if __name__ == "__main__":
    port = int(sys.argv[1])
    app = mcp.http_app(path="/mcp")
    uvicorn.run(recording(app), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
