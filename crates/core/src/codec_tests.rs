//! One test per rejection rule of the codec.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::keys::{KeyRing, generate_ed25519};

const ISS: &str = "https://tessera.test";
const AUD: &str = "https://tessera.test/mcp";
const NOW: i64 = 1_800_000_000;

fn claims() -> Claims {
    Claims {
        iss: ISS.into(),
        sub: Uuid::nil().to_string(),
        aud: Audience::One(AUD.into()),
        exp: NOW + 3600,
        iat: NOW,
        nbf: NOW,
        jti: Uuid::now_v7(),
        scope: "read:tasks".into(),
        client_id: "tessera".into(),
    }
}

fn ed_ring() -> (KeyRing, crate::keys::StoredKey) {
    let key = generate_ed25519("k1".into());
    (KeyRing::ed25519(std::slice::from_ref(&key), "k1").unwrap(), key)
}

fn policy() -> VerifyPolicy {
    VerifyPolicy::new(ISS, AUD)
}

fn b64(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// A token with a hand-made header and payload, HMAC-signed with `secret`.
fn hs_token(header: serde_json::Value, payload: serde_json::Value, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(&header), b64(&payload));
    let key = jsonwebtoken::EncodingKey::from_secret(secret);
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::HS256).unwrap();
    format!("{input}.{signature}")
}

/// Replaces the header of a real token, keeping its payload and signature.
fn with_header(token: &str, header: serde_json::Value) -> String {
    let mut parts = token.splitn(2, '.');
    parts.next();
    format!("{}.{}", b64(&header), parts.next().unwrap())
}

#[test]
fn eddsa_round_trip_has_expected_header() {
    let (ring, _) = ed_ring();
    let c = claims();
    let token = encode(&ring, &c).unwrap();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header, json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "k1"}));
    assert_eq!(decode(&ring, &token, &policy(), NOW).unwrap(), c);
}

#[test]
fn hs256_round_trip() {
    let ring = KeyRing::hs256(&[42u8; 32]).unwrap();
    let token = encode(&ring, &claims()).unwrap();
    assert_eq!(decode(&ring, &token, &policy(), NOW).unwrap().scope, "read:tasks");
}

#[test]
fn alg_none_is_rejected_in_any_case() {
    let (ring, _) = ed_ring();
    let token = encode(&ring, &claims()).unwrap();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let forged = with_header(&token, json!({"alg": alg, "typ": "at+jwt", "kid": "k1"}));
        let unsigned = format!("{}.", forged.rsplit_once('.').unwrap().0);
        assert_eq!(decode(&ring, &forged, &policy(), NOW), Err(CodecError::AlgorithmNone), "{alg}");
        assert_eq!(decode(&ring, &unsigned, &policy(), NOW), Err(CodecError::AlgorithmNone), "{alg}");
    }
}

#[test]
fn hs256_token_is_rejected_by_eddsa_key_ring() {
    // The classic confusion: HMAC-sign with the (public) Ed25519 key as the secret.
    let (ring, key) = ed_ring();
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": "k1"});
    let forged = hs_token(header, serde_json::to_value(claims()).unwrap(), &key.public_key);
    assert_eq!(decode(&ring, &forged, &policy(), NOW), Err(CodecError::AlgorithmMismatch));
}

#[test]
fn eddsa_header_is_rejected_by_hs256_key_ring() {
    let ring = KeyRing::hs256(&[42u8; 32]).unwrap();
    let token = encode(&ring, &claims()).unwrap();
    let forged = with_header(&token, json!({"alg": "EdDSA", "typ": "at+jwt", "kid": ring.signing_kid()}));
    assert_eq!(decode(&ring, &forged, &policy(), NOW), Err(CodecError::AlgorithmMismatch));
}

#[test]
fn unknown_kid_is_rejected() {
    let (ring, _) = ed_ring();
    let (other, _) = {
        let key = generate_ed25519("k2".into());
        (KeyRing::ed25519(std::slice::from_ref(&key), "k2").unwrap(), key)
    };
    let token = encode(&other, &claims()).unwrap();
    assert_eq!(decode(&ring, &token, &policy(), NOW), Err(CodecError::UnknownKey));
}

#[test]
fn missing_kid_is_rejected() {
    let (ring, _) = ed_ring();
    let token = encode(&ring, &claims()).unwrap();
    let forged = with_header(&token, json!({"alg": "EdDSA", "typ": "at+jwt"}));
    assert_eq!(decode(&ring, &forged, &policy(), NOW), Err(CodecError::UnknownKey));
}

#[test]
fn missing_exp_is_rejected() {
    let ring = KeyRing::hs256(&[42u8; 32]).unwrap();
    let mut payload = serde_json::to_value(claims()).unwrap();
    payload.as_object_mut().unwrap().remove("exp");
    let token = hs_token(json!({"alg": "HS256", "typ": "at+jwt", "kid": ring.signing_kid()}), payload, &[42u8; 32]);
    assert_eq!(decode(&ring, &token, &policy(), NOW), Err(CodecError::MissingClaim("exp")));
}

#[test]
fn future_nbf_is_rejected() {
    let (ring, _) = ed_ring();
    let mut c = claims();
    c.nbf = NOW + 600;
    let token = encode(&ring, &c).unwrap();
    assert_eq!(decode(&ring, &token, &policy(), NOW), Err(CodecError::NotYetValid));
}

#[test]
fn expired_token_is_rejected_with_leeway_respected() {
    let (ring, _) = ed_ring();
    let mut c = claims();
    c.exp = NOW - 10;
    let token = encode(&ring, &c).unwrap();
    assert!(decode(&ring, &token, &policy(), NOW).is_ok(), "10 s past exp is inside the 30 s leeway");
    assert_eq!(decode(&ring, &token, &policy(), NOW + 60), Err(CodecError::Expired));
}

