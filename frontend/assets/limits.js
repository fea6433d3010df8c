// The server's bounds for token fields and the scopes it grants (`GET /api/v2/limits`),
// fetched once at boot. Forms read their attributes, hints and messages from here; the
// UI never keeps its own copy of a bound (the server's `core::values` owns them).

import { api } from './api.js';

let current = null;

/** Fetches `/api/v2/limits` (no sign-in needed) and keeps it for the page's lifetime. */
export async function loadLimits() {
  current = await api('GET', '/limits');
  return current;
}

/**
 * The bounds loaded at boot: `{name_max_chars, description_max_chars, reason_max_chars,
 * rate_limit_min, rate_limit_max, grace_max_seconds, lifetime_min_days, lifetime_max_days,
 * lifetime_default_days, grantable_scopes}`. Views run only after `loadLimits` succeeded.
 */
export function limits() {
  if (!current) throw new Error('limits are not loaded yet');
  return current;
}
