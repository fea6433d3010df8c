//! The gateway's per-process view of the registry: one entry per server with what a request
//! needs (row, tool classes, opened headers), so the hot path reads no row and opens no seal.
//! Entries go at once on this instance's own changes, on other instances' through the
//! change feed (`server:NAME` events), and after a short TTL while the feed is down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tessera_core::pins::{HoldReason, NewToolPolicy, Pin, PinDigest, PinView};
use tessera_core::upstream::UpstreamHeader;
use tessera_store::{DiscoveredTool, ServerRecord, TokenEvent};

use crate::servers::ToolView;

/// Entry lifetime while the change feed delivers: a bound for a missed event, not the
/// means of freshness (evictions are).
pub const LIVE_TTL: Duration = Duration::from_secs(60);
/// Entry lifetime while the change feed is down (or not wired, as in the CLI).
pub const FALLBACK_TTL: Duration = Duration::from_secs(1);
/// Servers kept at most; a full cache is cleared (registries are small, names are checked).
const MAX_ENTRIES: usize = 1024;

/// What a gateway request needs of one server.
#[derive(Debug)]
pub struct GatewayServer {
    /// Its row.
    pub record: ServerRecord,
    /// Its tools with the class in force.
    pub tools: Vec<ToolView>,
    /// Its configured headers, opened; `None` if they could not be opened (no key, bad
    /// seal): the request is then refused when it would go upstream. `Debug` hides values.
    pub headers: Option<Vec<UpstreamHeader>>,
    /// For a server whose users bring their own credential: each connected person's header.
    pub personal: Option<crate::connections::PersonalCredentials>,
    /// Its tools' pins, which the gateway checks each listing and call against.
    pub pins: ToolPins,
}

impl GatewayServer {
    /// Whether `found` (a `tools/list` answer) shows nothing the registry does not already
    /// hold (same names, hints and descriptions), so recording it would change nothing.
    pub fn knows(&self, found: &[DiscoveredTool]) -> bool {
        found.iter().all(|f| {
            self.tools.iter().any(|t| {
                t.record.discovered_at.is_some()
                    && t.record.name == f.name
                    && t.record.read_only_hint == f.read_only_hint
                    && t.record.description == f.description
            })
        })
    }
}

/// A server's pinned tool definitions as the gateway checks them (issue #26), kept with its
/// cache entry so that a listing or a call reads no row: refreshed with the entry through the
/// change feed.
#[derive(Debug, Default)]
pub struct ToolPins {
    pins: HashMap<String, Pin>,
    policy: NewToolPolicy,
    /// Digests of definitions as served (their exact text), so a steady listing hashes
    /// nothing twice: text to digest, bounded.
    memo: Mutex<HashMap<Box<str>, PinDigest>>,
}

/// Served definitions whose digest is remembered per server.
const MAX_MEMO: usize = 1024;

impl ToolPins {
    /// Pins `pins` under `policy`.
    pub fn new(pins: HashMap<String, Pin>, policy: NewToolPolicy) -> Self {
        Self { pins, policy, memo: Mutex::default() }
    }

    /// The pins of `server`'s `tools` as stored.
    pub fn of(server: &ServerRecord, tools: &[ToolView]) -> Self {
        let pins = tools
            .iter()
            .filter_map(|t| {
                let pinned = PinDigest::try_from(t.record.pinned_sha256.as_deref()?).ok()?;
                let served = t.record.served_sha256.as_deref().and_then(|s| PinDigest::try_from(s).ok());
                // An unknown reason is still a hold: the safe reading.
                let hold = t.record.hold.as_deref().map(|h| HoldReason::parse(h).unwrap_or(HoldReason::Changed));
                Some((t.record.name.clone(), Pin { pinned, hold, served }))
            })
            .collect();
        Self::new(pins, server.new_tools)
    }

    /// What the pins say of `tool`.
    pub fn view(&self, tool: &str) -> PinView<'_> {
        PinView { pin: self.pins.get(tool), any_pins: !self.pins.is_empty(), policy: self.policy }
    }

    /// The digest of a tool served as the JSON text `raw`; `None` if it is not JSON.
    pub fn digest_of_raw(&self, raw: &str) -> Option<PinDigest> {
        if let Some(found) = self.memo.lock().unwrap_or_else(PoisonError::into_inner).get(raw) {
            return Some(*found);
        }
        let tool: serde_json::Value = serde_json::from_str(raw).ok()?;
        let digest = tessera_core::pins::digest(&tessera_core::pins::definition(&tool));
        let mut memo = self.memo.lock().unwrap_or_else(PoisonError::into_inner);
        if memo.len() >= MAX_MEMO {
            memo.clear();
        }
        memo.insert(raw.into(), digest);
        Some(digest)
    }
}

#[derive(Debug, Default)]
pub(crate) struct ServerCache {
    entries: Mutex<HashMap<String, (Instant, Arc<GatewayServer>)>>,
    /// Bumped by every eviction: a fill that overlaps one is not kept.
    epoch: AtomicU64,
    /// Whether the change feed is connected (set by [`ServerCache::apply`]).
    live: AtomicBool,
}

impl ServerCache {
    fn ttl(&self) -> Duration {
        if self.live.load(Ordering::Acquire) { LIVE_TTL } else { FALLBACK_TTL }
    }

    pub(crate) fn get(&self, name: &str) -> Option<Arc<GatewayServer>> {
        let ttl = self.ttl();
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(name).filter(|(at, _)| at.elapsed() < ttl).map(|(_, e)| Arc::clone(e))
    }

    /// The epoch to hand back to [`ServerCache::put`] after reading the database.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Keeps `entry` unless an eviction happened since `epoch` (it may be stale).
    pub(crate) fn put(&self, epoch: u64, entry: &Arc<GatewayServer>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(entry.record.name.clone(), (Instant::now(), Arc::clone(entry)));
    }

    pub(crate) fn evict(&self, name: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        // Bumped under the lock: a fill that began before this cannot insert after it.
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.remove(name);
    }

    fn evict_all(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    pub(crate) fn apply(&self, event: &TokenEvent) {
        match event {
            TokenEvent::ServerChanged(name) => self.evict(name),
            TokenEvent::Disconnected => {
                self.live.store(false, Ordering::Release);
                self.evict_all();
            }
            TokenEvent::Reconnected => {
                self.evict_all();
                self.live.store(true, Ordering::Release);
            }
            TokenEvent::Changed(_) | TokenEvent::Heartbeat => {}
        }
    }
}
