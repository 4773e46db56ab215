-- One garbage collector at a time across every server sharing the metadata store: a collector
-- holds the lease row until `expires_at` (epoch ms), renewing it while it works; another takes it
-- over only once it has expired (a collector that died does not block collection for long).
CREATE TABLE gc_lease (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
