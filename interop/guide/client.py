import httpx
import json

# Your API token from the token management system
token = "YOUR_JWT_TOKEN_HERE"

# MCP request headers
headers = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
    "Authorization": f"Bearer {token}"
}

# Initialize MCP connection
async with httpx.AsyncClient() as client:
    # Send initialization request
    response = await client.post(
        "http://localhost:8000/mcp/initialize",
        headers=headers,
        json={
            "jsonrpc": "2.0",
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {}
            },
            "id": 1
        }
    )
    
    print(response.json())
