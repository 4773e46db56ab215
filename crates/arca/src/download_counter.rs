//! Download counts waiting to be written (see [`DownloadCounter`]); `AppState::record_download`
//! schedules the write.

use crate::store::artifacts::FileRow;

/// Download counts waiting to be written. Counting each download with its own write would make
/// every hot GET a write transaction (SQLite has a single writer); instead counts are batched and
/// written within [`FLUSH_DELAY`], and management reads flush first so what they show is current.
#[derive(Default)]
pub struct DownloadCounter {
    /// (file id, version id) → downloads not yet written.
    pending: std::sync::Mutex<std::collections::HashMap<(String, String), i64>>,
    scheduled: std::sync::atomic::AtomicBool,
}

pub const FLUSH_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

impl DownloadCounter {
    /// Adds one download; true when the caller should schedule a flush.
    pub fn add(&self, file: &FileRow) -> bool {
        if let Ok(mut p) = self.pending.lock() {
            *p.entry((file.id.clone(), file.version_id.clone()))
                .or_default() += 1;
        }
        !self
            .scheduled
            .swap(true, std::sync::atomic::Ordering::AcqRel)
    }

    pub fn take(&self) -> Vec<(String, String, i64)> {
        self.scheduled
            .store(false, std::sync::atomic::Ordering::Release);
        match self.pending.lock() {
            Ok(mut p) => p.drain().map(|((f, v), n)| (f, v, n)).collect(),
            Err(_) => Vec::new(),
        }
    }
}
