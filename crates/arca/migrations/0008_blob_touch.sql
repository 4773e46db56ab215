-- When a blob was last stored or referenced; the garbage collector leaves recent blobs alone.
ALTER TABLE blobs ADD COLUMN touched_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX blobs_touched ON blobs(touched_at);
CREATE INDEX oci_blobs_created ON oci_blobs(created_at);
CREATE INDEX oci_uploads_updated ON oci_uploads(updated_at);
