//! Alert delivery (issue #17), started by the composition root: the writer that turns the
//! request path's alert signals into `alert_events` rows, the scanner that writes the
//! time-based events (expiring tokens, ending grace periods) and bounds the outbox, and the
//! dispatcher that POSTs each pending delivery, signed, retrying with backoff.
//!
//! Nothing here runs on a request path: requests only write outbox rows (in their own
//! transaction) or `try_send` a signal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tessera_auth::{AlertSignal, Metering};
use tessera_core::alerts::{
    AlertKind, EVENT_HEADER, EXPIRING_NOTICES_DAYS, MAX_ATTEMPTS, NETWORK_MEMORY_DAYS, SIGNATURE_HEADER,
    TIMESTAMP_HEADER, backoff, signature, target_allowed,
};
use tessera_store::{AttemptResult, DueDelivery, Store};
use tokio::task::JoinHandle;

/// Deliveries claimed per dispatcher round.
const BATCH: i64 = 50;
/// How long a claimed delivery is hidden from other replicas while it is being sent.
const LEASE: Duration = Duration::from_secs(60);
/// Time limit of one delivery (connect and answer).
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Signals waiting for the writer; more are dropped (with a warning).
const SIGNAL_CAPACITY: usize = 10_000;
/// Delivered/failed deliveries and events are kept this many days.
const KEEP_DAYS: i64 = 30;
/// `token.grace_ending` is sent when a rotation's grace ends within this.
const GRACE_NOTICE: Duration = Duration::from_secs(3600);

/// Timing and safety settings of the alert tasks.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// Dispatcher period.
    pub dispatch_interval: Duration,
    /// Scanner period.
    pub scan_interval: Duration,
    /// Wait after the first failed attempt.
    pub retry_base: Duration,
    /// Whether loopback/private targets are allowed.
    pub allow_local: bool,
    /// 401s in 5 minutes for one token that raise `token.auth_failures`.
    pub auth_failure_threshold: u32,
}

/// Starts the writer, the scanner and the dispatcher.
pub fn spawn(store: &Store, metering: &Metering, config: &AlertConfig) -> Vec<JoinHandle<()>> {
    let signals = metering.alerts.connect(SIGNAL_CAPACITY, config.auth_failure_threshold);
    vec![
        tokio::spawn(write_signals(store.clone(), signals)),
        tokio::spawn(scan(store.clone(), config.scan_interval)),
        tokio::spawn(dispatch(store.clone(), config.clone())),
    ]
}

async fn write_signals(store: Store, mut signals: tokio::sync::mpsc::Receiver<AlertSignal>) {
    while let Some(signal) = signals.recv().await {
        if let Err(e) = write_signal(&store, signal).await {
            tracing::warn!(error = %e, "could not record an alert event");
        }
    }
}

async fn write_signal(store: &Store, signal: AlertSignal) -> Result<(), tessera_store::StoreError> {
    match signal {
        AlertSignal::RateLimited { token_id, scope, limit, at } => {
            let hour = at.format("%Y-%m-%dT%H").to_string();
            let details = json!({"limit_scope": scope, "limit_per_hour": limit});
            store.record_alert(AlertKind::RateLimited, token_id, &hour, &details, at).await?;
        }
        AlertSignal::AuthFailures { token_id, count, at } => {
            let hour = at.format("%Y-%m-%dT%H").to_string();
            let details = json!({"failures": count, "window_seconds": 300});
            store.record_alert(AlertKind::AuthFailures, token_id, &hour, &details, at).await?;
        }
        AlertSignal::Used { token_id, network, at } => {
            let memory = chrono::Duration::days(NETWORK_MEMORY_DAYS);
            if store.note_network(token_id, &network, at, memory).await? {
                let dedupe = format!("{network}@{}", at.format("%Y-%m-%d"));
                store.record_alert(AlertKind::NewNetwork, token_id, &dedupe, &json!({"network": network}), at).await?;
            }
        }
    }
    Ok(())
}

