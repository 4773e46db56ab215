-- How long a proxy believes an upstream 404/410 (Harness `negativeCacheTTL`, seconds); NULL: the
-- server's `proxy_negative_ttl_secs`.
ALTER TABLE registries ADD COLUMN proxy_negative_ttl BIGINT;
