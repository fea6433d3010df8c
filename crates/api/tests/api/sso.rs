//! Single sign-on's edges that need no identity provider (the whole flow against a real
//! OpenID provider is `frontend/tests/sso.test.mjs`): what the sign-in page is offered,
//! password sign-in turned off, and failures that send the browser back without a session.

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use tessera_testkit::app::{SpawnedApp, Tweaks};

use crate::helpers::*;

/// An app whose identity provider is configured but down (nothing listens on port 1).
async fn with_provider_down() -> SpawnedApp {
    let flags =
        ["--oidc-issuer", "http://127.0.0.1:1", "--oidc-client-id", "tessera", "--oidc-client-secret", "s3cret"];
    tessera_testkit::app::spawn_app_with(&flags, Tweaks::default()).await
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

#[tokio::test]
async fn the_sign_in_methods_say_password_only_without_sso() {
    let app = spawn_app().await;
    let res = app.request(Method::GET, "/api/v2/auth/methods").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"password": true, "sso": false}));
}

#[tokio::test]
async fn starting_sso_without_a_provider_configured_is_not_found() {
    let app = spawn_app().await;
    let res = app.request(Method::GET, "/api/v2/auth/oidc/login").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "not_found");
}

#[tokio::test]
async fn password_sign_in_turned_off_is_refused_with_its_own_code() {
    let app = spawn_app_with(|c| c.password_login = false).await;
    app.create_user("ann@example.com", false).await;
    let res = app.login_response("ann@example.com", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "password_login_disabled");
    let methods: Value = app.request(Method::GET, "/api/v2/auth/methods").send().await.unwrap().json().await.unwrap();
    assert_eq!(methods["password"], false);
}

#[tokio::test]
async fn a_provider_that_is_down_sends_the_browser_back_with_a_reason() {
    let app = with_provider_down().await;
    let res = no_redirects().get(app.url("/api/v2/auth/oidc/login")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[header::LOCATION], "/?sso_error=provider_unreachable#/tokens");
    assert!(
        res.headers().get_all(header::SET_COOKIE).iter().all(|c| !c.to_str().unwrap().starts_with("tessera_session"))
    );
    let methods: Value =
        no_redirects().get(app.url("/api/v2/auth/methods")).send().await.unwrap().json().await.unwrap();
    assert_eq!(methods, json!({"password": true, "sso": true}));
}

#[tokio::test]
async fn a_callback_without_the_sign_ins_own_cookie_makes_no_session() {
    let app = with_provider_down().await;
    for cookie in [None, Some("tessera_sso=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")] {
        let mut req = no_redirects().get(app.url("/api/v2/auth/oidc/callback?code=abc&state=xyz"));
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(res.headers()[header::LOCATION], "/?sso_error=expired#/tokens");
        let cookies: Vec<&str> =
            res.headers().get_all(header::SET_COOKIE).iter().map(|c| c.to_str().unwrap()).collect();
        assert!(cookies.iter().all(|c| !c.starts_with("tessera_session")), "{cookies:?}");
    }
}

#[tokio::test]
async fn a_failed_start_clears_the_sign_in_cookie_on_its_own_path() {
    // Lax (the provider's return is a cross-site navigation) and scoped to the SSO routes;
    // the cookie a started sign-in sets is checked in the browser test.
    let app = with_provider_down().await;
    let res = no_redirects().get(app.url("/api/v2/auth/oidc/login")).send().await.unwrap();
    let cookie = res.headers()[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("tessera_sso=;"), "{cookie}");
    assert!(
        cookie.contains("SameSite=Lax") && cookie.contains("HttpOnly") && cookie.contains("Path=/api/v2/auth/oidc")
    );
}
