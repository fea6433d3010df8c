//! Minting: turning a grant into signed claims.

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::claims::{CLIENT_ID, Claims};
use crate::codec::{CodecError, TokenHash, encode, token_sha256};
use crate::keys::KeyRing;
use crate::scope::ScopeSet;

/// A bearer token's text. Shown once, never logged, never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

impl SecretToken {
    /// Wraps a token.
    pub fn new(token: String) -> Self {
        Self(token)
    }

    /// The token text, for the response that shows it once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The token text, consuming the wrapper.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken([redacted])")
    }
}

/// What to mint.
#[derive(Debug, Clone)]
pub struct MintRequest {
    /// `iss`.
    pub issuer: String,
    /// `aud`.
    pub audience: Vec<String>,
    /// `sub`.
    pub user_id: Uuid,
    /// Granted scopes.
    pub scopes: ScopeSet,
    /// `iat` and `nbf`.
    pub now: DateTime<Utc>,
    /// `exp`.
    pub expires_at: DateTime<Utc>,
    /// `jti`, also the row id.
    pub jti: Uuid,
}

/// A signed token, its hash and its claims.
pub struct Minted {
    /// The secret.
    pub token: SecretToken,
    /// SHA-256 of the secret (what is stored).
    pub sha256: TokenHash,
    /// The signed claims.
    pub claims: Claims,
}

impl fmt::Debug for Minted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Minted").field("claims", &self.claims).finish_non_exhaustive()
    }
}

/// Signs a token for `req`.
pub fn mint(ring: &KeyRing, req: &MintRequest) -> Result<Minted, CodecError> {
    mint_for_client(ring, req, CLIENT_ID)
}

/// Signs a token for `req` naming `client_id` (an OAuth client's access token).
pub fn mint_for_client(ring: &KeyRing, req: &MintRequest, client_id: &str) -> Result<Minted, CodecError> {
    let claims = Claims {
        iss: req.issuer.clone(),
        sub: req.user_id.to_string(),
        aud: req.audience.clone().into(),
        exp: req.expires_at.timestamp(),
        iat: req.now.timestamp(),
        nbf: req.now.timestamp(),
        jti: req.jti,
        scope: req.scopes.to_claim(),
        client_id: client_id.to_owned(),
    };
    let token = encode(ring, &claims)?;
    let sha256 = token_sha256(&token);
    Ok(Minted { token: SecretToken(token), sha256, claims })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_token_decodes_to_its_claims_and_hash() {
        use crate::codec::{VerifyPolicy, decode};
        let key = crate::keys::generate_ed25519("k1".into());
        let ring = KeyRing::ed25519(std::slice::from_ref(&key), "k1").unwrap();
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let req = MintRequest {
            issuer: "https://t.test".into(),
            audience: vec!["https://t.test/mcp".into()],
            user_id: Uuid::now_v7(),
            scopes: ScopeSet::parse_grant("write:tasks read:context").unwrap(),
            now,
            expires_at: now + chrono::Duration::days(30),
            jti: Uuid::now_v7(),
        };
        let minted = mint(&ring, &req).unwrap();
        assert_eq!(minted.sha256, token_sha256(minted.token.expose()));
        assert_eq!(minted.claims.scope, "read:context write:tasks");
        assert_eq!(minted.claims.client_id, "tessera");
        assert_eq!(minted.claims.nbf, now.timestamp());
        let policy = VerifyPolicy::new("https://t.test", "https://t.test/mcp");
        let decoded = decode(&ring, minted.token.expose(), &policy, now.timestamp()).unwrap();
        assert_eq!(decoded, minted.claims);
        assert!(!format!("{minted:?}").contains(minted.token.expose()));
    }

    #[test]
    fn secret_token_debug_is_redacted() {
        assert_eq!(format!("{:?}", SecretToken::new("abc.def.ghi".into())), "SecretToken([redacted])");
    }
}
