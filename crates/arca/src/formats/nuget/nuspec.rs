//! Reading a `.nuspec` (the manifest at the root of every `.nupkg`).

use std::collections::BTreeMap;

use quick_xml::events::{BytesStart, Event};
use serde_json::{Value, json};

use super::version::{NuVersion, normalize_range};

/// What the registry keeps from a manifest.
#[derive(Debug)]
pub struct Nuspec {
    pub id: String,
    pub version: NuVersion,
    /// Simple text fields of `<metadata>` (description, authors, title, tags, ...).
    pub fields: BTreeMap<String, String>,
    pub license_expression: Option<String>,
    /// `[{"targetFramework": .., "dependencies": [{"id", "range"}]}]`
    pub dependency_groups: Vec<Value>,
    pub package_types: Vec<String>,
}

/// NuGet ids: letters, digits and `_`, separated by single `.`, `-` or `_`, at most 100 characters.
pub fn valid_id(id: &str) -> bool {
    id.len() <= 100
        && !id.is_empty()
        && id
            .split(['.', '-'])
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

fn attr(e: &BytesStart, name: &str) -> Result<Option<String>, String> {
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        if a.key.local_name().as_ref() == name.as_bytes() {
            return a
                .unescape_value()
                .map(|v| Some(v.trim().to_string()))
                .map_err(|e| e.to_string());
        }
    }
    Ok(None)
}

/// Parses a manifest, checking what NuGet itself would refuse: an id, a valid version, valid
/// dependency ids and ranges.
pub fn parse(xml: &[u8]) -> Result<Nuspec, String> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut path: Vec<String> = Vec::new();
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let mut license_type: Option<String> = None;
    let mut groups: Vec<Value> = Vec::new();
    let mut ungrouped: Vec<Value> = Vec::new();
    let mut package_types: Vec<String> = Vec::new();
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("malformed nuspec: {e}"))?;
        let (start, empty) = match &event {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            _ => (None, false),
        };
        if let Some(e) = start {
            let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
            let parent = path.join("/");
            match (parent.as_str(), name.as_str()) {
                ("package/metadata/dependencies", "group") => {
                    groups.push(json!({"targetFramework": attr(&e, "targetFramework")?, "dependencies": []}));
                }
                ("package/metadata/dependencies", "dependency")
                | ("package/metadata/dependencies/group", "dependency") => {
                    let id = attr(&e, "id")?.unwrap_or_default();
                    if !valid_id(&id) {
                        return Err(format!("dependency id '{id}' is not a valid package id"));
                    }
                    let raw = attr(&e, "version")?.unwrap_or_default();
                    let range = normalize_range(&raw).ok_or_else(|| {
                        format!("dependency '{id}' has an invalid version range '{raw}'")
                    })?;
                    let dep = json!({"id": id, "range": range});
                    if parent.ends_with("group") {
                        if let Some(g) = groups.last_mut()
                            && let Some(list) = g["dependencies"].as_array_mut()
                        {
                            list.push(dep);
                        }
                    } else {
                        ungrouped.push(dep);
                    }
                }
                ("package/metadata/packageTypes", "packageType") => {
                    if let Some(n) = attr(&e, "name")? {
                        package_types.push(n);
                    }
                }
                ("package/metadata", "license") => license_type = attr(&e, "type")?,
                _ => {}
            }
            if !empty {
                path.push(name);
            }
            buf.clear();
            continue;
        }
        match event {
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) if path.len() == 3 && path[0] == "package" && path[1] == "metadata" => {
                let v = t.unescape().map_err(|e| format!("malformed nuspec: {e}"))?;
                let v = v.trim();
                if !v.is_empty() {
                    fields.insert(path[2].clone(), v.chars().take(64 * 1024).collect());
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !path.is_empty() {
        return Err("malformed nuspec: unclosed elements".into());
    }
    let id = fields.remove("id").ok_or("the nuspec has no <id>")?;
    if !valid_id(&id) {
        return Err(format!("'{id}' is not a valid package id"));
    }
    let raw_version = fields
        .remove("version")
        .ok_or("the nuspec has no <version>")?;
    let version = NuVersion::parse(&raw_version)
        .ok_or_else(|| format!("'{raw_version}' is not a valid NuGet version"))?;
    if !ungrouped.is_empty() {
        groups.insert(
            0,
            json!({"targetFramework": null, "dependencies": ungrouped}),
        );
    }
    let license_expression = match license_type.as_deref() {
        Some("expression") => fields.get("license").cloned(),
        _ => None,
    };
    Ok(Nuspec {
        id,
        version,
        fields,
        license_expression,
        dependency_groups: groups,
        package_types,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_manifest() {
        let xml = br#"<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">
  <metadata>
    <id>Acme.App</id><version>1.0</version><authors>Acme &amp; Co</authors>
    <description>An app</description>
    <license type="expression">MIT</license>
    <dependencies>
      <group targetFramework="net45"><dependency id="Acme.Lib" version="1.0" /></group>
      <group targetFramework="netstandard2.0" />
    </dependencies>
  </metadata>
</package>"#;
        let n = parse(xml).unwrap();
        assert_eq!(
            (n.id.as_str(), n.version.normalized()),
            ("Acme.App", "1.0.0".into())
        );
        assert_eq!(n.fields["authors"], "Acme & Co");
        assert_eq!(n.license_expression.as_deref(), Some("MIT"));
        assert_eq!(n.dependency_groups.len(), 2);
        assert_eq!(
            n.dependency_groups[0]["dependencies"][0]["range"],
            "[1.0.0, )"
        );
        assert_eq!(n.dependency_groups[1]["targetFramework"], "netstandard2.0");
    }

    #[test]
    fn refuses_bad_manifests() {
        for bad in [
            &b"<package><metadata><id>x</id></metadata></package>"[..],
            b"<package><metadata><id>a b</id><version>1.0</version></metadata></package>",
            b"<package><metadata><id>x</id><version>1.x</version></metadata></package>",
            b"<package><metadata><id>x</id><version>1.0</version>",
            b"<package><metadata><id>x</id><version>1.0</version><dependencies><dependency id='y' version='[1,' /></dependencies></metadata></package>",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(valid_id("Acme.Hello_World-2") && !valid_id("a..b") && !valid_id(".a"));
    }
}
