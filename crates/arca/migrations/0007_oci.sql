-- OCI distribution: upload sessions, blobs present in a repository, referrers, and server secrets.

-- A chunked blob upload in progress. Its bytes live in the data directory under oci-uploads/<id>.
CREATE TABLE oci_uploads (
    id          TEXT PRIMARY KEY,
    registry_id TEXT NOT NULL,
    image       TEXT NOT NULL,
    size        BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Blobs a repository holds (uploaded or mounted), by their OCI digest (sha256: or sha512:).
CREATE TABLE oci_blobs (
    registry_id TEXT NOT NULL,
    image       TEXT NOT NULL,
    digest      TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    size        BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (registry_id, image, digest)
);
CREATE INDEX oci_blobs_sha256 ON oci_blobs(sha256);

-- Manifests that name a subject, for the Referrers API.
CREATE TABLE oci_referrers (
    registry_id TEXT NOT NULL,
    image       TEXT NOT NULL,
    subject     TEXT NOT NULL,
    digest      TEXT NOT NULL,
    descriptor  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (registry_id, image, subject, digest)
);

-- Secrets every server process of a deployment shares (the OCI token signing key).
CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
