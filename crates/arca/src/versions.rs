//! Version order per package type: which version of a package is the newest (`latestVersion` in
//! both management dialects, `<latest>` in Maven metadata). Each ecosystem orders versions its own
//! way (`3.12.0` is newer than Debian's `debian` alias under Maven's rules, `1.0.0-rc1` older than
//! `1.0.0` everywhere semver-like); a type without a known order (generic files, images) keeps
//! upload order, and so does any version that its ecosystem's parser refuses.

use std::cmp::Ordering;
use std::str::FromStr;

use crate::model::PackageType;

/// Compares two versions of a package of type `t`; `None` when the type has no order or a
/// version does not parse (callers fall back to upload order).
pub fn compare(t: PackageType, a: &str, b: &str) -> Option<Ordering> {
    match t {
        PackageType::Maven => Some(maven(a, b)),
        PackageType::Python => {
            let (x, y) = (
                pep440_rs::Version::from_str(a).ok()?,
                pep440_rs::Version::from_str(b).ok()?,
            );
            Some(x.cmp(&y))
        }
        PackageType::Npm | PackageType::Cargo | PackageType::Helm => {
            let (x, y) = (
                semver::Version::parse(a).ok()?,
                semver::Version::parse(b).ok()?,
            );
            Some(x.cmp_precedence(&y))
        }
        PackageType::Nuget | PackageType::Composer | PackageType::Cran | PackageType::Opm => {
            dotted(a, b)
        }
        PackageType::Debian => Some(debian(a, b)),
        PackageType::Docker | PackageType::Generic | PackageType::Rpm => None,
    }
}

/// The newest of `versions` (listed oldest upload first): the maximum by [`compare`], the later
/// upload where the order cannot tell.
pub fn newest<'a>(t: PackageType, versions: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    versions
        .into_iter()
        .reduce(|best, v| match compare(t, v, best) {
            Some(Ordering::Less) => best,
            _ => v,
        })
}

/// Dotted numeric versions with an optional `-prerelease` (NuGet's `1.0.0.1-beta`, Composer's
/// `1.2.3.0`), compared number by number (missing numbers are 0), a release after its
/// prereleases. A purely numeric tail after `-` is part of the release (CRAN's `1.2-3` is 1.2.3).
/// Build metadata after `+` is ignored.
fn dotted(a: &str, b: &str) -> Option<Ordering> {
    fn split(v: &str) -> Option<(Vec<u64>, Option<&str>)> {
        let v = v.split('+').next().unwrap_or(v);
        let v = v.strip_prefix(['v', 'V']).unwrap_or(v);
        let (release, pre) = match v.split_once('-') {
            // `1.2-3` (CRAN): a numeric tail is part of the release.
            Some((r, p))
                if !p.is_empty()
                    && p.bytes()
                        .all(|c| c.is_ascii_digit() || c == b'.' || c == b'-') =>
            {
                return Some((
                    r.split('.')
                        .chain(p.split(['.', '-']))
                        .map(|n| n.parse().ok())
                        .collect::<Option<_>>()?,
                    None,
                ));
            }
            Some((r, p)) => (r, Some(p)),
            None => (v, None),
        };
        let nums = release
            .split('.')
            .map(|n| n.parse().ok())
            .collect::<Option<Vec<u64>>>()?;
        Some((nums, pre))
    }
    let (mut x, px) = split(a)?;
    let (mut y, py) = split(b)?;
    let len = x.len().max(y.len());
    x.resize(len, 0);
    y.resize(len, 0);
    Some(x.cmp(&y).then_with(|| match (px, py) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(p), Some(q)) => {
            let (pp, qq): (Vec<&str>, Vec<&str>) = (p.split('.').collect(), q.split('.').collect());
            for (i, j) in pp.iter().zip(&qq) {
                let o = match (i.parse::<u64>(), j.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    _ => i.to_ascii_lowercase().cmp(&j.to_ascii_lowercase()),
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
            pp.len().cmp(&qq.len())
        }
    }))
}

/// dpkg's order (`[epoch:]upstream[-revision]`, `~` sorting before everything), as
/// `dpkg --compare-versions` implements it (`verrevcmp` in dpkg's lib/dpkg/version.c).
pub fn debian(a: &str, b: &str) -> Ordering {
    fn parts(v: &str) -> (u64, &str, &str) {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) => (e.parse().unwrap_or(0), r),
            None => (0, v),
        };
        match rest.rsplit_once('-') {
            Some((u, r)) => (epoch, u, r),
            None => (epoch, rest, ""),
        }
    }
    fn order(c: Option<u8>) -> i32 {
        match c {
            None => 0,
            Some(b'~') => -1,
            Some(c) if c.is_ascii_digit() => 0,
            Some(c) if c.is_ascii_alphabetic() => c as i32,
            Some(c) => c as i32 + 256,
        }
    }
    fn verrevcmp(a: &str, b: &str) -> Ordering {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            let mut first_diff = 0;
            while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit())
            {
                let ac = order(a.get(i).copied());
                let bc = order(b.get(j).copied());
                if ac != bc {
                    return ac.cmp(&bc);
                }
                i += 1;
                j += 1;
            }
            while i < a.len() && a[i] == b'0' {
                i += 1;
            }
            while j < b.len() && b[j] == b'0' {
                j += 1;
            }
            while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
                if first_diff == 0 {
                    first_diff = a[i] as i32 - b[j] as i32;
                }
                i += 1;
                j += 1;
            }
            if i < a.len() && a[i].is_ascii_digit() {
                return Ordering::Greater;
            }
            if j < b.len() && b[j].is_ascii_digit() {
                return Ordering::Less;
            }
            if first_diff != 0 {
                return first_diff.cmp(&0);
            }
        }
        Ordering::Equal
    }
    let (ea, ua, ra) = parts(a);
    let (eb, ub, rb) = parts(b);
    ea.cmp(&eb)
        .then_with(|| verrevcmp(ua, ub))
        .then_with(|| verrevcmp(ra, rb))
}

