//! Builders for users' tokens in tests: rows with any timing (a fixture written straight
//! through the store, for expired or backdated tokens), and the lifecycle service wired to
//! a fixed key ring as the CLI wires it.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tessera_core::keys::KeyRing;
use tessera_core::mint::{MintRequest, mint};
use tessera_core::scope::ScopeSet;
use tessera_store::{NewToken, Store, TokenRecord};
use tessera_tokens::{Minter, TokenService};
use uuid::Uuid;

/// The store's signing keys (created on first use).
pub async fn key_ring(store: &Store) -> KeyRing {
    let set = store.load_or_create_keys(Utc::now()).await.expect("signing keys");
    KeyRing::ed25519(&set.keys, &set.signing_kid).expect("key ring")
}

/// A gateway server named `name` registered straight in the store (no headers, an upstream
/// on the discard port): for tests that need the registry to know a server, not to call it.
pub async fn insert_server(store: &Store, name: &str) -> tessera_store::ServerRecord {
    let server = tessera_store::NewServer {
        id: uuid::Uuid::now_v7(),
        name: name.to_owned(),
        url: "http://127.0.0.1:9/mcp".to_owned(),
        description: None,
        headers: vec![],
        direct: None,
        new_tools: Default::default(),
    };
    store.insert_server(&tessera_store::Actor::cli(), &server, Utc::now()).await.expect("insert server")
}

/// The lifecycle service signing with `ring` for `issuer`, new tokens bound to `audience`.
pub fn token_service(store: &Store, ring: KeyRing, issuer: &str, audience: &str) -> TokenService {
    TokenService::new(store.clone(), Minter::new(Arc::new(ring), issuer.to_owned(), vec![audience.to_owned()]))
}

/// A token row to create directly: any issue time, any expiry.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    /// Owner.
    pub user_id: Uuid,
    /// Name.
    pub name: String,
    /// Granted scopes (space-separated; `mcp:admin` allowed).
    pub scopes: String,
    /// `iat`/`nbf` and the row's creation time.
    pub issued_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// Requests per hour.
    pub rate_limit_per_hour: Option<i32>,
    /// `iss`.
    pub issuer: String,
    /// `aud`.
    pub audience: Vec<String>,
}

impl TokenSpec {
    /// A one-day token with `scopes` for `user_id`, issued now by `issuer` for `audience`.
    pub fn new(user_id: Uuid, scopes: &str, issuer: &str, audience: &str) -> Self {
        let now = Utc::now();
        Self {
            user_id,
            name: "test token".to_owned(),
            scopes: scopes.to_owned(),
            issued_at: now,
            expires_at: now + Duration::days(1),
            rate_limit_per_hour: None,
            issuer: issuer.to_owned(),
            audience: vec![audience.to_owned()],
        }
    }

    /// Signs the token with `ring` and stores its row; returns the secret and the row.
    pub async fn insert(&self, store: &Store, ring: &KeyRing) -> (String, TokenRecord) {
        // Any well-formed scope, server scopes included (the catalog is the API's concern).
        let scopes = ScopeSet::parse_lenient(&self.scopes);
        assert_eq!(scopes.len(), self.scopes.split_whitespace().count(), "invalid scopes {}", self.scopes);
        let minted = mint(
            ring,
            &MintRequest {
                issuer: self.issuer.clone(),
                audience: self.audience.clone(),
                user_id: self.user_id,
                scopes: scopes.clone(),
                now: self.issued_at,
                expires_at: self.expires_at,
                jti: Uuid::now_v7(),
            },
        )
        .expect("mint");
        let row = NewToken {
            id: minted.claims.jti,
            user_id: self.user_id,
            name: self.name.clone(),
            description: None,
            scopes,
            audience: self.audience.clone(),
            created_at: self.issued_at,
            expires_at: self.expires_at,
            rate_limit_per_hour: self.rate_limit_per_hour,
            rotated_from: None,
            minted_by: None,
            token_sha256: minted.sha256,
            kid: ring.signing_kid().to_owned(),
            oauth_client_id: None,
        };
        let mut tx = store.begin_token_change().await.expect("begin");
        let record = tx.insert(&row).await.expect("insert token");
        tx.commit().await.expect("commit");
        (minted.token.into_inner(), record)
    }
}
