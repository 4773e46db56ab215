-- Each signing registry's OpenPGP key (Debian Release files, RPM repomd.xml), armored.
CREATE TABLE registry_keys (
    registry_id TEXT PRIMARY KEY,
    secret_key  TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
