//! Client ID Metadata Documents, served over https on a loopback port with a throwaway CA.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::header::LOCATION;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::helpers::{TestApp, spawn_app_with};

const REDIRECT: &str = "http://127.0.0.1:4567/callback";

/// An https server on 127.0.0.1 answering every request with one JSON document.
struct DocServer {
    /// `https://127.0.0.1:<port>/client.json`.
    url: String,
    /// The CA that signed its certificate (PEM).
    ca_pem: String,
    /// Requests served.
    hits: Arc<AtomicUsize>,
}

/// Serves the document `make(url)` returns for its own URL.
async fn serve_document(make: impl FnOnce(&str) -> Value) -> DocServer {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://127.0.0.1:{}/client.json", listener.local_addr().unwrap().port());
    let body = make(&url).to_string();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            let body = body.clone();
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(body.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    DocServer { url, ca_pem: ca.pem(), hits }
}

fn document(url: &str) -> Value {
    json!({"client_id": url, "client_name": "Documented Client", "redirect_uris": ["http://127.0.0.1/callback"],
           "token_endpoint_auth_method": "none"})
}

async fn app_trusting(doc: &DocServer, allow_local: bool) -> TestApp {
    let pem = doc.ca_pem.clone().into_bytes();
    spawn_app_with(move |c| {
        let oauth = c.oauth.as_mut().unwrap();
        oauth.allow_local_clients = allow_local;
        oauth.extra_ca_pem = Some(pem);
    })
    .await
}

fn authorize_path(client_id: &str) -> String {
    let mut u = reqwest::Url::parse("http://x/oauth/authorize").unwrap();
    u.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("state", "s")
        .append_pair("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        .append_pair("code_challenge_method", "S256");
    format!("{}?{}", u.path(), u.query().unwrap())
}

#[tokio::test]
async fn a_metadata_document_client_is_fetched_and_its_host_shown_on_the_consent_page() {
    let doc = serve_document(document).await;
    let app = app_trusting(&doc, true).await;
    let path = authorize_path(&doc.url);
    let res = app.request(Method::GET, &path).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND, "{}", res.text().await.unwrap());
    let (_, session) = app.signed_in("alice@example.com").await;
    let query = path.split_once('?').unwrap().1;
    let mut u = reqwest::Url::parse("http://x/api/v2/oauth/consent").unwrap();
    u.query_pairs_mut().append_pair("request", query);
    let view: Value = app
        .as_session(&session, Method::GET, &format!("{}?{}", u.path(), u.query().unwrap()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["client_name"], "Documented Client", "{view}");
    assert_eq!(view["client_kind"], "metadata_document");
    assert_eq!(view["client_origin"], "127.0.0.1");
}

#[tokio::test]
async fn a_metadata_document_whose_client_id_differs_is_refused() {
    let doc = serve_document(|_| document("https://elsewhere.example/client.json")).await;
    let app = app_trusting(&doc, true).await;
    let res = app.request(Method::GET, &authorize_path(&doc.url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().get(LOCATION).is_none());
    assert!(res.text().await.unwrap().contains("invalid_client"));
}

#[tokio::test]
async fn a_metadata_document_on_a_private_address_is_not_fetched_without_the_flag() {
    let doc = serve_document(document).await;
    let app = app_trusting(&doc, false).await;
    let res = app.request(Method::GET, &authorize_path(&doc.url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().get(LOCATION).is_none());
    assert_eq!(doc.hits.load(Ordering::SeqCst), 0, "no request may reach a private address");
}

#[tokio::test]
async fn a_refused_authorization_request_of_a_metadata_document_client_ends_on_tessera_s_error_page() {
    let doc = serve_document(|url| {
        json!({"client_id": url, "client_name": "Documented Client",
               "redirect_uris": ["https://evil.example/landing"], "token_endpoint_auth_method": "none"})
    })
    .await;
    let app = app_trusting(&doc, true).await;
    let mut u = reqwest::Url::parse("http://x/oauth/authorize").unwrap();
    u.query_pairs_mut()
        .append_pair("response_type", "token")
        .append_pair("client_id", &doc.url)
        .append_pair("redirect_uri", "https://evil.example/landing")
        .append_pair("state", "s");
    let res = app.request(Method::GET, &format!("{}?{}", u.path(), u.query().unwrap())).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get(LOCATION).is_none(), "redirected to {:?}", res.headers().get(LOCATION));
    assert!(res.text().await.unwrap().contains("unsupported_response_type"));
}

#[tokio::test]
async fn a_metadata_document_without_a_name_and_a_long_redirect_host_is_accepted() {
    let host = format!("{}.example", "a".repeat(150));
    let doc = serve_document(move |url| {
        json!({"client_id": url, "redirect_uris": [format!("https://{host}/cb"), "http://127.0.0.1/callback"],
               "token_endpoint_auth_method": "none"})
    })
    .await;
    let app = app_trusting(&doc, true).await;
    let res = app.request(Method::GET, &authorize_path(&doc.url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND, "{}", res.text().await.unwrap());
    let name: String = sqlx::query_scalar("SELECT name FROM oauth_clients").fetch_one(app.store.pool()).await.unwrap();
    assert_eq!(name.chars().count(), 100, "{name}");
}
