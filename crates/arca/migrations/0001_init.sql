-- One schema for SQLite and PostgreSQL: only TEXT and BIGINT columns, ids are UUID strings,
-- timestamps are epoch milliseconds, flags are 0/1, lists are JSON text.

CREATE TABLE scopes (
    id          TEXT PRIMARY KEY,
    parent_id   TEXT REFERENCES scopes(id),
    path        TEXT NOT NULL UNIQUE,
    depth       BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX scopes_parent ON scopes(parent_id);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    is_admin      BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL
);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX tokens_user ON tokens(user_id);

CREATE TABLE role_bindings (
    user_id   TEXT NOT NULL REFERENCES users(id),
    scope_id  TEXT NOT NULL REFERENCES scopes(id),
    role      TEXT NOT NULL,
    PRIMARY KEY (user_id, scope_id)
);

CREATE TABLE registries (
    id                      TEXT PRIMARY KEY,
    account                 TEXT NOT NULL,
    scope_id                TEXT NOT NULL REFERENCES scopes(id),
    identifier              TEXT NOT NULL,
    package_type            TEXT NOT NULL,
    kind                    TEXT NOT NULL,
    description             TEXT,
    labels                  TEXT NOT NULL DEFAULT '[]',
    allowed_patterns        TEXT NOT NULL DEFAULT '[]',
    blocked_patterns        TEXT NOT NULL DEFAULT '[]',
    cleanup_policies        TEXT NOT NULL DEFAULT '[]',
    scanners                TEXT NOT NULL DEFAULT '[]',
    anonymous               BIGINT NOT NULL DEFAULT 0,
    delete_allowed          BIGINT NOT NULL DEFAULT 0,
    reupload                TEXT NOT NULL DEFAULT 'OVERRIDE',
    proxy_url               TEXT,
    proxy_username          TEXT,
    proxy_secret            TEXT,
    proxy_caching           BIGINT NOT NULL DEFAULT 0,
    proxy_offline           BIGINT NOT NULL DEFAULT 0,
    proxy_expire_hours      BIGINT NOT NULL DEFAULT 0,
    proxy_metadata_interval BIGINT NOT NULL DEFAULT 7200,
    proxy_source            TEXT,
    proxy_harness_auth      TEXT,
    cache_of                TEXT,
    allow_remote_proxying   BIGINT NOT NULL DEFAULT 0,
    deployment_registry_id  TEXT,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    UNIQUE (account, identifier)
);
CREATE INDEX registries_scope ON registries(scope_id, identifier);

-- Ordered members: upstream proxies of a hosted registry, or members of a group.
CREATE TABLE registry_members (
    registry_id  TEXT NOT NULL REFERENCES registries(id),
    position     BIGINT NOT NULL,
    member_id    TEXT NOT NULL REFERENCES registries(id),
    PRIMARY KEY (registry_id, position)
);
CREATE INDEX registry_members_member ON registry_members(member_id);

-- Content-addressed blobs, deduplicated across registries.
CREATE TABLE blobs (
    sha256      TEXT PRIMARY KEY,
    size        BIGINT NOT NULL,
    md5         TEXT NOT NULL,
    sha1        TEXT NOT NULL,
    sha512      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE packages (
    id                  TEXT PRIMARY KEY,
    registry_id         TEXT NOT NULL REFERENCES registries(id),
    name                TEXT NOT NULL,
    labels              TEXT NOT NULL DEFAULT '[]',
    latest_version      TEXT,
    origin_registry_id  TEXT,
    download_count      BIGINT NOT NULL DEFAULT 0,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    UNIQUE (registry_id, name)
);
CREATE INDEX packages_registry_updated ON packages(registry_id, updated_at);

CREATE TABLE versions (
    id              TEXT PRIMARY KEY,
    package_id      TEXT NOT NULL REFERENCES packages(id),
    registry_id     TEXT NOT NULL REFERENCES registries(id),
    version         TEXT NOT NULL,
    size            BIGINT NOT NULL DEFAULT 0,
    file_count      BIGINT NOT NULL DEFAULT 0,
    metadata        TEXT NOT NULL DEFAULT '{}',
    download_count  BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (package_id, version)
);
CREATE INDEX versions_registry ON versions(registry_id);

CREATE TABLE files (
    id              TEXT PRIMARY KEY,
    version_id      TEXT NOT NULL REFERENCES versions(id),
    registry_id     TEXT NOT NULL REFERENCES registries(id),
    path            TEXT NOT NULL,
    name            TEXT NOT NULL,
    size            BIGINT NOT NULL,
    sha256          TEXT NOT NULL REFERENCES blobs(sha256),
    content_type    TEXT,
    download_count  BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (registry_id, path)
);
CREATE INDEX files_version ON files(version_id, name);
CREATE INDEX files_sha256 ON files(sha256);
