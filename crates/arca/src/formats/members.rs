//! The group rules a read applies to the members it reaches, and the per-request memory that
//! lets a request walk a registry's members once.
//!
//! * **One walk per request.** A native request runs inside a [`scope`]; the first walk of a
//!   registry's members is kept there, so that the packages lookup, the proxies asked and the
//!   file lookup of one request share it (a group of three members used to be walked two or
//!   three times per packument).
//! * **Dependency-confusion guard.** A name present in a hosted member of the registry read
//!   hides everything proxies have for it, cached or upstream, in indexes and downloads alike,
//!   unless the read registry's `dependencyConfusionAllowList` names it. The first name-aware
//!   lookup of a request ([`crate::formats::Resolver::packages`] or
//!   [`crate::formats::Resolver::guard`]) decides; the decision then holds for the rest of the
//!   request, so proxy adapters that ask for "the proxies of this registry" need no change.
//! * **`allowRemoteProxying`.** A proxy reached through a group that does not allow remote
//!   proxying answers from its cache only; it is never asked upstream.
//! * **Served by.** The members that answered are collected and sent as `X-Arca-Served-By`.
//! * **Walks across requests.** A process remembers a registry's walk for up to [`WALK_TTL`]
//!   ([`Walks`]), checked against the registry's own row (read on every request) and against
//!   every registry write the process made since, so a group's read costs one package query.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::model::{Registry, RegistryKind};

/// One registry a read reaches, in resolution order.
#[derive(Clone, Debug)]
pub struct Reached {
    pub reg: Registry,
    /// For a proxy: whether this read may make it fetch (every group on the way allows remote
    /// proxying). Always true for the rest.
    pub live: bool,
    /// What `X-Arca-Served-By` calls it: a cache is named after its proxy.
    pub label: String,
}

/// How long a process trusts a walk it remembers across requests: changes this process makes
/// to a registry invalidate it at once (see `store::registries::registries_generation`); a
/// change another process of a cluster made to a *member* is seen within this time (the group's
/// own row, member list and order included, is read on every request).
const WALK_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// A remembered walk: the fingerprint it was computed under, when, and the walk.
type Remembered = (String, std::time::Instant, Arc<Vec<Reached>>);

/// Walks remembered across requests, per registry id, with what they were computed from.
#[derive(Default)]
pub struct Walks(Mutex<HashMap<String, Remembered>>);

impl Walks {
    /// The fingerprint a walk of `reg` depends on beside its members' rows.
    fn fingerprint(reg: &Registry) -> String {
        format!(
            "{}|{}|{}|{}|{}",
            reg.updated_at,
            reg.members.join(","),
            reg.allow_remote_proxying,
            reg.kind.as_str(),
            crate::store::registries::registries_generation()
        )
    }

    pub(super) fn get(&self, reg: &Registry) -> Option<Arc<Vec<Reached>>> {
        let map = self.0.lock().ok()?;
        let (fp, at, walk) = map.get(&reg.id)?;
        (at.elapsed() < WALK_TTL && *fp == Self::fingerprint(reg)).then(|| walk.clone())
    }

    pub(super) fn put(&self, reg: &Registry, fingerprint: String, walk: Arc<Vec<Reached>>) {
        if let Ok(mut map) = self.0.lock() {
            // Bounded by the registries read within the TTL; cleared rather than aged per entry.
            if map.len() > 10_000 {
                map.clear();
            }
            map.insert(
                reg.id.clone(),
                (fingerprint, std::time::Instant::now(), walk),
            );
        }
    }

    /// The fingerprint to store a walk under: taken *before* the walk reads the members, so a
    /// registry written meanwhile makes the stored walk fail its next check.
    pub(super) fn fingerprint_now(reg: &Registry) -> String {
        Self::fingerprint(reg)
    }
}

/// What one request remembers.
#[derive(Default)]
struct Memory {
    walks: HashMap<String, Arc<Vec<Reached>>>,
    /// Set once a name of this request is owned by a hosted member and not allow-listed.
    proxies_hidden: bool,
    served_by: Vec<String>,
}

