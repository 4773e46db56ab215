-- Debian proxies: the distributions a proxy serves through a group (JSON list of names); NULL or
-- an empty list: any distribution no hosted member of the group holds.
ALTER TABLE registries ADD COLUMN proxy_distributions TEXT;
