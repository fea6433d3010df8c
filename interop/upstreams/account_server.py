"""A FastMCP upstream protected by an outside OAuth authorization server (an `oidc-provider`
the test runs): it publishes RFC 9728 metadata naming that server and accepts only its JWT
access tokens for this resource. `whoami` says whose token arrived, for the connected-accounts
tests (issue #25).

    python account_server.py PORT ISSUER     # serves http://localhost:PORT/mcp
"""

import sys

import uvicorn
from fastmcp import FastMCP
from fastmcp.server.auth import RemoteAuthProvider
from fastmcp.server.auth.providers.jwt import JWTVerifier
from fastmcp.server.dependencies import get_access_token

port, issuer = int(sys.argv[1]), sys.argv[2].rstrip("/")
base = f"http://localhost:{port}"
resource = f"{base}/mcp"

verifier = JWTVerifier(jwks_uri=f"{issuer}/jwks", issuer=issuer, audience=resource, algorithm="RS256")
auth = RemoteAuthProvider(token_verifier=verifier, authorization_servers=[issuer], base_url=base, scopes_supported=["notes"])
mcp = FastMCP("accounts", auth=auth)


@mcp.tool(annotations={"readOnlyHint": True})
def whoami() -> dict:
    """Who the access token was issued to."""
    token = get_access_token()
    return {"sub": token.claims.get("sub") if token else None}


if __name__ == "__main__":
    app = mcp.http_app(path="/mcp")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