/// Maven's version order, simplified from ComparableVersion: numeric runs compare as numbers,
/// known qualifiers in Maven's order (alpha < beta < milestone < rc < snapshot < release < sp),
/// other text alphabetically after them.
pub fn maven(a: &str, b: &str) -> Ordering {
    fn tokens(v: &str) -> Vec<(u8, u64, String)> {
        let lower = v.to_ascii_lowercase();
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut digit = None;
        let flush = |cur: &mut String, out: &mut Vec<(u8, u64, String)>| {
            if cur.is_empty() {
                return;
            }
            let t = std::mem::take(cur);
            if let Ok(n) = t.parse::<u64>() {
                out.push((2, n, String::new()));
            } else {
                let rank = match t.as_str() {
                    "alpha" | "a" => 0,
                    "beta" | "b" => 1,
                    "milestone" | "m" => 2,
                    "rc" | "cr" => 3,
                    "snapshot" => 4,
                    "ga" | "final" | "release" => 5,
                    "sp" => 6,
                    _ => 7,
                };
                out.push((0, rank, t));
            }
        };
        for c in lower.chars() {
            if c == '.' || c == '-' || c == '_' {
                flush(&mut cur, &mut out);
                digit = None;
                continue;
            }
            let d = c.is_ascii_digit();
            if digit.is_some_and(|p| p != d) {
                flush(&mut cur, &mut out);
            }
            digit = Some(d);
            cur.push(c);
        }
        flush(&mut cur, &mut out);
        out
    }
    let (ta, tb) = (tokens(a), tokens(b));
    for i in 0..ta.len().max(tb.len()) {
        // A missing token is a release: after qualifiers, before numbers.
        let pad = (1u8, 5u64, String::new());
        let x = ta.get(i).unwrap_or(&pad);
        let y = tb.get(i).unwrap_or(&pad);
        let key = |t: &(u8, u64, String)| match t.0 {
            2 => (2u8, t.1, String::new()),
            1 => (1, 5, String::new()),
            _ => {
                if t.1 <= 4 {
                    (0, t.1, String::new())
                } else if t.1 == 5 {
                    (1, 5, String::new())
                } else {
                    (1, t.1, t.2.clone())
                }
            }
        };
        match key(x).cmp(&key(y)) {
            Ordering::Equal => continue,
            o => return o,
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maven_version_order() {
        let mut v = vec![
            "1.10",
            "1.2",
            "1.0-SNAPSHOT",
            "1.0",
            "1.0-rc1",
            "1.0-alpha",
            "1.0.1",
            "2.0-beta-2",
        ];
        v.sort_by(|a, b| maven(a, b));
        assert_eq!(
            v,
            vec![
                "1.0-alpha",
                "1.0-rc1",
                "1.0-SNAPSHOT",
                "1.0",
                "1.0.1",
                "1.2",
                "1.10",
                "2.0-beta-2"
            ]
        );
    }

    #[test]
    fn newest_follows_each_ecosystem() {
        let t = PackageType::Maven;
        assert_eq!(newest(t, ["3.12.0", "debian", "3.11"]), Some("3.12.0"));
        assert_eq!(
            newest(PackageType::Python, ["1.0", "1.10", "1.9", "2.0rc1"]),
            Some("2.0rc1")
        );
        assert_eq!(
            newest(PackageType::Npm, ["1.0.0", "1.0.1-beta.1", "0.9.0"]),
            Some("1.0.1-beta.1")
        );
        assert_eq!(newest(PackageType::Npm, ["2.0.0", "1.5.0"]), Some("2.0.0"));
        assert_eq!(
            newest(PackageType::Nuget, ["1.0.0.1", "1.0.0", "1.0.0.2-beta"]),
            Some("1.0.0.2-beta")
        );
        assert_eq!(
            newest(PackageType::Nuget, ["1.0.0", "1.0.0-rc.2", "1.0.0-rc.10"]),
            Some("1.0.0")
        );
        assert_eq!(
            newest(PackageType::Cran, ["1.2-10", "1.2-9", "1.10-0"]),
            Some("1.10-0")
        );
        // Upload order where the type has no order, or a version does not parse.
        assert_eq!(newest(PackageType::Generic, ["2.0", "1.0"]), Some("1.0"));
        assert_eq!(
            newest(PackageType::Npm, ["2.0.0", "not-semver"]),
            Some("not-semver")
        );
        assert_eq!(
            newest(PackageType::Debian, ["1.0-1", "1:0.5-1", "1.0~rc1-1"]),
            Some("1:0.5-1")
        );
    }

    #[test]
    fn dpkg_order() {
        use Ordering::*;
        for (a, b, o) in [
            ("1.0", "1.0", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0", "1.0+b1", Less),
            ("1.0-1", "1.0-10", Less),
            ("2.36.1-8+deb12u1", "2.36.1-8", Greater),
            ("1:1.0", "2.0", Greater),
            ("1.0a", "1.0", Greater),
            ("7.88.1-10+deb12u5", "7.88.1-10+deb12u12", Less),
        ] {
            assert_eq!(debian(a, b), o, "{a} vs {b}");
        }
    }
}
