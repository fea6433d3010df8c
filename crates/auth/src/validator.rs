//! Signature and row checks with caches that revocation can never outlive.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tessera_core::ErrorCode;
use tessera_core::claims::Claims;
use tessera_core::codec::{CodecError, TokenHash, VerifyPolicy, decode, token_sha256};
use tessera_core::keys::KeyRing;
use tessera_core::validate::{DenyReason, Principal, Rejection, TokenState, decide};
use tessera_store::{Store, StoreError, TokenEvent};
use uuid::Uuid;

/// Upper bound of the row-state cache TTL, whatever the configuration says.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(60);
/// Verified signatures kept at most; the cache is simply cleared when full.
const MAX_VERIFIED: usize = 50_000;
/// Cached row states kept at most: a full cache first drops its stale entries, and is
/// cleared when most are fresh (100,000 distinct tokens in one TTL must not grow it further).
const MAX_STATES: usize = 50_000;
/// An unknown `kid` reloads the key ring at most this often (a new key after `keys rotate`).
const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(5);
/// How often the change feed is probed ([`Store::heartbeat`]).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// A feed that delivered nothing, not even its own probes, for this long is dead: a LISTEN
/// connection can die silently (a dropped NAT entry, a frozen peer) and would otherwise
/// keep row caching on while revocations go unheard, for up to the cache TTL per token.
pub const FEED_DEAD_AFTER: Duration = Duration::from_secs(4);

/// How tokens are checked.
#[derive(Debug, Clone)]
pub struct ValidatorConfig {
    /// Expected `iss`.
    pub issuer: String,
    /// This resource: `aud` must contain it (RFC 8707).
    pub resource: String,
    /// Row-state cache lifetime (capped at 60 s; zero disables the cache).
    pub cache_ttl: Duration,
    /// Whether keys live in Postgres and may be reloaded (false for an HS256 secret).
    pub reload_keys: bool,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    /// The token is bad (signature, claims, or its row): 401 with this reason.
    #[error("{}", .0.message())]
    Rejected(Rejection),
    /// The database could not be asked and nothing fresh is cached: 503, never accept.
    #[error("token state is unavailable: {0}")]
    Unavailable(String),
}

#[derive(Debug)]
struct CachedState {
    fetched: Instant,
    state: Option<TokenState>,
}

/// Checks tokens; one per process, shared by every worker.
#[derive(Debug)]
pub struct Validator {
    store: Store,
    ring: RwLock<Arc<KeyRing>>,
    config: ValidatorConfig,
    policy: VerifyPolicy,
    states: Mutex<HashMap<Uuid, CachedState>>,
    verified: Mutex<HashMap<TokenHash, Claims>>,
    /// Bumped by every eviction: a row read that overlaps one is not cached.
    epoch: AtomicU64,
    /// Row states are cached only while the change feed is connected.
    caching: AtomicBool,
    last_key_reload: Mutex<Option<Instant>>,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    /// Times the change feed was found silent and restarted.
    feed_losses: AtomicU64,
    /// Who else hears the feed's server changes and connection state (the registry cache).
    relay: std::sync::OnceLock<FeedRelay>,
}

/// What a feed event is passed on to.
pub type FeedHook = dyn Fn(&TokenEvent) + Send + Sync;

struct FeedRelay(Box<FeedHook>);

impl std::fmt::Debug for FeedRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FeedRelay")
    }
}

impl Validator {
    /// A validator with empty caches; call [`Validator::spawn_listener`] to enable row caching.
    pub fn new(store: Store, ring: KeyRing, mut config: ValidatorConfig) -> Arc<Self> {
        config.cache_ttl = config.cache_ttl.min(MAX_CACHE_TTL);
        let policy = VerifyPolicy::new(config.issuer.clone(), config.resource.clone());
        Arc::new(Self {
            store,
            ring: RwLock::new(Arc::new(ring)),
            config,
            policy,
            states: Mutex::new(HashMap::new()),
            verified: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            caching: AtomicBool::new(false),
            last_key_reload: Mutex::new(None),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            feed_losses: AtomicU64::new(0),
            relay: std::sync::OnceLock::new(),
        })
    }

