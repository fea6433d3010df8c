//! Tessera as an OpenID Connect relying party: sign-in through a company's identity
//! provider. [`Provider`] does the I/O (discovery, the code exchange, keys); [`rules`] holds
//! what the provider's claims must say and how groups are read, as pure functions.
//!
//! Written on `jsonwebtoken` (already Tessera's JWT verifier, with the algorithms and JWK
//! decoding an ID token needs) rather than the `openidconnect` crate, whose 4.x line adds
//! about fifty crates to the build (a second generation of the RustCrypto curves among them).

#![warn(missing_docs)]

mod provider;
pub mod rules;

pub use provider::{Flow, Provider, SsoConfig, SsoError};
pub use rules::Identity;
