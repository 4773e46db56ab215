-- Per-package, format-specific attributes (npm dist-tags, ...).
ALTER TABLE packages ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