    /// The current key ring (for publishing JWKS or minting).
    pub fn key_ring(&self) -> Arc<KeyRing> {
        self.ring.read().map(|r| Arc::clone(&r)).unwrap_or_else(|p| Arc::clone(&p.into_inner()))
    }

    /// (hits, misses) of the row-state cache since start.
    pub fn cache_stats(&self) -> (u64, u64) {
        (self.cache_hits.load(Ordering::Relaxed), self.cache_misses.load(Ordering::Relaxed))
    }

    /// Whether the change feed is connected (row caching is on only then), and how many
    /// times it was found silent and restarted (metrics).
    pub fn feed_stats(&self) -> (bool, u64) {
        (self.caching.load(Ordering::Acquire), self.feed_losses.load(Ordering::Relaxed))
    }

    /// Validates a bearer token at `now`: signature, claims, row state, effective scopes.
    pub async fn validate(&self, token: &str, now: DateTime<Utc>) -> Result<Principal, AuthError> {
        self.validate_with(token, &self.policy, now).await
    }

    /// The same for another resource of this issuer (a gateway server's `{mcp}/S`): `aud`
    /// must name `resource` (RFC 8707).
    pub async fn validate_for(&self, token: &str, resource: &str, now: DateTime<Utc>) -> Result<Principal, AuthError> {
        let policy = VerifyPolicy { audience: resource.to_owned(), ..self.policy.clone() };
        self.validate_with(token, &policy, now).await
    }

