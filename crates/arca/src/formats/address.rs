//! Native URL addresses: the shorthand `/pkg/<account>/<registry>/<format>/...` and the scoped
//! `/pkg/<scope path>/-/<registry>/<format>/...` (README, "Where names are unique").

use super::all;

/// Where a native URL points: `(scope, registry, format, rest)`, where `scope` is the account of
/// the shorthand `/pkg/<account>/<registry>/<format>/...` (`scoped` false) or the scope path of
/// `/pkg/<scope path>/-/<registry>/<format>/...` (`scoped` true; GitLab uses `/-/` the same way).
pub(crate) struct NativeAddress<'a> {
    pub scope: String,
    pub scoped: bool,
    pub registry: &'a str,
    pub format: &'a str,
    pub rest: &'a str,
}

/// Reads a native URL. `-` is no scope id, registry name or format, so a `-` second or third is
/// the scoped form's separator; fourth, it is either that (after a project) or the first segment
/// of a shorthand URL's rest (npm's `/-/` routes): a known format third says the latter, and
/// [`native_address_scoped`] reads the other way when that finds no registry.
pub(crate) fn native_address(raw: &str) -> Option<NativeAddress<'_>> {
    let segs: Vec<&str> = raw.splitn(4, '/').collect();
    let dash3 = raw.split('/').nth(3) == Some("-");
    let known_format = segs.get(2).is_some_and(|f| all().get(f).is_some());
    parse_native(raw, dash3 && known_format)
}

/// [`native_address`] of a URL whose fourth segment is `-`, read as the scoped form.
pub(crate) fn native_address_scoped(raw: &str) -> Option<NativeAddress<'_>> {
    (raw.split('/').nth(3) == Some("-"))
        .then(|| parse_native(raw, false))
        .flatten()
        .filter(|a| a.scoped)
}

fn parse_native(raw: &str, dash3_is_rest: bool) -> Option<NativeAddress<'_>> {
    let segs: Vec<&str> = raw.splitn(7, '/').collect();
    let (scope_len, scoped) = match segs.iter().take(4).position(|s| *s == "-") {
        Some(3) if dash3_is_rest => (1, false),
        Some(n @ 1..=3) => (n, true),
        Some(_) => return None,
        None => (1, false),
    };
    let at = if scoped { scope_len + 1 } else { 1 };
    let registry = *segs.get(at)?;
    let format = *segs.get(at + 1)?;
    if registry.is_empty() || format.is_empty() || segs[..scope_len].iter().any(|s| s.is_empty()) {
        return None;
    }
    // The rest: everything after `<format>/` of the raw path.
    let head: usize = segs[..at + 2].iter().map(|s| s.len() + 1).sum();
    Some(NativeAddress {
        scope: segs[..scope_len].join("/"),
        scoped,
        registry,
        format,
        rest: raw.get(head..).unwrap_or(""),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn native_addresses_shorthand_and_scoped() {
        let read = |a: Option<super::NativeAddress<'_>>| {
            a.map(|a| {
                (
                    a.scope,
                    a.scoped,
                    a.registry.to_string(),
                    a.format.to_string(),
                    a.rest.to_string(),
                )
            })
        };
        let t = |s: &str, scoped: bool, r: &str, f: &str, rest: &str| {
            Some((
                s.to_string(),
                scoped,
                r.to_string(),
                f.to_string(),
                rest.to_string(),
            ))
        };
        assert_eq!(
            read(super::native_address("acct/reg/npm/-/user/x")),
            t("acct", false, "reg", "npm", "-/user/x")
        );
        assert_eq!(
            read(super::native_address("acct/org/-/reg/generic/a/b")),
            t("acct/org", true, "reg", "generic", "a/b")
        );
        assert_eq!(
            read(super::native_address("acct/-/reg/generic/")),
            t("acct", true, "reg", "generic", "")
        );
        assert_eq!(
            read(super::native_address("acct/org/proj/-/reg/generic/x")),
            t("acct/org/proj", true, "reg", "generic", "x")
        );
        // A project named like a format: both readings are offered.
        assert_eq!(
            read(super::native_address("acct/org/npm/-/reg/generic/x")),
            t("acct", false, "org", "npm", "-/reg/generic/x")
        );
        assert_eq!(
            read(super::native_address_scoped("acct/org/npm/-/reg/generic/x")),
            t("acct/org/npm", true, "reg", "generic", "x")
        );
        assert_eq!(read(super::native_address("-/reg/generic/x")), None);
        assert_eq!(read(super::native_address("acct/reg")), None);
    }
}
