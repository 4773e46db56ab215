-- The upstream's armored OpenPGP public key of a Debian or RPM proxy: the signed files it relays
-- are verified with it, and it is the proxy's `public.key` (a proxy has no key of its own).
ALTER TABLE registries ADD COLUMN proxy_upstream_key TEXT;
