//! The README as a newcomer meets it: its Quick start block runs top to bottom as pasted (only the
//! binary path and the port are substituted), and its configuration table lists every setting
//! `arca --help` knows.

use std::path::Path;
use std::process::{Command, Stdio};

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    std::fs::read_to_string(&path).expect("README.md")
}

/// The first ```sh block after `heading`.
fn block_after(text: &str, heading: &str) -> String {
    let rest = &text[text.find(heading).expect("heading")..];
    let start = rest.find("```sh\n").expect("sh block") + "```sh\n".len();
    let len = rest[start..].find("\n```").expect("block end");
    rest[start..start + len].to_string()
}

#[test]
fn readme_quick_start_runs_as_pasted() {
    let block = block_after(&readme(), "## Quick start");
    assert!(block.contains("cargo run --release --") && block.contains("127.0.0.1:8080"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let script = block
        .replace("cargo run --release --", env!("CARGO_BIN_EXE_arca"))
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    let dir = tempfile::tempdir().expect("tempdir");
    // Stop the server even when a line fails (the block itself ends with `kill %1`).
    let wrapped = format!("set -e\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{script}\n");
    let out = Command::new("bash")
        .args(["-c", &wrapped])
        .current_dir(dir.path())
        .env_remove("ARCA_ADMIN_TOKEN")
        .env_remove("ARCA_CONFIG")
        .env_remove("ARCA_DATA_DIR")
        .env_remove("ARCA_DATABASE_URL")
        .env_remove("ARCA_BASE_URL")
        .env_remove("ARCA_LISTEN")
        .stdin(Stdio::null())
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "Quick start failed:\n{stdout}\n---\n{stderr}"
    );
    // The first start printed the token on a line of its own and named the file holding it.
    let token =
        std::fs::read_to_string(dir.path().join("arca-data/admin-token")).expect("token file");
    let token = token.trim();
    assert!(
        stdout.lines().any(|l| l == token),
        "token line missing:\n{stdout}"
    );
    assert!(stdout.contains("arca-data/admin-token"), "{stdout}");
    assert!(stdout.contains("downloaded the same bytes"), "{stdout}");
    assert!(stdout.contains("\"token\":\"arca_"), "token API: {stdout}");
    assert!(
        stdout.contains(&format!(
            "\"url\":\"http://127.0.0.1:{port}/pkg/default/acme/-/npm-local/npm\""
        )),
        "GitFlic url: {stdout}"
    );
    // Logs went to a pipe: no colour codes.
    assert!(!stderr.contains('\u{1b}'), "ANSI codes in logs: {stderr}");
}

#[test]
fn readme_configuration_table_lists_every_setting() {
    let text = readme();
    let section = &text[text.find("## Configuration").expect("configuration")..];
    let table = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let help = Command::new(env!("CARGO_BIN_EXE_arca"))
        .arg("--help")
        .output()
        .expect("arca --help");
    let help = String::from_utf8_lossy(&help.stdout);
    let flags: Vec<&str> = help
        .split_whitespace()
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
        .filter(|w| !matches!(*w, "--help" | "--version"))
        .collect();
    assert!(flags.len() >= 10, "{help}");
    for flag in flags {
        let env = format!("ARCA_{}", flag[2..].replace('-', "_").to_uppercase());
        let key = flag[2..].replace('-', "_");
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("| `{flag}`")))
            .unwrap_or_else(|| panic!("no README row for {flag}"));
        assert!(row.contains(&format!("`{env}`")), "{flag}: {row}");
        if flag != "--config" {
            assert!(row.contains(&format!("`{key}`")), "{flag}: {row}");
        }
    }
}