    /// The same as [`Validator::validate`] (for `resource`, or the built-in one when `None`),
    /// giving the verified claims too; and when the token is refused after its signature was
    /// verified and its row was found, the refused token's id (`jti`), so the refusal can be
    /// counted against it without decoding the unverified token a second time. A token
    /// without a row, or whose row belongs to another subject, is never named: counting it
    /// would let a forger make us write usage for ids of its choosing.
    pub async fn identify(
        &self,
        token: &str,
        resource: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(Claims, Principal), (AuthError, Option<Uuid>)> {
        let other;
        let policy = match resource {
            Some(r) if r != self.policy.audience => {
                other = VerifyPolicy { audience: r.to_owned(), ..self.policy.clone() };
                &other
            }
            _ => &self.policy,
        };
        let sha = token_sha256(token);
        let claims = self.verify(token, &sha, policy, now).await.map_err(|e| (e, None))?;
        let state = self.row_state(claims.jti).await.map_err(|e| (e, None))?;
        match decide(&claims, &sha, state.as_ref(), now) {
            Ok(principal) => Ok((claims, principal)),
            Err(reason) => {
                let identified = !matches!(reason, DenyReason::NotFound | DenyReason::SubjectMismatch);
                Err((AuthError::Rejected(Rejection::Denied(reason)), identified.then_some(claims.jti)))
            }
        }
    }

    /// [`Validator::identify`] for the built-in resource, without the claims.
    pub async fn validate_identified(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Principal, (AuthError, Option<Uuid>)> {
        self.identify(token, None, now).await.map(|(_, principal)| principal)
    }

    async fn validate_with(
        &self,
        token: &str,
        policy: &VerifyPolicy,
        now: DateTime<Utc>,
    ) -> Result<Principal, AuthError> {
        let sha = token_sha256(token);
        let claims = self.verify(token, &sha, policy, now).await?;
        let state = self.row_state(claims.jti).await?;
        decide(&claims, &sha, state.as_ref(), now).map_err(|r| AuthError::Rejected(Rejection::Denied(r)))
    }

    async fn verify(
        &self,
        token: &str,
        sha: &TokenHash,
        policy: &VerifyPolicy,
        now: DateTime<Utc>,
    ) -> Result<Claims, AuthError> {
        let ts = now.timestamp();
        let cached = self.verified.lock().ok().and_then(|m| m.get(sha).cloned());
        if let Some(claims) = cached {
            // The signature was checked (for some resource); the audience must be this one
            // and time-bound claims must still hold now.
            if !claims.aud.contains(&policy.audience) {
                return Err(AuthError::Rejected(Rejection::Codec(CodecError::WrongAudience)));
            }
            let leeway = policy.leeway_secs;
            if claims.exp <= ts - leeway {
                return Err(AuthError::Rejected(Rejection::Codec(CodecError::Expired)));
            }
            if claims.nbf > ts + leeway {
                return Err(AuthError::Rejected(Rejection::Codec(CodecError::NotYetValid)));
            }
            return Ok(claims);
        }
        let ring = self.key_ring();
        let claims = match decode(&ring, token, policy, ts) {
            Err(CodecError::UnknownKey) if self.may_reload_keys() => {
                let ring = self.reload_keys(now).await?;
                decode(&ring, token, policy, ts)
            }
            other => other,
        }
        .map_err(|e| AuthError::Rejected(Rejection::Codec(e)))?;
        if let Ok(mut m) = self.verified.lock() {
            if m.len() >= MAX_VERIFIED {
                m.clear();
            }
            m.insert(*sha, claims.clone());
        }
        Ok(claims)
    }

    fn may_reload_keys(&self) -> bool {
        if !self.config.reload_keys {
            return false;
        }
        let Ok(mut last) = self.last_key_reload.lock() else { return false };
        let due = last.is_none_or(|t| t.elapsed() >= KEY_RELOAD_INTERVAL);
        if due {
            *last = Some(Instant::now());
        }
        due
    }

    async fn reload_keys(&self, now: DateTime<Utc>) -> Result<Arc<KeyRing>, AuthError> {
        let set = self.store.key_set(now).await.map_err(unavailable)?;
        let ring = KeyRing::ed25519(&set.keys, &set.signing_kid)
            .map_err(|e| AuthError::Unavailable(format!("stored signing keys are unusable: {e}")))?;
        let ring = Arc::new(ring);
        if let Ok(mut slot) = self.ring.write() {
            *slot = Arc::clone(&ring);
        }
        tracing::info!(kid = ring.signing_kid(), "reloaded signing keys");
        Ok(ring)
    }

    async fn row_state(&self, id: Uuid) -> Result<Option<TokenState>, AuthError> {
        let caching = self.caching.load(Ordering::Acquire) && !self.config.cache_ttl.is_zero();
        if caching {
            let hit = self.states.lock().ok().and_then(|m| {
                m.get(&id).filter(|c| c.fetched.elapsed() < self.config.cache_ttl).map(|c| c.state.clone())
            });
            if let Some(state) = hit {
                self.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(state);
            }
        }
        self.cache_misses.fetch_add(1, Ordering::Relaxed);
        let epoch = self.epoch.load(Ordering::Acquire);
        let fetched = Instant::now();
        let state = self.store.token_state(id).await.map_err(unavailable)?;
        // A change announced while we were reading may not be in what we read: don't keep it.
        // The epoch is compared under the cache's lock, which evictions also hold while they
        // bump it, so no eviction can fall between the check and the insert.
        if caching && let Ok(mut m) = self.states.lock() {
            let unchanged = self.caching.load(Ordering::Acquire) && self.epoch.load(Ordering::Acquire) == epoch;
            if unchanged {
                if m.len() >= MAX_STATES && !m.contains_key(&id) {
                    let ttl = self.config.cache_ttl;
                    m.retain(|_, c| c.fetched.elapsed() < ttl);
                    // Mostly fresh: clearing is cheaper than pruning again on the next insert.
                    if m.len() >= MAX_STATES / 4 * 3 {
                        m.clear();
                    }
                }
                m.insert(id, CachedState { fetched, state: state.clone() });
            }
        }
        Ok(state)
    }

    /// Forgets one token's cached row.
    pub fn evict(&self, id: Uuid) {
        let mut m = self.states.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bumped under the lock: a read that began before this eviction cannot insert after it.
        self.epoch.fetch_add(1, Ordering::AcqRel);
        m.remove(&id);
    }

    /// Forgets every cached row.
    pub fn evict_all(&self) {
        let mut m = self.states.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        m.clear();
    }

    /// Passes every server change and every loss or return of the feed to `hook` as well
    /// (one process, one feed connection); only the first hook set is kept.
    pub fn relay_feed(&self, hook: Box<FeedHook>) {
        let _ = self.relay.set(FeedRelay(hook));
    }

    fn relay(&self, event: &TokenEvent) {
        if let Some(relay) = self.relay.get() {
            (relay.0)(event);
        }
    }

    /// Applies one change-feed event to the caches.
    pub fn apply(&self, event: &TokenEvent) {
        if !matches!(event, TokenEvent::Changed(_) | TokenEvent::Heartbeat) {
            self.relay(event);
        }
        match event {
            TokenEvent::Changed(id) => self.evict(*id),
            TokenEvent::Disconnected => {
                self.caching.store(false, Ordering::Release);
                self.evict_all();
                tracing::warn!("token change feed lost: row caching off until it is back");
            }
            TokenEvent::Reconnected => {
                self.evict_all();
                self.caching.store(true, Ordering::Release);
                tracing::info!("token change feed reconnected: caches dropped");
            }
            TokenEvent::Heartbeat | TokenEvent::ServerChanged(_) => {}
        }
    }

    /// Listens to `tessera_token_events` for the life of the process; row caching is on
    /// only while the listener is connected and heard from (probed every
    /// [`HEARTBEAT_INTERVAL`], restarted after [`FEED_DEAD_AFTER`] of silence).
    pub fn spawn_listener(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let mut backoff = Duration::from_millis(100);
                let events = loop {
                    match me.store.token_events().await {
                        Ok(events) => break events,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot listen for token changes yet");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                        }
                    }
                };
                me.apply(&TokenEvent::Reconnected);
                me.watch(events).await;
                // Silent for too long: stop trusting the cache and start a new connection.
                me.feed_losses.fetch_add(1, Ordering::Relaxed);
                me.caching.store(false, Ordering::Release);
                me.evict_all();
                me.relay(&TokenEvent::Disconnected);
                tracing::warn!(
                    silent_secs = FEED_DEAD_AFTER.as_secs(),
                    "token change feed went silent: row caching off, reconnecting"
                );
            }
        })
    }

    /// Applies events until the feed stays silent for [`FEED_DEAD_AFTER`]. The listener is
    /// read in its own task and aborted (its connection dropped) when the feed is judged
    /// dead, so an unfinished read is never resumed on a connection in an unknown state.
    async fn watch(&self, mut events: tessera_store::TokenEvents) {
        let (tx, mut rx) = tokio::sync::mpsc::channel(256);
        let reader = tokio::spawn(async move {
            loop {
                if tx.send(events.next().await).await.is_err() {
                    return;
                }
            }
        });
        let _reader = AbortOnDrop(reader);
        let mut probe = tokio::time::interval(HEARTBEAT_INTERVAL);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut heard = Instant::now();
        loop {
            tokio::select! {
                event = rx.recv() => match event {
                    Some(event) => {
                        heard = Instant::now();
                        self.apply(&event);
                    }
                    None => return,
                },
                _ = probe.tick() => {
                    if heard.elapsed() >= FEED_DEAD_AFTER {
                        return;
                    }
                    // Over the pool, with a deadline: a stuck probe must not pile up.
                    let store = self.store.clone();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(HEARTBEAT_INTERVAL, store.heartbeat()).await;
                    });
                }
            }
        }
    }
}

/// Aborts the task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn unavailable(e: StoreError) -> AuthError {
    AuthError::Unavailable(e.to_string())
}

impl AuthError {
    /// Stable reason code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Rejected(r) => r.code(),
            Self::Unavailable(_) => ErrorCode::TemporarilyUnavailable,
        }
    }
}
