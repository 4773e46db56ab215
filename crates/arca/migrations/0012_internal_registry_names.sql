-- Registries the server makes get identifiers no user name can take ('~' is in no dialect's names):
-- a cache '~cache~<proxy id>', a trash '~trash~<scope id>' (one per scope from now on; the server
-- gives scopes without one theirs at start). Trash entries name their original registry by id:
-- package '<identifier>/<package>' becomes '<registry id>/<package>', file '<identifier>/<path>'
-- becomes '<registry id>/<path>'. Entries of registries deleted since keep their old name.
UPDATE files SET path = (
        SELECT p.origin_registry_id FROM versions v JOIN packages p ON p.id = v.package_id
        WHERE v.id = files.version_id)
    || SUBSTR(path, LENGTH((
        SELECT o.identifier FROM versions v JOIN packages p ON p.id = v.package_id
        JOIN registries o ON o.id = p.origin_registry_id WHERE v.id = files.version_id)) + 1)
WHERE registry_id IN (SELECT id FROM registries WHERE kind = 'TRASH')
  AND EXISTS (SELECT 1 FROM versions v JOIN packages p ON p.id = v.package_id
              JOIN registries o ON o.id = p.origin_registry_id WHERE v.id = files.version_id);
UPDATE packages SET name = origin_registry_id
    || SUBSTR(name, LENGTH((SELECT o.identifier FROM registries o WHERE o.id = packages.origin_registry_id)) + 1)
WHERE registry_id IN (SELECT id FROM registries WHERE kind = 'TRASH')
  AND EXISTS (SELECT 1 FROM registries o WHERE o.id = packages.origin_registry_id);
UPDATE registries SET identifier = '~trash~' || scope_id WHERE kind = 'TRASH';
UPDATE registries SET identifier = '~cache~' || cache_of WHERE kind = 'CACHE' AND cache_of IS NOT NULL;
