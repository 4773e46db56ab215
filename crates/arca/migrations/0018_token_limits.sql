-- API tokens made over HTTP (issue 17): a token may be narrower than its user (only below
-- `scope_path`, at most `role`), may expire (`expires_at`, epoch milliseconds), and records who
-- made it (`created_by`, a user name). Existing tokens stay unlimited and never expire.
ALTER TABLE tokens ADD COLUMN scope_path TEXT;
ALTER TABLE tokens ADD COLUMN role TEXT;
ALTER TABLE tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE tokens ADD COLUMN created_by TEXT;
