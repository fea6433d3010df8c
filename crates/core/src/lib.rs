//! Tessera's pure domain: scopes and their inheritance, token claims, the JWT codec and key
//! ring, minting, and the validator's decision. No I/O here; the clock is a parameter.

#![warn(missing_docs)]

pub mod claims;
pub mod codec;
pub mod keys;
pub mod mint;
pub mod password;
pub mod scope;
pub mod validate;

pub use claims::{Audience, Claims};
pub use codec::{CodecError, VerifyPolicy};
pub use keys::{Algorithm, KeyError, KeyRing, SecretBytes, StoredKey};
pub use mint::{MintRequest, Minted, SecretToken};
pub use password::Password;
pub use scope::{Scope, ScopeError, ScopeSet};
pub use validate::{DenyReason, Principal, Rejection, Revocation, RevocationKind, TokenState};
