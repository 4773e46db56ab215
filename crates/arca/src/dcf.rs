//! Debian-control-style "DCF" stanzas (Debian `control` files, R `DESCRIPTION` files): lines of
//! `Field: value`, continuation lines indented. Written by hand: this is a dozen lines, and the
//! Debian crates bring Debian-specific semantics neither caller needs.

/// The fields of one stanza, in order; continuation lines are joined with a newline and keep
/// their leading space, as Debian requires when the stanza is written back out.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let last = out
                .last_mut()
                .ok_or("the stanza starts with a continuation line")?;
            last.1.push('\n');
            last.1.push_str(line.trim_end());
            continue;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("line '{line}' is not 'Field: value'"))?;
        let k = k.trim();
        if k.is_empty() || k.contains(char::is_whitespace) {
            return Err(format!("'{k}' is not a field name"));
        }
        out.push((k.to_string(), v.trim().to_string()));
    }
    Ok(out)
}

/// A field's value with continuation lines folded into one line (for single-line renderings).
pub fn folded(v: &str) -> String {
    v.lines().map(str::trim).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stanzas() {
        let d = parse("Package: hellor\nVersion: 0.1.0\nDepends: R (>= 3.5),\n    base\n").unwrap();
        assert_eq!(
            d[2],
            ("Depends".to_string(), "R (>= 3.5),\n    base".to_string())
        );
        assert_eq!(folded(&d[2].1), "R (>= 3.5), base");
        assert!(parse("  continuation first\n").is_err());
        assert!(parse("no colon here\n").is_err());
    }
}
