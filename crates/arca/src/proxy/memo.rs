//! Stored upstream documents kept in memory, with what formats derive from them (a parsed
//! service index, a p2 file's expanded versions), so a warm hit of proxied metadata costs the
//! one `proxy_documents` row lookup and neither a blob read nor a parse.
//!
//! Everything here is keyed by the stored document's SHA-256, which the caller takes from the
//! metadata-store row on every request: a blob is immutable under its digest, so an entry can
//! never be stale, and a document another server process refreshed has a new digest in the row
//! and is read afresh. Derived values are keyed by the digest *and* every other input they
//! depend on (the caller says which, e.g. the package name or the external base URL). Both maps
//! are bounded by an estimate of their bytes and simply start over when full (no recency
//! tracking: the working set of warm metadata is small, and a miss costs only a read).

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Bytes of document bodies kept.
const MAX_BODY_BYTES: usize = 64 << 20;
/// A larger body is not kept (nor anything derived from it): it would crowd out the rest.
const MAX_ONE: usize = 8 << 20;
/// Estimated bytes of derived values kept (each counted as a multiple of its document's size:
/// parsed JSON takes several times its text).
const MAX_DERIVED_BYTES: usize = 64 << 20;
const DERIVED_FACTOR: usize = 4;

#[derive(Default)]
pub struct Memo {
    bodies: Mutex<Bounded<Bytes>>,
    derived: Mutex<Bounded<Arc<dyn Any + Send + Sync>>>,
}

/// A map with the estimated bytes of its values.
struct Bounded<V> {
    map: HashMap<String, (usize, V)>,
    bytes: usize,
}

impl<V> Default for Bounded<V> {
    fn default() -> Self {
        Bounded {
            map: HashMap::new(),
            bytes: 0,
        }
    }
}

impl<V> Bounded<V> {
    fn put(&mut self, key: String, size: usize, value: V, max: usize) {
        if self.bytes + size > max {
            self.map.clear();
            self.bytes = 0;
        }
        self.bytes += size;
        if let Some((old, _)) = self.map.insert(key, (size, value)) {
            self.bytes -= old;
        }
    }
}

impl Memo {
    /// The body of the blob `sha256`, if kept.
    pub fn body(&self, sha256: &str) -> Option<Bytes> {
        let bodies = self.bodies.lock().ok()?;
        bodies.map.get(sha256).map(|(_, b)| b.clone())
    }

    /// Keeps `body`, the content of the blob `sha256` (the caller read it under that digest).
    pub fn keep_body(&self, sha256: &str, body: &Bytes) {
        if body.len() > MAX_ONE {
            return;
        }
        if let Ok(mut bodies) = self.bodies.lock() {
            bodies.put(sha256.to_string(), body.len(), body.clone(), MAX_BODY_BYTES);
        }
    }

    /// What `make` derives from the document `sha256` (of `size` bytes) given the inputs named
    /// by `what`, made once and kept while it fits. `what` must name every input of `make`
    /// other than the document's body, and be used for one type `T` only.
    pub fn derived<T, F>(&self, sha256: &str, size: usize, what: &str, make: F) -> Arc<T>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> T,
    {
        let key = format!("{sha256}|{what}");
        let found = self
            .derived
            .lock()
            .ok()
            .and_then(|d| d.map.get(&key).map(|(_, v)| v.clone()))
            .and_then(|v| v.downcast::<T>().ok());
        if let Some(v) = found {
            return v;
        }
        // Made outside the lock: two requests may both make it once; either result is right.
        let value = Arc::new(make());
        if size <= MAX_ONE
            && let Ok(mut d) = self.derived.lock()
        {
            let any: Arc<dyn Any + Send + Sync> = value.clone();
            d.put(key, size.max(1) * DERIVED_FACTOR, any, MAX_DERIVED_BYTES);
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_values_are_made_once_per_digest_and_inputs_and_memory_is_bounded() {
        let memo = Memo::default();
        let mut made = 0;
        let a = memo.derived("d1", 10, "x", || {
            made += 1;
            1u32
        });
        let b = memo.derived("d1", 10, "x", || {
            made += 1;
            2u32
        });
        assert_eq!((*a, *b, made), (1, 1, 1));
        // Another input, another digest: made anew.
        assert_eq!(*memo.derived("d1", 10, "y", || 3u32), 3);
        assert_eq!(*memo.derived("d2", 10, "x", || 4u32), 4);
        // A body too large is not kept; kept bodies stay under the bound.
        memo.keep_body("big", &Bytes::from(vec![0u8; MAX_ONE + 1]));
        assert!(memo.body("big").is_none());
        for i in 0..20 {
            memo.keep_body(&format!("b{i}"), &Bytes::from(vec![0u8; MAX_ONE]));
        }
        assert!(memo.bodies.lock().unwrap().bytes <= MAX_BODY_BYTES);
        assert!(memo.body("b19").is_some());
    }
}
