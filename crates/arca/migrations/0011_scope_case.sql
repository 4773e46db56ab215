-- Scope ids (account, org, project) keep the spelling they were created with and compare
-- case-insensitively, as Harness ids do: one scope per path in any spelling, and registry lookups
-- by account in any spelling use an index.
CREATE UNIQUE INDEX scopes_path_lower ON scopes (LOWER(path));
CREATE INDEX registries_account_lower ON registries (LOWER(account), identifier);
