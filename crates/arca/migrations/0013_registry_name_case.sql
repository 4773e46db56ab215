-- Registry names (GitFlic names may have upper case) keep their spelling and compare
-- case-insensitively, like scope ids: one name per account in any spelling.
DROP INDEX registries_account_lower;
CREATE UNIQUE INDEX registries_account_name_lower ON registries (LOWER(account), LOWER(identifier));
