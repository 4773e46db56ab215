-- Bumped by every write that changes what a package's generated documents (packument, simple page,
-- index file) say; caches of those documents are valid while the revisions they were built from are.
ALTER TABLE packages ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
