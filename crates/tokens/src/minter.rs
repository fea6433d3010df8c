//! Minting: the key ring, issuer and default audience that new tokens are signed with.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tessera_core::claims::Claims;
use tessera_core::codec::{CodecError, decode_any_audience};
use tessera_core::keys::KeyRing;
use tessera_core::mint::{MintRequest, Minted, mint, mint_for_client};
use tessera_core::scope::ScopeSet;
use uuid::Uuid;

/// Where the current signing keys come from, and who to tell when a token's row changed.
/// The server's validator reloads its key ring after `tessera keys rotate` and caches rows,
/// so it is both; the CLI uses a fixed ring and has no cache.
pub trait KeySource: Send + Sync {
    /// The key ring to sign with now.
    fn key_ring(&self) -> Arc<KeyRing>;

    /// Forget anything cached about token `id` in this process (other processes learn it
    /// through NOTIFY).
    fn evict(&self, _id: Uuid) {}
}

impl KeySource for KeyRing {
    fn key_ring(&self) -> Arc<KeyRing> {
        Arc::new(self.clone())
    }
}

/// Signs new tokens for one issuer, bound by default to one resource (RFC 8707).
#[derive(Clone)]
pub struct Minter {
    keys: Arc<dyn KeySource>,
    issuer: String,
    audience: Vec<String>,
}

impl fmt::Debug for Minter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Minter").field("issuer", &self.issuer).field("audience", &self.audience).finish_non_exhaustive()
    }
}

impl Minter {
    /// A minter for `issuer`, whose new tokens name `audience` in `aud`.
    pub fn new(keys: Arc<dyn KeySource>, issuer: String, audience: Vec<String>) -> Self {
        Self { keys, issuer, audience }
    }

    /// The audience new tokens get.
    pub fn audience(&self) -> &[String] {
        &self.audience
    }

    /// The audience of a new token with `scopes`: the default one, and for every server its
    /// scopes name, that server's own resource `{mcp resource}/{S}` (RFC 8707), so the token
    /// is accepted at `/mcp/S` and nowhere it was not meant for.
    pub fn audience_for(&self, scopes: &ScopeSet) -> Vec<String> {
        self.audience_with_direct(scopes, &std::collections::HashMap::new())
    }

    /// The same, where a direct server (name → its URL in `direct`) is named by its own URL:
    /// that server checks the token itself, against its own resource (issue #15). A token
    /// for direct servers names only their URLs, not the default audience: the server sees
    /// the token, and must not be able to replay it at `/mcp` or `/api/v2`. (Direct scopes
    /// never come with other scopes: `lifecycle::check_direct_scopes` refuses that first.)
    pub fn audience_with_direct(
        &self,
        scopes: &ScopeSet,
        direct: &std::collections::HashMap<String, String>,
    ) -> Vec<String> {
        let servers = scopes.servers();
        let mut own: Vec<String> = servers.iter().filter_map(|s| direct.get(s).cloned()).collect();
        if !own.is_empty() {
            own.dedup();
            return own;
        }
        let mut audience = self.audience.clone();
        if let Some(base) = self.audience.first() {
            let base = base.trim_end_matches('/');
            audience.extend(servers.into_iter().map(|s| format!("{base}/{s}")));
        }
        audience
    }

    /// The key source (for cache eviction).
    pub(crate) fn keys(&self) -> &dyn KeySource {
        self.keys.as_ref()
    }

    /// Signs a token; returns it with the id of the key that signed it.
    pub(crate) fn mint(
        &self,
        user_id: Uuid,
        scopes: &ScopeSet,
        audience: &[String],
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(Minted, String), CodecError> {
        let ring = self.keys.key_ring();
        let minted = mint(
            &ring,
            &MintRequest {
                issuer: self.issuer.clone(),
                audience: audience.to_vec(),
                user_id,
                scopes: scopes.clone(),
                now,
                expires_at,
                jti: Uuid::now_v7(),
            },
        )?;
        Ok((minted, ring.signing_kid().to_owned()))
    }

    /// The claims of a token this issuer signed, for any of its resources (RFC 7009
    /// revocation works wherever the token is used); never an admission check.
    pub(crate) fn verify_own(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, CodecError> {
        decode_any_audience(&self.keys.key_ring(), token, &self.issuer, now.timestamp())
    }

    /// Signs an OAuth access token for an existing grant row: `jti` is the grant's id,
    /// `client_id` the OAuth client.
    pub(crate) fn mint_access(&self, grant: &AccessGrant<'_>) -> Result<(Minted, String), CodecError> {
        let ring = self.keys.key_ring();
        let minted = mint_for_client(
            &ring,
            &MintRequest {
                issuer: self.issuer.clone(),
                audience: grant.audience.to_vec(),
                user_id: grant.user_id,
                scopes: grant.scopes.clone(),
                now: grant.now,
                expires_at: grant.expires_at,
                jti: grant.id,
            },
            grant.client_id,
        )?;
        Ok((minted, ring.signing_kid().to_owned()))
    }
}

/// What an OAuth access token is minted for.
pub(crate) struct AccessGrant<'a> {
    pub(crate) id: Uuid,
    pub(crate) user_id: Uuid,
    pub(crate) scopes: &'a ScopeSet,
    pub(crate) audience: &'a [String],
    pub(crate) client_id: &'a str,
    pub(crate) now: DateTime<Utc>,
    pub(crate) expires_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minter() -> Minter {
        let key = tessera_core::keys::generate_ed25519("k1".into());
        let ring = KeyRing::ed25519(std::slice::from_ref(&key), "k1").unwrap();
        Minter::new(Arc::new(ring), "https://t.test".into(), vec!["https://t.test/mcp".into()])
    }

    #[test]
    fn a_token_with_server_scopes_names_each_servers_resource() {
        let scopes = ScopeSet::parse_lenient("read:tasks write:github call:github/x call:notes/y");
        assert_eq!(
            minter().audience_for(&scopes),
            ["https://t.test/mcp", "https://t.test/mcp/github", "https://t.test/mcp/notes"]
        );
    }

    #[test]
    fn a_token_for_a_direct_server_names_only_its_url_not_the_default_audience() {
        let direct = std::collections::HashMap::from([
            ("notes".to_owned(), "https://notes.example.com/mcp".to_owned()),
            ("wiki".to_owned(), "https://wiki.example.com/mcp".to_owned()),
        ]);
        let scopes = ScopeSet::parse_lenient("read:notes call:wiki/search");
        assert_eq!(
            minter().audience_with_direct(&scopes, &direct),
            ["https://notes.example.com/mcp", "https://wiki.example.com/mcp"]
        );
    }

    #[test]
    fn a_token_without_server_scopes_keeps_the_default_audience() {
        assert_eq!(minter().audience_for(&ScopeSet::parse_lenient("read:tasks")), ["https://t.test/mcp"]);
    }
}