async fn scan(store: Store, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = Utc::now();
        match store.scan_alerts(now, &EXPIRING_NOTICES_DAYS, GRACE_NOTICE).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(events = n, "alert scan wrote events"),
            Err(e) => tracing::warn!(error = %e, "alert scan failed"),
        }
        if let Err(e) = store.prune_alerts(now - chrono::Duration::days(KEEP_DAYS)).await {
            tracing::warn!(error = %e, "could not prune old alerts");
        }
    }
}

async fn dispatch(store: Store, config: AlertConfig) {
    let mut tick = tokio::time::interval(config.dispatch_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let config = Arc::new(config);
    loop {
        tick.tick().await;
        let due = match store.claim_deliveries(Utc::now(), LEASE, BATCH).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim webhook deliveries");
                continue;
            }
        };
        // Each delivery in its own task: one slow receiver does not hold up the others.
        let sends: Vec<_> = due
            .into_iter()
            .map(|d| {
                let (store, config) = (store.clone(), Arc::clone(&config));
                tokio::spawn(async move {
                    let result = attempt(&d, &config).await;
                    if let Err(e) = store.finish_delivery(d.id, &result, Utc::now()).await {
                        tracing::warn!(error = %e, delivery = d.id, "could not record a webhook attempt");
                    }
                })
            })
            .collect();
        for send in sends {
            let _ = send.await;
        }
    }
}

/// The JSON body of a delivery; `text` makes it a valid Slack incoming-webhook message.
pub fn payload(d: &DueDelivery) -> serde_json::Value {
    match (&d.token_id, &d.token_name) {
        (Some(id), Some(name)) => json!({
            "id": d.event_id,
            "type": d.kind,
            "created_at": d.at,
            "token": {"id": id, "name": name},
            "user_id": d.user_id,
            "details": d.details,
            "text": format!("Tessera: {} for token \"{name}\" ({id})", d.kind),
        }),
        // A server event (`server.tool_changed`): no token, the server and tool in `details`.
        _ => {
            let (server, tool) = (d.details["server"].as_str().unwrap_or(""), d.details["tool"].as_str().unwrap_or(""));
            json!({
                "id": d.event_id,
                "type": d.kind,
                "created_at": d.at,
                "token": null,
                "user_id": null,
                "details": d.details,
                "text": format!(
                    "Tessera: {} — tool \"{tool}\" of server \"{server}\" is held until an admin approves it (tessera server approve {server} {tool})",
                    d.kind
                ),
            })
        }
    }
}

/// One attempt: resolve and check the target, POST the signed body, classify the answer.
async fn attempt(d: &DueDelivery, config: &AlertConfig) -> AttemptResult {
    let attempts = d.attempts.saturating_add(1);
    let fail = |status: Option<u16>, error: String| {
        let retry_at = (attempts < MAX_ATTEMPTS).then(|| later(backoff(config.retry_base, attempts)));
        AttemptResult::Failed { status, error, retry_at }
    };
    let client = match pinned_client(&d.url, config.allow_local).await {
        Ok(client) => client,
        Err(why) => return fail(None, why),
    };
    let body = payload(d).to_string();
    let ts = Utc::now().timestamp();
    let sent = client
        .post(&d.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::USER_AGENT, concat!("Tessera-Webhooks/", env!("CARGO_PKG_VERSION")))
        .header(TIMESTAMP_HEADER, ts.to_string())
        .header(SIGNATURE_HEADER, signature(&d.secret, ts, body.as_bytes()))
        .header(EVENT_HEADER, &d.kind)
        .header("Tessera-Delivery", d.id.to_string())
        .body(body)
        .send()
        .await;
    match sent {
        Ok(res) if res.status().is_success() => AttemptResult::Delivered { status: res.status().as_u16() },
        Ok(res) => fail(Some(res.status().as_u16()), format!("the receiver answered {}", res.status())),
        // The error names the URL at most (never the secret or the signature).
        Err(e) => fail(None, without_url(&e)),
    }
}

