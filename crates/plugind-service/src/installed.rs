//! The installation cache: (tenant, plugin id) → the unique identifier its installation runs,
//! so a dispatch does not read the database.
//!
//! Filled by dispatch on a miss; every change of an installation (install, upgrade, uninstall)
//! calls [`InstalledCache::invalidate`] once its transaction committed. A lookup that raced with
//! such a change does not put the old answer back: [`InstalledCache::insert`] takes the
//! generation read before the database was asked, and any invalidation since then makes the
//! insert a no-op. Only this node's changes are seen; invalidation across nodes goes behind the
//! same `invalidate` call.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use plugind_entities::PluginUniqueIdentifier;

/// Entries kept at most; past it the cache starts over (a bound, not an eviction policy: the
/// working set of one daemon is far smaller).
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub(crate) struct InstalledCache {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Bumped by every invalidation.
    generation: u64,
    /// tenant id → plugin id → uid.
    entries: HashMap<String, HashMap<String, PluginUniqueIdentifier>>,
    len: usize,
}

impl InstalledCache {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, tenant_id: &str, plugin_id: &str) -> Option<PluginUniqueIdentifier> {
        self.lock().entries.get(tenant_id)?.get(plugin_id).cloned()
    }

    /// Read before asking the database; hand it back to [`InstalledCache::insert`].
    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Remembers `uid` unless an invalidation happened since `generation` was read.
    pub(crate) fn insert(
        &self,
        generation: u64,
        tenant_id: &str,
        plugin_id: &str,
        uid: PluginUniqueIdentifier,
    ) {
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        if state.len >= MAX_ENTRIES {
            state.entries.clear();
            state.len = 0;
        }
        let tenant = state.entries.entry(tenant_id.to_owned()).or_default();
        if tenant.insert(plugin_id.to_owned(), uid).is_none() {
            state.len += 1;
        }
    }

    /// Forgets the tenant's installation of `plugin_id`: call after any change to it commits.
    pub(crate) fn invalidate(&self, tenant_id: &str, plugin_id: &str) {
        let mut state = self.lock();
        state.generation += 1;
        let removed = match state.entries.get_mut(tenant_id) {
            Some(tenant) => {
                let removed = tenant.remove(plugin_id).is_some();
                if tenant.is_empty() {
                    state.entries.remove(tenant_id);
                }
                removed
            }
            None => false,
        };
        if removed {
            state.len -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid(version: &str) -> PluginUniqueIdentifier {
        PluginUniqueIdentifier::parse(&format!(
            "a/b:{version}@0123456789012345678901234567890123456789012345678901234567890123"
        ))
        .expect("uid")
    }

    #[test]
    fn hit_invalidate_and_no_stale_insert() {
        let cache = InstalledCache::default();
        assert!(cache.get("t", "a/b").is_none());
        let g = cache.generation();
        cache.insert(g, "t", "a/b", uid("0.0.1"));
        assert_eq!(cache.get("t", "a/b"), Some(uid("0.0.1")));
        assert!(cache.get("other", "a/b").is_none());

        // A lookup that started before an upgrade committed must not put the old uid back.
        let before = cache.generation();
        cache.invalidate("t", "a/b");
        cache.insert(before, "t", "a/b", uid("0.0.1"));
        assert!(cache.get("t", "a/b").is_none());
        let g = cache.generation();
        cache.insert(g, "t", "a/b", uid("0.0.2"));
        assert_eq!(cache.get("t", "a/b"), Some(uid("0.0.2")));
    }
}
