//! Opens the store: the one at `DATABASE_URL`, or a managed local PostgreSQL.

use std::time::Duration;

use chrono::Utc;
use tessera_core::keys::KeyRing;
use tessera_pgcluster::LocalCluster;
use tessera_store::{PUBLIC_URL_SETTING, Store, StoreConfig, StoreError};

use crate::config::Settings;
use crate::error::CliError;

/// The store, and the local cluster behind it when Tessera manages one.
#[derive(Debug)]
pub struct Database {
    /// Connected, migrated store.
    pub store: Store,
    cluster: Option<LocalCluster>,
}

/// Name of the database inside the managed cluster.
const MANAGED_DATABASE: &str = "tessera";

impl Database {
    /// Connects (starting the local cluster if needed) and applies pending migrations.
    pub async fn open(settings: &Settings) -> Result<Self, CliError> {
        let (url, cluster) = match &settings.database_url {
            Some(url) => (url.expose().to_owned(), None),
            None => {
                let dir = settings.data_dir.clone();
                let cluster = tokio::task::spawn_blocking(move || {
                    let mut cluster = LocalCluster::new(&dir)?;
                    cluster.start(MANAGED_DATABASE)?;
                    Ok::<_, CliError>(cluster)
                })
                .await
                .map_err(|e| CliError::Usage(format!("local PostgreSQL start-up was interrupted: {e}")))??;
                (cluster.url(MANAGED_DATABASE), Some(cluster))
            }
        };
        let config = StoreConfig {
            max_connections: settings.db_max_connections.max(2),
            acquire_timeout: Duration::from_secs(5),
            listen_url: settings.listen_database_url.as_ref().map(|u| u.expose().to_owned()),
        };
        let store = Store::connect(&url, &config).await.map_err(|e| match e {
            StoreError::Unavailable(detail) => CliError::Store(StoreError::Unavailable(format!(
                "cannot reach the database at DATABASE_URL ({detail})"
            ))),
            other => CliError::Store(other),
        })?;
        let applied = store.migrate().await?;
        if applied > 0 {
            tracing::info!(applied, "applied database migrations");
        }
        Ok(Self { store, cluster })
    }

    /// Loads the signing keys: HS256 from `TESSERA_JWT_SECRET`, else the Ed25519 ring in
    /// Postgres (created on first start).
    pub async fn key_ring(&self, settings: &Settings) -> Result<KeyRing, CliError> {
        if let Some(secret) = &settings.jwt_secret {
            return Ok(KeyRing::hs256(secret.expose().as_bytes())?);
        }
        let set = self.store.load_or_create_keys(Utc::now()).await?;
        Ok(KeyRing::ed25519(&set.keys, &set.signing_kid)?)
    }

    /// The issuer (`iss`) a token minted by this process must carry for the server to accept
    /// it; its audience is `<issuer>/mcp`. `TESSERA_PUBLIC_URL` when given; else the public URL
    /// `tessera serve` recorded in this database ([`Database::record_public_url`]); else, with
    /// a warning, `http://<TESSERA_BIND>`, which a server with another public URL refuses.
    pub async fn issuer(&self, settings: &Settings) -> Result<String, CliError> {
        if settings.public_url.is_some() {
            return Ok(settings.issuer());
        }
        if let Some(url) = self.store.server_setting(PUBLIC_URL_SETTING).await? {
            return Ok(url);
        }
        let fallback = settings.issuer();
        tracing::warn!(
            issuer = %fallback,
            "TESSERA_PUBLIC_URL is unset and no `tessera serve` has recorded its public URL in this \
             database: minting for {fallback}; a server with another public URL will refuse these tokens"
        );
        Ok(fallback)
    }

    /// Records the public URL this server mints for, so CLI commands on the same database
    /// mint tokens it accepts ([`Database::issuer`]).
    pub async fn record_public_url(&self, settings: &Settings) -> Result<(), CliError> {
        self.store.set_server_setting(PUBLIC_URL_SETTING, &settings.public_url(), Utc::now()).await?;
        Ok(())
    }

    /// Closes connections and stops the local cluster if this process started it.
    pub async fn close(mut self) {
        self.store.close().await;
        if let Some(mut cluster) = self.cluster.take() {
            let stopped = tokio::task::spawn_blocking(move || cluster.stop()).await;
            match stopped {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "could not stop the local PostgreSQL"),
                Err(e) => tracing::error!(error = %e, "could not stop the local PostgreSQL"),
            }
        }
    }
}
