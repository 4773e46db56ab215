-- Running total of a package's version sizes, so registry totals sum packages, not versions.
ALTER TABLE packages ADD COLUMN size BIGINT NOT NULL DEFAULT 0;
UPDATE packages SET size = (SELECT COALESCE(SUM(v.size), 0) FROM versions v WHERE v.package_id = packages.id);
