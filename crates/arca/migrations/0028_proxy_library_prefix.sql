-- Docker Hub's rule for OCI proxies: single-segment image names live under `library/` upstream.
-- NULL: the default of the proxy's source (on for the Harness source `Dockerhub`).
ALTER TABLE registries ADD COLUMN proxy_library_prefix BIGINT;
