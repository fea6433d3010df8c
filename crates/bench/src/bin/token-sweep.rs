//! Sends one MCP `tools/list` per token from a file, spread round-robin over one or more
//! Tessera base URLs, `concurrency` at a time, and prints JSON: how many answered 200, the
//! others by status, and the wall time. Used by `scripts/bench` for the memory step
//! (100,000 distinct tokens, twice) and the database-load step (1,000 tokens, many passes).
//!
//! Usage: `token-sweep <tokens-file> <passes> <concurrency> <base-url>...`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;

const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;

fn fail(what: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(what.to_string())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, passes, concurrency, bases @ ..] = args.as_slice() else {
        eprintln!("usage: token-sweep <tokens-file> <passes> <concurrency> <base-url>...");
        std::process::exit(2);
    };
    if bases.is_empty() {
        return Err(fail("no base URL"));
    }
    let passes: usize = passes.parse().map_err(fail)?;
    let permits = Arc::new(Semaphore::new(concurrency.parse().map_err(fail)?));
    let tokens: Vec<String> = std::fs::read_to_string(file)?.lines().map(str::to_owned).collect();
    let urls: Vec<String> = bases.iter().map(|b| format!("{}/mcp", b.trim_end_matches('/'))).collect();
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().map_err(fail)?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut i = 0usize;
    for _ in 0..passes {
        for token in &tokens {
            let permit = Arc::clone(&permits).acquire_owned().await.map_err(fail)?;
            let url = urls.get(i % urls.len()).cloned().unwrap_or_default();
            i = i.wrapping_add(1);
            let (client, token) = (client.clone(), token.clone());
            tasks.spawn(async move {
                let status = client
                    .post(url)
                    .bearer_auth(token)
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", "2025-06-18")
                    .body(TOOLS_LIST)
                    .send()
                    .await
                    .map(|r| r.status().as_u16().to_string())
                    .unwrap_or_else(|_| "error".to_owned());
                drop(permit);
                status
            });
            while let Some(done) = tasks.try_join_next() {
                *statuses.entry(done.map_err(fail)?).or_default() += 1;
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        *statuses.entry(done.map_err(fail)?).or_default() += 1;
    }
    let total: u64 = statuses.values().sum();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"requests": total, "ok": statuses.get("200").copied().unwrap_or(0),
            "statuses": statuses, "seconds": (secs * 100.0).round() / 100.0})
    );
    Ok(())
}
