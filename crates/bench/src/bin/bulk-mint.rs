//! Mints many tokens at once for the memory and database-load steps of `scripts/bench`:
//! signs them with the server's own key ring (read from its database) and inserts their rows
//! in batches, skipping the lifecycle service (no audit row, no NOTIFY per token) because
//! only the Validator's behaviour on many distinct *valid* tokens is being measured.
//!
//! Usage: `bulk-mint <data-dir> <issuer> <user-email> <count> <out-file> "<scopes>"`; writes
//! one token per line to `<out-file>` (a bench-only throwaway database).

use std::io::Write;

use chrono::{Duration, Utc};
use tessera_core::ScopeSet;
use tessera_core::keys::KeyRing;
use tessera_core::mint::{MintRequest, mint};
use tessera_pgcluster::LocalCluster;
use tessera_store::{Store, StoreConfig};

const BATCH: usize = 5_000;

fn fail(what: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(what.to_string())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data_dir, issuer, email, count, out, scopes] = args.as_slice() else {
        eprintln!("usage: bulk-mint <data-dir> <issuer> <user-email> <count> <out-file> \"<scopes>\"");
        std::process::exit(2);
    };
    let count: usize = count.parse().map_err(fail)?;
    let url = LocalCluster::new(std::path::Path::new(data_dir)).map_err(fail)?.url("tessera");
    let config =
        StoreConfig { max_connections: 2, acquire_timeout: std::time::Duration::from_secs(10), listen_url: None };
    let store = Store::connect(&url, &config).await.map_err(fail)?;
    let now = Utc::now();
    let keys = store.key_set(now).await.map_err(fail)?;
    let ring = KeyRing::ed25519(&keys.keys, &keys.signing_kid).map_err(fail)?;
    let user = store.user_by_email(email).await.map_err(fail)?.ok_or_else(|| fail("no such user"))?;
    let scopes = ScopeSet::parse_grant(scopes).map_err(fail)?;
    let audience = vec![format!("{issuer}/mcp")];
    let expires_at = now + Duration::days(1);
    let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
    let mut done = 0;
    while done < count {
        let n = BATCH.min(count - done);
        let (mut ids, mut hashes) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            let jti = uuid::Uuid::now_v7();
            let req = MintRequest {
                issuer: issuer.clone(),
                audience: audience.clone(),
                user_id: user.id,
                scopes: scopes.clone(),
                now,
                expires_at,
                jti,
            };
            let minted = mint(&ring, &req).map_err(fail)?;
            writeln!(file, "{}", minted.token.expose())?;
            ids.push(jti);
            hashes.push(minted.sha256.as_bytes().to_vec());
        }
        sqlx::query(
            "INSERT INTO tokens (id, user_id, name, scopes, audience, created_at, expires_at, token_sha256, kid) \
             SELECT id, $2, 'bulk', $3, $4, $5, $6, sha, $7 FROM unnest($1::uuid[], $8::bytea[]) AS t(id, sha)",
        )
        .bind(&ids)
        .bind(user.id)
        .bind(scopes.to_vec())
        .bind(&audience)
        .bind(now)
        .bind(expires_at)
        .bind(ring.signing_kid())
        .bind(&hashes)
        .execute(store.pool())
        .await
        .map_err(fail)?;
        done += n;
    }
    file.flush()?;
    eprintln!("bulk-mint: {done} tokens");
    Ok(())
}
