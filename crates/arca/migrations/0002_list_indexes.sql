-- Every list query filters by its parent and sorts by one column: give each sort an index to walk,
-- so paging stays an index range scan at millions of rows.
CREATE INDEX packages_registry_created ON packages(registry_id, created_at);
CREATE INDEX packages_registry_downloads ON packages(registry_id, download_count);
CREATE INDEX versions_package_created ON versions(package_id, created_at);
CREATE INDEX versions_package_updated ON versions(package_id, updated_at);
CREATE INDEX files_version_created ON files(version_id, created_at);
CREATE INDEX registries_scope_created ON registries(scope_id, created_at);
