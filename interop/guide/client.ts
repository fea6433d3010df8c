const token = "YOUR_JWT_TOKEN_HERE";

const mcpClient = {
  baseUrl: "http://localhost:8000/mcp/",
  headers: {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
    "Authorization": `Bearer ${token}`
  },
  
  async initialize() {
    const response = await fetch(`${this.baseUrl}initialize`, {
      method: "POST",
      headers: this.headers,
      body: JSON.stringify({
        jsonrpc: "2.0",
        method: "initialize",
        params: {
          protocolVersion: "2025-06-18",
          capabilities: {}
        },
        id: 1
      })
    });
    
    return response.json();
  }
};