#[test]
fn wrong_issuer_is_rejected() {
    let (ring, _) = ed_ring();
    let mut c = claims();
    c.iss = "https://evil.test".into();
    let token = encode(&ring, &c).unwrap();
    assert_eq!(decode(&ring, &token, &policy(), NOW), Err(CodecError::WrongIssuer));
}

#[test]
fn audience_not_containing_resource_is_rejected() {
    let (ring, _) = ed_ring();
    let mut c = claims();
    c.aud = Audience::Many(vec!["https://other.test/mcp".into()]);
    let token = encode(&ring, &c).unwrap();
    assert_eq!(decode(&ring, &token, &policy(), NOW), Err(CodecError::WrongAudience));
}

#[test]
fn audience_list_containing_resource_is_accepted() {
    let (ring, _) = ed_ring();
    let mut c = claims();
    c.aud = Audience::Many(vec!["https://other.test/mcp".into(), AUD.into()]);
    let token = encode(&ring, &c).unwrap();
    assert!(decode(&ring, &token, &policy(), NOW).is_ok());
}

#[test]
fn our_token_for_any_audience_decodes_for_revocation_but_not_a_forged_one() {
    let (ring, _) = ed_ring();
    let mut c = claims();
    c.aud = Audience::One("https://tessera.test/mcp/notes".into());
    let token = encode(&ring, &c).unwrap();
    assert_eq!(decode_any_audience(&ring, &token, ISS, NOW).unwrap().jti, c.jti);
    assert_eq!(decode_any_audience(&ring, &token, "https://evil.test", NOW), Err(CodecError::WrongIssuer));
    let (head, sig) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    sig[0] ^= 1;
    let forged = format!("{head}.{}", URL_SAFE_NO_PAD.encode(sig));
    assert_eq!(decode_any_audience(&ring, &forged, ISS, NOW), Err(CodecError::InvalidSignature));
}

#[test]
fn unknown_crit_header_is_rejected() {
    let (ring, _) = ed_ring();
    let token = encode(&ring, &claims()).unwrap();
    let forged = with_header(&token, json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "k1", "crit": ["exp"]}));
    assert_eq!(decode(&ring, &forged, &policy(), NOW), Err(CodecError::UnsupportedCritical));
}

#[test]
fn embedded_jwk_header_is_rejected() {
    let (ring, key) = ed_ring();
    let token = encode(&ring, &claims()).unwrap();
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(&key.public_key)});
    let forged = with_header(&token, json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "k1", "jwk": jwk}));
    assert_eq!(decode(&ring, &forged, &policy(), NOW), Err(CodecError::EmbeddedKey));
}

#[test]
fn wrong_typ_is_rejected() {
    let (ring, _) = ed_ring();
    let token = encode(&ring, &claims()).unwrap();
    let forged = with_header(&token, json!({"alg": "EdDSA", "typ": "JWT", "kid": "k1"}));
    assert_eq!(decode(&ring, &forged, &policy(), NOW), Err(CodecError::WrongType));
}

#[test]
fn token_over_4_kib_is_rejected() {
    let (ring, _) = ed_ring();
    let mut c = claims();
    c.scope = "read:tasks ".repeat(400);
    let token = encode(&ring, &c).unwrap();
    assert!(token.len() > MAX_TOKEN_BYTES);
    assert_eq!(decode(&ring, &token, &policy(), NOW), Err(CodecError::TooLarge));
}

#[test]
fn tampered_signature_is_rejected() {
    let (ring, _) = ed_ring();
    let token = encode(&ring, &claims()).unwrap();
    let (head, sig) = token.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    sig[0] ^= 1;
    let forged = format!("{head}.{}", URL_SAFE_NO_PAD.encode(sig));
    assert_eq!(decode(&ring, &forged, &policy(), NOW), Err(CodecError::InvalidSignature));
}

#[test]
fn tampered_payload_is_rejected() {
    let (ring, _) = ed_ring();
    let token = encode(&ring, &claims()).unwrap();
    let mut parts: Vec<&str> = token.split('.').collect();
    let mut c = claims();
    c.scope = "mcp:admin".into();
    let payload = b64(&serde_json::to_value(c).unwrap());
    parts[1] = &payload;
    assert_eq!(decode(&ring, &parts.join("."), &policy(), NOW), Err(CodecError::InvalidSignature));
}

#[test]
fn garbage_is_malformed() {
    let (ring, _) = ed_ring();
    for garbage in ["", "abc", "a.b.c", "a.b.c.d", "!!!.???.###"] {
        assert_eq!(decode(&ring, garbage, &policy(), NOW), Err(CodecError::Malformed), "{garbage}");
    }
}

#[test]
fn old_key_still_verifies_after_rotation() {
    let old = generate_ed25519("k-old".into());
    let new = generate_ed25519("k-new".into());
    let before = KeyRing::ed25519(std::slice::from_ref(&old), "k-old").unwrap();
    let token = encode(&before, &claims()).unwrap();
    let after = KeyRing::ed25519(&[old, new], "k-new").unwrap();
    assert!(decode(&after, &token, &policy(), NOW).is_ok());
    assert_eq!(after.signing_kid(), "k-new");
}

#[test]
fn error_messages_never_contain_the_token() {
    let (ring, _) = ed_ring();
    let token = encode(&ring, &claims()).unwrap();
    let err = decode(&ring, &token, &policy(), NOW + 10 * 3600).unwrap_err();
    assert!(!err.to_string().contains(&token));
}
