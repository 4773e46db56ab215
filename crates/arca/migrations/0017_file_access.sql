-- When a stored file was last served (written in batches with the download counts): what a
-- proxy's expireHours evicts its cached content by.
ALTER TABLE files ADD COLUMN accessed_at BIGINT;
