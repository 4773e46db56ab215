//! npm's merge of dist-tags across the members of a read (a group's members in order, a hosted
//! registry and its upstreams): `latest` is the highest `latest` among the members that define
//! one, so that member order never changes what `npm install p` gets (a deliberate choice, see
//! issue 15); every other tag comes from the first member defining it; a tag whose version is not
//! in the merged set is dropped. Versions themselves are unioned by the caller, first member wins.

use serde_json::{Map, Value};

/// The merged dist-tags of `members` (each member's own tags, in member order); `known` says
/// whether a version is in the merged set.
pub(super) fn merge_tags(
    members: &[Map<String, Value>],
    known: impl Fn(&str) -> bool,
) -> Map<String, Value> {
    let mut out = Map::new();
    for tags in members {
        for (tag, v) in tags {
            if tag == "latest" || out.contains_key(tag) {
                continue;
            }
            if v.as_str().is_some_and(&known) {
                out.insert(tag.clone(), v.clone());
            }
        }
    }
    let latest = members
        .iter()
        .filter_map(|t| t.get("latest").and_then(Value::as_str))
        .filter(|v| known(v))
        .fold(None::<&str>, |best, v| match best {
            Some(b) if !higher(v, b) => Some(b),
            _ => Some(v),
        });
    if let Some(l) = latest {
        out.insert("latest".into(), Value::String(l.to_string()));
    }
    out
}

/// Whether `a` is a higher version than `b` (SemVer; a version that does not parse ranks below
/// one that does, and two that do not keep the first).
fn higher(a: &str, b: &str) -> bool {
    match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(x), Ok(y)) => x > y,
        (Ok(_), Err(_)) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tags(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn latest_is_the_highest_and_order_does_not_matter() {
        let a = tags(json!({"latest": "1.0.0", "beta": "2.0.0-beta.1"}));
        let b = tags(json!({"latest": "2.0.0", "beta": "3.0.0-beta.1", "next": "9.9.9"}));
        let known = |v: &str| ["1.0.0", "2.0.0", "2.0.0-beta.1", "3.0.0-beta.1"].contains(&v);
        let ab = merge_tags(&[a.clone(), b.clone()], known);
        let ba = merge_tags(&[b, a], known);
        assert_eq!(ab["latest"], "2.0.0");
        assert_eq!(ba["latest"], "2.0.0");
        // Other tags: the first member defining them.
        assert_eq!(ab["beta"], "2.0.0-beta.1");
        assert_eq!(ba["beta"], "3.0.0-beta.1");
        // A tag whose version is in no member is dropped.
        assert!(!ab.contains_key("next"));
    }

    #[test]
    fn a_latest_outside_the_merged_set_does_not_count() {
        let a = tags(json!({"latest": "5.0.0"}));
        let b = tags(json!({"latest": "1.2.0"}));
        let m = merge_tags(&[a, b], |v| v == "1.2.0");
        assert_eq!(m["latest"], "1.2.0");
        assert!(merge_tags(&[], |_| true).is_empty());
    }
}
