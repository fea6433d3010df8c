//! Measures revocation propagation between two Tessera instances on one database: mint on
//! A, warm B's cache with an MCP call, revoke on A, then poll B until it refuses the token.
//!
//! Usage: `revocation-probe <a-base-url> <b-base-url> <api-token> <iterations>`; prints JSON.

use std::time::{Duration, Instant};

use serde_json::json;
use tessera_bench::percentile;

const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;

async fn mcp_status(client: &reqwest::Client, base: &str, token: &str) -> Result<u16, reqwest::Error> {
    let res = client
        .post(format!("{base}/mcp"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .body(TOOLS_LIST)
        .send()
        .await?;
    Ok(res.status().as_u16())
}

async fn once(client: &reqwest::Client, a: &str, b: &str, api: &str, i: usize) -> Result<f64, String> {
    let minted: serde_json::Value = client
        .post(format!("{a}/api/v2/tokens"))
        .bearer_auth(api)
        .json(&json!({"name": format!("probe {i}"), "scopes": ["read:tasks"], "expires_in_days": 1}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .error_for_status()
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let (Some(id), Some(token)) = (minted["id"].as_str(), minted["token"].as_str()) else {
        return Err(format!("unexpected mint response: {minted}"));
    };
    // Warm B: the row is now cached there, so only NOTIFY can make B refuse in time.
    for _ in 0..2 {
        let status = mcp_status(client, b, token).await.map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("B answered {status} to a fresh token"));
        }
    }
    client
        .delete(format!("{a}/api/v2/tokens/{id}"))
        .bearer_auth(api)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .error_for_status()
        .map_err(|e| e.to_string())?;
    let revoked = Instant::now();
    loop {
        if mcp_status(client, b, token).await.map_err(|e| e.to_string())? == 401 {
            return Ok(revoked.elapsed().as_secs_f64() * 1000.0);
        }
        if revoked.elapsed() > Duration::from_secs(5) {
            return Err("B still accepted the token 5 s after revocation".to_owned());
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [a, b, api, n] = args.as_slice() else {
        eprintln!("usage: revocation-probe <a-base-url> <b-base-url> <api-token> <iterations>");
        std::process::exit(2);
    };
    let n: usize = n.parse().unwrap_or(100);
    let client = reqwest::Client::new();
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        match once(&client, a, b, api, i).await {
            Ok(ms) => samples.push(ms),
            Err(e) => {
                eprintln!("revocation-probe: {e}");
                std::process::exit(1);
            }
        }
    }
    samples.sort_by(f64::total_cmp);
    let out = json!({
        "samples": samples.len(),
        "p50_ms": percentile(&samples, 50.0),
        "p99_ms": percentile(&samples, 99.0),
        "max_ms": samples.last(),
    });
    println!("{out}");
}
