-- Secrets that upstream proxies refer to (Harness `secretIdentifier` + `secretSpacePath`): set by
-- admins of the space, resolved when a proxy talks to its upstream, never returned by any route.
CREATE TABLE secrets (
    scope_path TEXT NOT NULL,
    identifier TEXT NOT NULL,
    value      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (scope_path, identifier)
);
