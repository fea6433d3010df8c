//! The reference for the stdio row of `scripts/bench`: calling a stdio MCP server directly,
//! as fast as an MCP client can (rmcp's client over its child-process transport, one session,
//! calls one after another), so the difference to the same call through Tessera's
//! `/mcp/NAME` is Tessera's cost.
//!
//! Usage: `stdio-direct <seconds> <program> [args...]`; prints
//! `{"calls":N,"p50_ms":"…","p99_ms":"…"}` for `tools/call echo` at concurrency 1.

use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [seconds, program, rest @ ..] = args.as_slice() else {
        eprintln!("usage: stdio-direct <seconds> <program> [args...]");
        std::process::exit(2);
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(rest);
    let client = ().serve(TokioChildProcess::new(cmd)?).await?;
    let mut arguments = serde_json::Map::new();
    arguments.insert("text".to_owned(), serde_json::json!("hello"));
    let call = CallToolRequestParams::new("echo").with_arguments(arguments);
    let until = Instant::now() + Duration::from_secs(seconds.parse()?);
    let mut took = Vec::new();
    while Instant::now() < until {
        let started = Instant::now();
        client.call_tool(call.clone()).await?;
        took.push(started.elapsed());
    }
    took.sort_unstable();
    let at = |q: f64| took.get(((took.len() as f64 - 1.0) * q) as usize).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    println!("{{\"calls\":{},\"p50_ms\":\"{:.3}\",\"p99_ms\":\"{:.3}\"}}", took.len(), at(0.5), at(0.99));
    let _ = client.cancel().await;
    Ok(())
}
