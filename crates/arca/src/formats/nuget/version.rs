//! NuGet versions: parsing, normalisation and ordering as NuGet does them.
//!
//! Written by hand: NuGet versions are not SemVer (one to four numeric parts, case-insensitive
//! labels, a fourth "revision" part) and no maintained crate implements NuGet's rules.

use std::cmp::Ordering;

#[derive(Debug, Clone)]
pub struct NuVersion {
    nums: [u64; 4],
    pre: Vec<String>,
    meta: Option<String>,
}

fn valid_label(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl NuVersion {
    /// Parses `1`, `1.0`, `1.0.0`, `1.0.0.0`, each optionally with `-prerelease` and `+metadata`.
    pub fn parse(s: &str) -> Option<NuVersion> {
        let s = s.trim();
        let (rest, meta) = match s.split_once('+') {
            Some((r, m)) => {
                if !m.split('.').all(valid_label) {
                    return None;
                }
                (r, Some(m.to_string()))
            }
            None => (s, None),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((c, p)) => {
                let labels: Vec<String> = p.split('.').map(str::to_string).collect();
                if !labels.iter().all(|l| valid_label(l)) {
                    return None;
                }
                (c, labels)
            }
            None => (rest, Vec::new()),
        };
        let parts: Vec<&str> = core.split('.').collect();
        if parts.is_empty() || parts.len() > 4 {
            return None;
        }
        let mut nums = [0u64; 4];
        for (i, p) in parts.iter().enumerate() {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            nums[i] = p.parse().ok()?;
        }
        Some(NuVersion { nums, pre, meta })
    }

    /// NuGet's normalised form: three parts (four when the revision is not 0), leading zeros
    /// dropped, metadata removed. `1.0` and `1.0.0.0` both normalise to `1.0.0`.
    pub fn normalized(&self) -> String {
        let [a, b, c, d] = self.nums;
        let mut s = if d != 0 {
            format!("{a}.{b}.{c}.{d}")
        } else {
            format!("{a}.{b}.{c}")
        };
        if !self.pre.is_empty() {
            s.push('-');
            s.push_str(&self.pre.join("."));
        }
        s
    }

    /// The normalised form plus `+metadata` (what SemVer 2 clients display).
    pub fn full(&self) -> String {
        match &self.meta {
            Some(m) => format!("{}+{m}", self.normalized()),
            None => self.normalized(),
        }
    }

    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }

    /// SemVer 2.0.0-only versions (dotted prerelease labels or build metadata) are hidden from
    /// clients that do not ask for `semVerLevel=2.0.0`.
    pub fn is_semver2(&self) -> bool {
        self.pre.len() > 1 || self.meta.is_some()
    }
}

impl Ord for NuVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nums
            .cmp(&other.nums)
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    for (a, b) in self.pre.iter().zip(&other.pre) {
                        let o = match (a.parse::<u64>(), b.parse::<u64>()) {
                            (Ok(x), Ok(y)) => x.cmp(&y),
                            (Ok(_), Err(_)) => Ordering::Less,
                            (Err(_), Ok(_)) => Ordering::Greater,
                            (Err(_), Err(_)) => a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase()),
                        };
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                    self.pre.len().cmp(&other.pre.len())
                }
            })
    }
}

impl PartialOrd for NuVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for NuVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for NuVersion {}

/// Normalises a dependency's version range as nuget.org does: a bare version `v` means `[v, )`,
/// versions inside brackets are normalised, an empty range is `(, )` (any version).
pub fn normalize_range(range: &str) -> Option<String> {
    let r = range.trim();
    if r.is_empty() {
        return Some("(, )".into());
    }
    let (first, last) = (r.chars().next()?, r.chars().last()?);
    if !matches!(first, '[' | '(') {
        return NuVersion::parse(r).map(|v| format!("[{}, )", v.normalized()));
    }
    if !matches!(last, ']' | ')') || r.len() < 2 {
        return None;
    }
    let inner = &r[1..r.len() - 1];
    let norm = |s: &str| -> Option<String> {
        let s = s.trim();
        if s.is_empty() {
            Some(String::new())
        } else {
            NuVersion::parse(s).map(|v| v.normalized())
        }
    };
    match inner.split_once(',') {
        Some((lo, hi)) => {
            let (lo, hi) = (norm(lo)?, norm(hi)?);
            let lo = if lo.is_empty() { String::new() } else { lo };
            Some(format!("{first}{lo}, {hi}{last}"))
        }
        // `[1.0]`: exactly this version.
        None => Some(format!("{first}{}{last}", norm(inner)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> NuVersion {
        NuVersion::parse(s).unwrap()
    }

    #[test]
    fn normalises_like_nuget() {
        assert_eq!(v("1.0").normalized(), "1.0.0");
        assert_eq!(v("1.0.0.0").normalized(), "1.0.0");
        assert_eq!(v("01.02.3.4").normalized(), "1.2.3.4");
        assert_eq!(v("1.0.0-Beta.1+git.abc").normalized(), "1.0.0-Beta.1");
        assert_eq!(v("1.0.0-Beta.1+git.abc").full(), "1.0.0-Beta.1+git.abc");
        assert!(v("1.0.0-beta.1").is_semver2() && !v("1.0.0-beta").is_semver2());
        assert!(v("1.0.0+meta").is_semver2());
        for bad in [
            "",
            "1.2.3.4.5",
            "a.b",
            "1..2",
            "1.0-",
            "1.0-be$ta",
            "1.0+",
            "v1.0",
        ] {
            assert!(NuVersion::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn orders_like_nuget() {
        let mut vs = vec![
            "1.0.0",
            "1.0.0-beta",
            "1.0.0-alpha",
            "1.0.0-alpha.2",
            "1.0.0-alpha.10",
            "0.9",
            "1.0.0.1",
            "1.0.0-Beta.1",
            "2.0",
            "1.0.0-1",
        ];
        vs.sort_by_key(|a| v(a));
        assert_eq!(
            vs,
            [
                "0.9",
                "1.0.0-1",
                "1.0.0-alpha",
                "1.0.0-alpha.2",
                "1.0.0-alpha.10",
                "1.0.0-beta",
                "1.0.0-Beta.1",
                "1.0.0",
                "1.0.0.1",
                "2.0"
            ]
        );
        assert_eq!(v("1.0"), v("1.0.0.0"));
        assert_eq!(v("1.0.0-BETA"), v("1.0.0-beta"));
    }

    #[test]
    fn normalises_ranges() {
        assert_eq!(normalize_range("1.0").as_deref(), Some("[1.0.0, )"));
        assert_eq!(normalize_range("").as_deref(), Some("(, )"));
        assert_eq!(
            normalize_range("[1.0,2.0)").as_deref(),
            Some("[1.0.0, 2.0.0)")
        );
        assert_eq!(normalize_range("(,2.0]").as_deref(), Some("(, 2.0.0]"));
        assert_eq!(normalize_range("[1.0]").as_deref(), Some("[1.0.0]"));
        assert!(normalize_range("[1.0,x)").is_none() && normalize_range("[1.0").is_none());
    }
}