#[derive(Default, Clone)]
pub struct Scope(Arc<Mutex<Memory>>);

tokio::task_local! {
    static SCOPE: Scope;
}

/// Runs `f` as one request; returns its output and the members that served it.
pub async fn scope<F: std::future::Future>(f: F) -> (F::Output, Vec<String>) {
    let s = Scope::default();
    let out = SCOPE.scope(s.clone(), f).await;
    let served = s.0.lock().map(|m| m.served_by.clone()).unwrap_or_default();
    (out, served)
}

fn with<R>(f: impl FnOnce(&mut Memory) -> R) -> Option<R> {
    SCOPE
        .try_with(|s| s.0.lock().ok().map(|mut m| f(&mut m)))
        .ok()
        .flatten()
}

pub(super) fn remembered_walk(id: &str) -> Option<Arc<Vec<Reached>>> {
    with(|m| m.walks.get(id).cloned()).flatten()
}

pub(super) fn remember_walk(id: &str, walk: Arc<Vec<Reached>>) {
    with(|m| m.walks.insert(id.to_string(), walk));
}

pub(super) fn hide_proxies() {
    with(|m| m.proxies_hidden = true);
}

pub(super) fn proxies_hidden() -> bool {
    with(|m| m.proxies_hidden).unwrap_or(false)
}

/// Records that `label` contributed to the answer (once each, in order).
pub fn served_by(label: &str) {
    with(|m| {
        if !m.served_by.iter().any(|s| s == label) {
            m.served_by.push(label.to_string());
        }
    });
}

/// Whether the name (an npm name, a normalised PyPI project, `group:artifact` for Maven, ...) is
/// on the allow-list: a pattern matches the whole name as a glob (`*` any run, `?` one character;
/// `@acme/*` a scope), or for a Maven `group:artifact` its groupId as that glob or as a prefix
/// (`com.acme` covers `com.acme.tools`).
pub fn allow_listed(patterns: &[String], name: &str) -> bool {
    let group = name.split_once(':').map(|(g, _)| g);
    patterns.iter().map(|p| p.trim()).any(|p| {
        !p.is_empty()
            && (glob(p, name)
                || group.is_some_and(|g| {
                    glob(p, g) || g.strip_prefix(p).is_some_and(|r| r.starts_with('.'))
                }))
    })
}

/// Case-insensitive glob over characters.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    // Iterative matcher with one backtrack point: linear enough for short names.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether a member's names count for the guard: hosted members only (a cache holds what a proxy
/// fetched, not what the organisation owns).
pub fn is_hosted(r: &Reached) -> bool {
    r.reg.kind == RegistryKind::Hosted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_patterns() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(allow_listed(&l(&["@acme/*"]), "@acme/util"));
        assert!(!allow_listed(&l(&["@acme/*"]), "@other/util"));
        assert!(allow_listed(&l(&["left-*"]), "Left-Pad"));
        assert!(!allow_listed(&l(&["left-*"]), "right-pad"));
        assert!(allow_listed(&l(&["com.acme"]), "com.acme:lib"));
        assert!(allow_listed(&l(&["com.acme"]), "com.acme.tools:lib"));
        assert!(!allow_listed(&l(&["com.acme"]), "com.acmex:lib"));
        assert!(allow_listed(&l(&["exact"]), "exact"));
        assert!(!allow_listed(&l(&["exact"]), "exactly"));
        assert!(!allow_listed(&l(&[""]), "x"));
        assert!(allow_listed(&l(&["a?c*"]), "abcdef"));
    }

    #[tokio::test]
    async fn the_scope_remembers_per_request_only() {
        let ((), served) = scope(async {
            served_by("a");
            served_by("b");
            served_by("a");
            assert!(!proxies_hidden());
            hide_proxies();
            assert!(proxies_hidden());
        })
        .await;
        assert_eq!(served, ["a", "b"]);
        // Outside a request nothing is remembered and nothing is hidden.
        hide_proxies();
        assert!(!proxies_hidden());
    }
}
