//! Tessera's pure domain: scopes and their inheritance, token claims, the JWT codec and key
//! ring, minting, the validator's decision, and the token lifecycle's rules and value types. No I/O here; the clock is a parameter.

#![warn(missing_docs)]

pub mod alerts;
pub mod catalog;
pub mod claims;
pub mod client_secret;
pub mod codec;
pub mod error_code;
pub mod keys;
pub mod lifecycle;
pub mod mint;
pub mod net;
pub mod outcome;
pub mod password;
pub mod pins;
pub mod scope;
pub mod sealed;
pub mod stdio;
pub mod upstream;
pub mod validate;
pub mod values;

pub use catalog::{Catalog, NameError, ServerGrant, ServerName, ServerScope, ToolName};
pub use claims::{Audience, Claims};
pub use codec::{CodecError, VerifyPolicy};
pub use error_code::ErrorCode;
pub use keys::{Algorithm, KeyError, KeyRing, SecretBytes, StoredKey};
pub use lifecycle::{Credential, Requester, TokenRuleViolation};
pub use mint::{MintRequest, Minted, SecretToken};
pub use password::Password;
pub use scope::{Scope, ScopeError, ScopeSet};
pub use validate::{DenyReason, Principal, Rejection, Revocation, RevocationKind, TokenState};
pub use values::{Description, Grace, InvalidValue, Lifetime, RateLimit, RevokeReason, TokenName};
