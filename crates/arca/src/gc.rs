//! Blob garbage collection, safe to run while servers take uploads, on any number of processes.
//!
//! One collector works at a time across every process sharing the metadata store: a run takes a
//! lease row (`leases`) and renews it after every batch; a run that finds the lease held by a
//! live collector does nothing (`Report::busy`), and one whose holder died takes it over once it
//! expires ([`LEASE`]). The listing pass resumes from its recorded position, so a collection cut
//! short by a crash is resumed by the next run on any node. On object storage the quarantine is a
//! copy and a delete rather than an atomic rename, which is what makes a single collector matter.
//!
//! Reference counting lives in the metadata store: a blob is garbage when no file row (of any
//! registry, the trash can included) and no OCI repository link points at it, and it has not been
//! stored or referenced for a grace period (`blobs.touched_at`, which every write refreshes).
//! Collection of one blob:
//! 1. quarantine the content (rename it out of reach; a concurrent upload of the same content
//!    stores a fresh copy),
//! 2. forget the row, only if it is still unreferenced and untouched (one conditional DELETE),
//! 3. if the row was forgotten and no writer recorded the blob again meanwhile, discard the
//!    quarantined copy; otherwise put it back.
//!
//! Writers store content first and record it afterwards, so a writer racing with step 1 either
//! refreshed `touched_at` before step 2 (which then keeps the row) or records the blob after it
//! (which step 3 sees). Expired OCI links (uploaded blobs no manifest took up), abandoned
//! upload sessions and cached proxy files not fetched for the proxy's `expireHours` (last access
//! recorded in batches with the download counts) are removed first, so their blobs become
//! collectable.
//!
//! Content the metadata store never learnt about (an upload refused after its bytes were stored,
//! a crash between the rename and the record) has no row to count from: a *listing pass* walks
//! the blob store itself in SHA-256 order, at most [`LISTED_PER_RUN`] blobs a run, resuming where
//! the previous run (of any process) stopped, and collects what no row knows and has not been
//! written for the grace period, through the same quarantine steps. Temporary files of
//! interrupted writes and session files without a session row go the same way.

use std::time::Duration;

use crate::blob::BlobStore;
use crate::error::ApiResult;
use crate::model::now_ms;
use crate::store::Db;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub blobs: u64,
    pub bytes: u64,
    pub links: u64,
    pub uploads: u64,
    /// Blobs no metadata row knew, found by the listing pass, and their bytes.
    pub orphans: u64,
    pub orphan_bytes: u64,
    /// Leftovers of interrupted writes (temporary and session files) and their bytes.
    pub leftovers: u64,
    pub leftover_bytes: u64,
    /// Cached files of proxies evicted by `expireHours`.
    pub expired: u64,
    /// Another collector held the cluster-wide lease: this run did nothing.
    pub busy: bool,
}

/// Purges the versions deleted more than `retention_days` days ago from every trash (the trash
/// retention, `ARCA_TRASH_RETENTION_DAYS`); their blobs are then collected by [`collect`] once
/// nothing else refers to them. Returns how many versions were purged.
pub async fn purge_trash(db: &Db, retention_days: u64) -> ApiResult<u64> {
    let cutoff = now_ms().saturating_sub((retention_days as i64).saturating_mul(86_400_000));
    let mut purged = 0;
    for (package, version) in db.trashed_before(cutoff).await? {
        db.purge_version(&package, &version).await?;
        purged += 1;
    }
    Ok(purged)
}

/// How many stored blobs one run's listing pass looks at (one indexed lookup each).
pub const LISTED_PER_RUN: usize = 10_000;

/// How long a collector's lease lasts without renewal; it renews it after every batch.
pub const LEASE: Duration = Duration::from_secs(600);
const LEASE_NAME: &str = "gc";

/// A collector's hold on the cluster-wide lease.
struct Lease<'a> {
    db: &'a Db,
    holder: String,
}

impl Lease<'_> {
    /// Renews the lease; false when it was lost (expired and taken over by another collector).
    async fn renew(&self) -> ApiResult<bool> {
        let until = now_ms() + LEASE.as_millis() as i64;
        Ok(self
            .db
            .lease_acquire(LEASE_NAME, &self.holder, until)
            .await?)
    }
}

/// Runs one collection unless another collector (of any process sharing the metadata store)
/// holds the lease, in which case the report says `busy` and nothing was done.
pub async fn collect(db: &Db, blobs: &dyn BlobStore, grace: Duration) -> ApiResult<Report> {
    let lease = Lease {
        db,
        holder: uuid::Uuid::new_v4().to_string(),
    };
    if !lease.renew().await? {
        return Ok(Report {
            busy: true,
            ..Report::default()
        });
    }
    let result = collect_leased(db, blobs, grace, &lease).await;
    if let Err(e) = db.lease_release(LEASE_NAME, &lease.holder).await {
        tracing::warn!(error = %e, "releasing the collector's lease failed (it expires by itself)");
    }
    result
}

