//! Micro-benchmarks of the pure core: `cargo bench -p tessera-core`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use chrono::{Duration, Utc};
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_core::codec::{VerifyPolicy, decode};
use tessera_core::keys::{KeyRing, generate_ed25519};
use tessera_core::mint::{MintRequest, mint};
use tessera_core::scope::ScopeSet;
use uuid::Uuid;

const ISS: &str = "http://bench";
const AUD: &str = "http://bench/mcp";

fn token(ring: &KeyRing) -> String {
    let now = Utc::now();
    let req = MintRequest {
        issuer: ISS.into(),
        audience: vec![AUD.into()],
        user_id: Uuid::now_v7(),
        scopes: ScopeSet::parse_grant("read:tasks write:context execute:mcp").unwrap(),
        now,
        expires_at: now + Duration::days(30),
        jti: Uuid::now_v7(),
    };
    mint(ring, &req).unwrap().token.into_inner()
}

fn codec(c: &mut Criterion) {
    let key = generate_ed25519("k1".into());
    let ed = KeyRing::ed25519(std::slice::from_ref(&key), "k1").unwrap();
    let hs = KeyRing::hs256(&[9u8; 32]).unwrap();
    let policy = VerifyPolicy::new(ISS, AUD);
    let now = Utc::now().timestamp();
    let ed_token = token(&ed);
    let hs_token = token(&hs);
    c.bench_function("decode_verify_eddsa", |b| b.iter(|| decode(&ed, black_box(&ed_token), &policy, now).unwrap()));
    c.bench_function("decode_verify_hs256", |b| b.iter(|| decode(&hs, black_box(&hs_token), &policy, now).unwrap()));
    c.bench_function("mint_eddsa", |b| b.iter(|| token(black_box(&ed))));
}

fn scopes(c: &mut Criterion) {
    let grant = ScopeSet::parse_grant("write:tasks read:context execute:mcp write:agents").unwrap();
    c.bench_function("scope_expand", |b| b.iter(|| black_box(&grant).expand()));
    c.bench_function("scope_parse_grant", |b| {
        b.iter(|| ScopeSet::parse_grant(black_box("write:tasks read:context execute:mcp")).unwrap())
    });
}

criterion_group!(benches, codec, scopes);
criterion_main!(benches);
