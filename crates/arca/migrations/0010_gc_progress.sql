-- Where the garbage collector's resumable listing passes over the blob store stopped, so that a
-- large store is covered across several runs (and processes) instead of in one long one.
CREATE TABLE gc_progress (
    pass       TEXT PRIMARY KEY,
    position   TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
