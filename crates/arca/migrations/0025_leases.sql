-- Leases: work that one process at a time does across every server sharing the metadata store
-- (the garbage collector; the upstream fetch of one proxied file). The holder keeps its row until
-- `expires_at` (epoch ms), renewing it while it works; another takes it over only once it has
-- expired, so a holder that died blocks nobody for long.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
