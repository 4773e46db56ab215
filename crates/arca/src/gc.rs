//! Blob garbage collection, safe to run while servers take uploads, on any number of processes.
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
//! (which step 3 sees). Expired OCI links (uploaded blobs no manifest took up) and abandoned
//! upload sessions are removed first, so their blobs become collectable.

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
}

pub async fn collect(db: &Db, blobs: &dyn BlobStore, grace: Duration) -> ApiResult<Report> {
    let cutoff = now_ms() - grace.as_millis() as i64;
    let mut report = Report {
        links: db.expire_oci_links(cutoff).await?,
        ..Report::default()
    };
    for id in db.expire_uploads(cutoff).await? {
        blobs.session_abort(&id).await?;
        report.uploads += 1;
    }
    loop {
        let batch = db.gc_candidates(cutoff, 500).await?;
        if batch.is_empty() {
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
    Ok(report)
}