async fn collect_leased(
    db: &Db,
    blobs: &dyn BlobStore,
    grace: Duration,
    lease: &Lease<'_>,
) -> ApiResult<Report> {
    let cutoff = now_ms() - grace.as_millis() as i64;
    let mut report = Report {
        links: db.expire_oci_links(cutoff).await?,
        ..Report::default()
    };
    // Leases of holders that died long ago (a live holder renews well within an hour).
    db.leases_expire(now_ms() - 3_600_000).await?;
    // Cached upstream content nobody fetched for its proxy's expireHours: forgotten here, its
    // blob then collected below like any other unreferenced one (shared blobs stay referenced).
    for file in db.expired_cache_files(now_ms()).await? {
        db.delete_file(&file).await?;
        report.expired += 1;
    }
    for id in db.expire_uploads(cutoff).await? {
        blobs.session_abort(&id).await?;
        report.uploads += 1;
    }
    let (files, bytes) = blobs.sweep_temporaries(cutoff).await?;
    report.leftovers += files;
    report.leftover_bytes += bytes;
    for s in blobs.list_sessions().await? {
        if s.modified_ms < cutoff && !db.upload_known(&s.key).await? {
            blobs.session_abort(&s.key).await?;
            report.leftovers += 1;
            report.leftover_bytes += s.size;
        }
    }
    loop {
        let batch = db.gc_candidates(cutoff, 500).await?;
        if batch.is_empty() || !lease.renew().await? {
            break;
        }
        let mut progressed = false;
        for (sha256, size) in batch {
            let quarantined = blobs.quarantine(&sha256).await?;
            if db.gc_forget(&sha256, cutoff).await? {
                progressed = true;
                if quarantined && !db.blob_known(&sha256).await? {
                    blobs.discard(&sha256).await?;
                    report.blobs += 1;
                    report.bytes += size as u64;
                } else if quarantined {
                    blobs.restore(&sha256).await?;
                }
            } else if quarantined {
                blobs.restore(&sha256).await?;
            }
        }
        if !progressed {
            break;
        }
    }
    collect_orphans(db, blobs, cutoff, &mut report, lease).await?;
    Ok(report)
}

/// The listing pass (see the module documentation).
async fn collect_orphans(
    db: &Db,
    blobs: &dyn BlobStore,
    cutoff: i64,
    report: &mut Report,
    lease: &Lease<'_>,
) -> ApiResult<()> {
    const PASS: &str = "orphans";
    let mut cursor = db.gc_cursor(PASS).await?;
    let mut listed = 0;
    while listed < LISTED_PER_RUN {
        if !lease.renew().await? {
            // Taken over: the other collector goes on from the recorded position.
            return Ok(());
        }
        let page = blobs.list_blobs(cursor.as_deref(), 1000).await?;
        let Some(last) = page.last() else {
            // The whole store was walked: the next run starts over.
            cursor = None;
            break;
        };
        cursor = Some(last.key.clone());
        listed += page.len();
        for b in page {
            if b.modified_ms >= cutoff || db.blob_known(&b.key).await? {
                continue;
            }
            if blobs.quarantine(&b.key).await? {
                // A writer that recorded it meanwhile keeps it.
                if db.blob_known(&b.key).await? {
                    blobs.restore(&b.key).await?;
                } else {
                    blobs.discard(&b.key).await?;
                    report.orphans += 1;
                    report.orphan_bytes += b.size;
                }
            }
        }
    }
    Ok(db.set_gc_cursor(PASS, cursor.as_deref()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::state;

    #[tokio::test]
    async fn one_collector_at_a_time_and_a_dead_ones_lease_expires() {
        let t = state().await;
        let s = &t.state;
        let until = now_ms() + 60_000;
        // Another process's collector holds the lease: this run does nothing.
        assert!(s.db.lease_acquire("gc", "other", until).await.unwrap());
        let r = collect(&s.db, s.blobs.as_ref(), Duration::from_secs(0))
            .await
            .unwrap();
        assert!(r.busy);
        // The holder renews it; nobody else takes it.
        assert!(s.db.lease_acquire("gc", "other", until).await.unwrap());
        assert!(!s.db.lease_acquire("gc", "third", until).await.unwrap());
        // Released (or expired): the next run collects, and gives the lease back when done.
        s.db.lease_release("gc", "other").await.unwrap();
        let r = collect(&s.db, s.blobs.as_ref(), Duration::from_secs(0))
            .await
            .unwrap();
        assert!(!r.busy);
        assert!(
            s.db.lease_acquire("gc", "dead", now_ms() - 1)
                .await
                .unwrap()
        );
        assert!(
            s.db.lease_acquire("gc", "next", until).await.unwrap(),
            "an expired lease is taken over"
        );
    }
}
