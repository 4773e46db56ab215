-- Metadata a proxy fetched from its upstream (a PyPI project page, an npm packument): the body
-- lives in the blob store; the validators revalidate it once it is older than the proxy's
-- metadataRetrievalIntervalSeconds, and it is served stale while the upstream fails.
CREATE TABLE proxy_documents (
    registry_id   TEXT NOT NULL REFERENCES registries(id) ON DELETE CASCADE,
    doc_key       TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    content_type  TEXT,
    etag          TEXT,
    last_modified TEXT,
    url           TEXT NOT NULL,
    fetched_at    BIGINT NOT NULL,
    PRIMARY KEY (registry_id, doc_key)
);
CREATE INDEX proxy_documents_sha256 ON proxy_documents (sha256);
