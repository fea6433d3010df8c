//! `GET /tokens/{id}/usage` over rows written through the store (as the MCP flusher will).

use chrono::{DateTime, Duration, DurationRound, Utc};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tessera_store::UsageIncrement;
use uuid::Uuid;

use crate::helpers::{error_code, spawn_app};

fn row(token: Uuid, hour: DateTime<Utc>, method: &str, outcome: &str, count: i64) -> UsageIncrement {
    UsageIncrement {
        token_id: token,
        hour,
        method: method.into(),
        outcome: tessera_core::outcome::Outcome::from_stored(outcome),
        count,
        last_at: hour + Duration::minutes(5),
        last_from: Some("10.0.0.7".into()),
    }
}

#[tokio::test]
async fn usage_sums_totals_series_methods_and_denials() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let token = app.issue(&session, "t", &["read:tasks"]).await;
    let id: Uuid = token["id"].as_str().unwrap().parse().unwrap();
    let h0 = Utc::now().duration_trunc(Duration::hours(1)).unwrap() - Duration::hours(3);
    app.store
        .record_usage(&[
            row(id, h0, "tools/list", "ok", 4),
            row(id, h0, "whoami", "401", 1),
            row(id, h0 + Duration::hours(1), "whoami", "ok", 2),
            row(id, h0 + Duration::hours(2), "tasks_list", "429", 3),
            row(id, h0 + Duration::hours(2), "tasks_list", "403", 1),
            row(id, h0 + Duration::hours(2), "tasks_list", "error", 1),
        ])
        .await
        .unwrap();
    let from = h0.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let to = (h0 + Duration::hours(4)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let res = app
        .as_session(&session, Method::GET, &format!("/api/v2/tokens/{id}/usage?from={from}&to={to}&granularity=hour"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let u: Value = res.json().await.unwrap();
    assert_eq!(u["granularity"], "hour");
    assert_eq!(u["totals"]["requests"], 12);
    assert_eq!(u["totals"]["ok"], 6);
    assert_eq!(u["totals"]["error"], 1);
    assert_eq!(u["totals"]["denied"], 5);
    let series = u["series"].as_array().unwrap();
    assert_eq!(series.len(), 4);
    assert_eq!(series[0]["requests"], 5);
    assert_eq!(series[3]["requests"], 0);
    assert_eq!(u["methods"][0]["method"], "tasks_list");
    assert_eq!(u["methods"][0]["requests"], 5);
    assert_eq!(u["denials"]["401"], 1);
    assert_eq!(u["denials"]["403"], 1);
    assert_eq!(u["denials"]["429"], 3);
    assert_eq!(u["last_used_from"], "10.0.0.7");
    let last: DateTime<Utc> = u["last_used_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(last, h0 + Duration::hours(2) + Duration::minutes(5));

    // Daily by default.
    let daily: Value = app
        .as_session(&session, Method::GET, &format!("/api/v2/tokens/{id}/usage"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(daily["granularity"], "day");
    assert_eq!(daily["totals"]["requests"], 12);
}

#[tokio::test]
async fn usage_range_must_run_forwards() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let token = app.issue(&session, "t", &["read:tasks"]).await;
    let res = app
        .as_session(
            &session,
            Method::GET,
            &format!(
                "/api/v2/tokens/{}/usage?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
                token["id"].as_str().unwrap()
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "invalid_range");
}

#[tokio::test]
async fn hourly_usage_over_more_than_31_days_is_400() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let token = app.issue(&session, "t", &["read:tasks"]).await;
    let res = app
        .as_session(
            &session,
            Method::GET,
            &format!(
                "/api/v2/tokens/{}/usage?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z&granularity=hour",
                token["id"].as_str().unwrap()
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "range_too_large");
}

#[tokio::test]
async fn dates_outside_the_years_2000_to_9999_are_400_invalid_query() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let token = app.issue(&session, "t", &["read:tasks"]).await;
    let id = token["id"].as_str().unwrap();
    for (query, parameter) in [
        // chrono's far end: `to - 30 days` used to overflow and panic.
        ("to=%2B262142-12-31T23:59:59Z", "to"),
        ("to=%2B10000-01-01T00:00:00Z", "to"),
        ("to=-262142-01-01T00:00:00Z", "to"),
        ("to=1999-12-31T23:59:59Z", "to"),
        ("from=-262142-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("from=0001-01-01T00:00:00Z&granularity=hour", "from"),
    ] {
        let res =
            app.as_session(&session, Method::GET, &format!("/api/v2/tokens/{id}/usage?{query}")).send().await.unwrap();
        let (code, body) = error_code(res, StatusCode::BAD_REQUEST).await;
        assert_eq!(code, "invalid_query", "{query}: {body}");
        assert_eq!(body["details"]["parameter"], parameter, "{query}: {body}");
    }
    // The edges of the range are fine.
    let res = app
        .as_session(&session, Method::GET, &format!("/api/v2/tokens/{id}/usage?to=2000-01-01T00:00:00Z"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .as_session(
            &session,
            Method::GET,
            &format!("/api/v2/tokens/{id}/usage?from=9999-12-30T00:00:00Z&to=9999-12-31T23:59:59Z"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

/// Usage is written once a second (here: never, the flusher is off); a token used a moment
/// ago is shown as used on this instance, in the list, its page and its usage.
#[tokio::test]
async fn a_use_not_yet_written_is_shown_at_once() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let token = app.issue(&session, "t", &["read:tokens"]).await;
    let id = token["id"].as_str().unwrap();
    let before = app.as_session(&session, Method::GET, &format!("/api/v2/tokens/{id}")).send().await.unwrap();
    assert_eq!(before.json::<Value>().await.unwrap()["last_used_at"], Value::Null);

    let used = app.as_bearer(token["token"].as_str().unwrap(), Method::GET, "/api/v2/tokens").send().await.unwrap();
    assert_eq!(used.status(), StatusCode::OK);
    assert!(app.metering.usage.pending_len() > 0, "not written yet");

    let one: Value = app
        .as_session(&session, Method::GET, &format!("/api/v2/tokens/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list: Value =
        app.as_session(&session, Method::GET, "/api/v2/tokens").send().await.unwrap().json().await.unwrap();
    let usage: Value = app
        .as_session(&session, Method::GET, &format!("/api/v2/tokens/{id}/usage"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = list["items"].as_array().unwrap().iter().find(|t| t["id"] == id).unwrap();
    for shown in [&one, listed, &usage] {
        let at: DateTime<Utc> = shown["last_used_at"].as_str().unwrap().parse().unwrap();
        assert!(Utc::now() - at < Duration::seconds(30), "{shown}");
        assert_eq!(shown["last_used_from"], "127.0.0.1");
    }
}
