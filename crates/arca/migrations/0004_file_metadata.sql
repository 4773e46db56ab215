-- Per-file, format-specific attributes (PyPI requires-python and core-metadata digest, yanked state...).
ALTER TABLE files ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