fn later(wait: Duration) -> DateTime<Utc> {
    let now = Utc::now();
    chrono::Duration::from_std(wait).ok().and_then(|w| now.checked_add_signed(w)).unwrap_or(now)
}

fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    kind.to_owned()
}

/// A client bound to the addresses `url`'s host resolves to now, after checking every one
/// of them (so a DNS answer cannot change between the check and the connection), with no
/// redirects (a redirect could lead anywhere).
async fn pinned_client(url: &str, allow_local: bool) -> Result<reqwest::Client, String> {
    let parsed = reqwest::Url::parse(url).map_err(|_| "the webhook URL is invalid".to_owned())?;
    let host = parsed.host_str().ok_or_else(|| "the webhook URL has no host".to_owned())?.to_owned();
    let port = parsed.port_or_known_default().ok_or_else(|| "the webhook URL has no port".to_owned())?;
    let lookup = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let addrs: Vec<SocketAddr> = tokio::time::timeout(SEND_TIMEOUT, tokio::net::lookup_host((lookup.as_str(), port)))
        .await
        .map_err(|_| "name resolution timed out".to_owned())?
        .map_err(|_| "the webhook host does not resolve".to_owned())?
        .collect();
    if addrs.is_empty() {
        return Err("the webhook host does not resolve".to_owned());
    }
    if let Some(bad) = addrs.iter().find(|a| !target_allowed(a.ip(), allow_local)) {
        return Err(format!("refused: {} is a private, loopback or link-local address", bad.ip()));
    }
    // No proxy from the environment (`HTTP_PROXY`…): a proxy would connect wherever the
    // URL says, past the addresses just checked.
    reqwest::Client::builder()
        .no_proxy()
        .timeout(SEND_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .resolve_to_addrs(&lookup, &addrs)
        .build()
        .map_err(|_| "could not build the HTTP client".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_event_names_its_server_and_tool_and_no_token() {
        let d = DueDelivery {
            id: 1,
            attempts: 0,
            url: "https://hooks.example.com/t".to_owned(),
            secret: "s".to_owned(),
            event_id: 7,
            kind: "server.tool_changed".to_owned(),
            token_id: None,
            token_name: None,
            user_id: None,
            at: Utc::now(),
            details: json!({"server": "notes", "tool": "search", "reason": "changed"}),
        };
        let body = payload(&d);
        assert_eq!(body["token"], serde_json::Value::Null);
        assert_eq!(body["details"]["tool"], "search");
        let text = body["text"].as_str().unwrap();
        assert!(text.contains("server.tool_changed") && text.contains("tessera server approve notes search"), "{text}");
    }

    /// A delivery goes to the address that passed the guard even when the environment names
    /// a proxy. reqwest reads proxy variables once per process, so the delivery runs in a
    /// child process of this test binary whose environment points every proxy variable at a
    /// listener nobody answers on.
    #[test]
    fn a_delivery_connects_to_the_checked_address_not_to_a_proxy_from_the_environment() {
        if std::env::var_os(tessera_testkit::PROXY_CHILD).is_some() {
            return deliver_in_child();
        }
        let test = format!(
            "{}::a_delivery_connects_to_the_checked_address_not_to_a_proxy_from_the_environment",
            module_path!().split_once("::").unwrap().1
        );
        tessera_testkit::assert_passes_beside_a_silent_proxy(&test);
    }

    fn deliver_in_child() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/hook", receiver.local_addr().unwrap());
            tokio::spawn(async move {
                let (mut conn, _) = receiver.accept().await.unwrap();
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let _ =
                    conn.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
            });
            let client = pinned_client(&url, true).await.unwrap();
            let res = client.post(&url).body("{}").timeout(Duration::from_secs(5)).send().await.unwrap();
            assert_eq!(res.status().as_u16(), 204);
        });
    }
}
