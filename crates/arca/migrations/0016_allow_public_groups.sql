-- A private registry's consent to be included by public groups (issue: membership must not widen
-- who can read a registry). Existing registries do not consent.
ALTER TABLE registries ADD COLUMN allow_public_groups BIGINT NOT NULL DEFAULT 0;
