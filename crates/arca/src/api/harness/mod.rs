//! The Harness Artifact Registry dialect, under `/har/api/v1` and `/api/v1`.
//!
//! Refs contain slashes (`acct/org/proj/registry`), written either percent-encoded or raw with a
//! `/+` terminator, and artifact names may contain slashes too. That does not fit a declarative
//! router, so this module routes by hand on the raw (still encoded) path.
//!
//! Paging follows what the Harness server really does: `page` is 0-based (offset = page × size),
//! `size` defaults to 10, and `pageIndex` echoes the request's `page`, or 1 when it was omitted.
//!
//! This file is the router (paths and refs to handlers); `requests` parses query strings and
//! bodies, `views` renders the JSON documents, `registries` and `artifacts` hold the handlers.

mod artifacts;
mod deleted;
mod registries;
pub(crate) mod requests;
mod views;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};

pub use self::requests::RegistryRequest;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::http::query_pairs;
use crate::model::Registry;
use crate::state::AppState;
use crate::store::scopes::validate_path;

/// What every handler reads from the request, passed as one value.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    state: &'a AppState,
    principal: &'a Principal,
    query: &'a [(String, String)],
    body: &'a [u8],
}

impl Ctx<'_> {
    /// Creating registries and listing a space are for signed-in callers: an anonymous caller
    /// learns nothing about a space (a public registry can still be read by its own ref).
    fn require_user(&self) -> ApiResult<()> {
        if self.principal.is_anonymous() {
            return Err(ApiError::Unauthenticated("authentication required".into()));
        }
        Ok(())
    }
}

/// Entry point for everything under `/har/api/v1/` and `/api/v1/`.
pub async fn route(State(state): State<AppState>, req: Request) -> Response {
    match dispatch(&state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Routes one request to its handler (the naming of `formats::route` and `oci::route`: `route` is
/// the axum entry point, `dispatch` the fallible inner router).
async fn dispatch(state: &AppState, req: Request) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let rest = path
        .strip_prefix("/har/api/v1/")
        .or_else(|| path.strip_prefix("/api/v1/"))
        .unwrap_or("");
    // `//` would be read as `/` below (refs and artifact names are split on it): refused instead.
    crate::http::check_segments(rest)?;
    let query = query_pairs(parts.uri.query());
    let principal = state.principal(&parts.headers).await?;
    let method = parts.method.clone();
    // Read only after authentication, and never more than a management body may be.
    let limit = state.config.max_api_body_bytes;
    crate::http::check_length(&parts.headers, limit)?;
    let body = crate::http::read_body(body, limit.min(usize::MAX as u64) as usize).await?;
    let cx = Ctx {
        state,
        principal: &principal,
        query: &query,
        body: &body,
    };

    if rest == "registry" || rest == "registry/" {
        return match method {
            Method::POST => registries::create(&cx).await,
            _ => Err(ApiError::MethodNotAllowed(
                "use POST /registry?space_ref=... to create a registry".into(),
            )),
        };
    }
    if let Some(r) = rest.strip_prefix("registry/") {
        let (reg_ref, sub) = split_ref(r)?;
        let (space, ident) = split_registry_ref(&reg_ref)?;
        let reg = load_registry(state, &principal, &space, &ident).await?;
        let sub: Vec<&str> = sub.iter().map(String::as_str).collect();
        return match (method, sub.as_slice()) {
            (Method::GET, []) => registries::get(&cx, &reg).await,
            (Method::PUT, []) => registries::update(&cx, reg).await,
            (Method::DELETE, []) => registries::delete(&cx, &reg).await,
            (Method::GET, ["artifacts"]) => artifacts::list_in_registry(&cx, &reg).await,
            // Arca extension: the OpenPGP key that signs a Debian or RPM registry's metadata.
            (Method::GET, ["signing-key"]) => registries::signing_key(&cx, &reg).await,
            (Method::POST, ["signing-key", "rotate"]) => {
                registries::rotate_signing_key(&cx, &reg).await
            }
            (Method::GET, ["client-setup-details"]) => registries::client_setup(&cx, &reg),
            (Method::GET, ["artifact", "labels"]) => artifacts::labels(&cx, &reg).await,
            (m, ["artifact", ..]) => {
                // Artifact names may contain slashes: re-split the raw remainder after "artifact/".
                let after = raw_after_artifact(r)?;
                let (name, sub2) = split_ref(&after)?;
                let sub2: Vec<&str> = sub2.iter().map(String::as_str).collect();
                artifacts::route(&cx, &reg, m, &name, &sub2).await
            }
            _ => Err(ApiError::not_found(format!(
                "no such endpoint: {} /registry/{r}",
                parts.method
            ))),
        };
    }
    if let Some(r) = rest.strip_prefix("spaces/") {
        let (space, sub) = split_ref(r)?;
        let space = space.trim_matches('/').to_string();
        validate_path("space_ref", &space)?;
        let sub: Vec<&str> = sub.iter().map(String::as_str).collect();
        return match (method, sub.as_slice()) {
            (Method::GET, ["registries"]) => registries::list(&cx, &space).await,
            (Method::GET, ["artifacts"]) => artifacts::list_in_space(&cx, &space).await,
            _ => Err(ApiError::not_found(format!(
                "no such endpoint under /spaces/{space}"
            ))),
        };
    }
    Err(ApiError::not_found(format!("no such endpoint: {path}")))
}

fn decode(s: &str) -> ApiResult<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| ApiError::bad_request("path is not valid UTF-8"))
}

/// Splits `<ref>/+/<rest>` or `<percent-encoded ref>/<rest>` into the decoded ref and the rest.
pub(crate) fn split_ref(path: &str) -> ApiResult<(String, Vec<String>)> {
    let segs: Vec<&str> = path.split('/').collect();
    let decode_all = |segs: &[&str]| -> ApiResult<Vec<String>> {
        segs.iter()
            .filter(|s| !s.is_empty())
            .map(|s| decode(s))
            .collect()
    };
    let first = decode(segs.first().copied().unwrap_or(""))?;
    // A ref percent-encoded whole, terminator included (`acct%2Freg%2F%2B`), as OpenAPI-generated
    // clients send a path parameter: the terminator shows only after decoding, and any literal `+`
    // further on belongs to what follows (an artifact name's).
    if let Some(r) = first.strip_suffix("/+") {
        return Ok((r.to_string(), decode_all(&segs[1..])?));
    }
    if let Some((r, after)) = first.split_once("/+/") {
        let mut rest: Vec<String> = after
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        rest.extend(decode_all(&segs[1..])?);
        return Ok((r.to_string(), rest));
    }
    // Clients that encode every reserved character send the terminator as `%2B`.
    if let Some(pos) = segs
        .iter()
        .position(|s| *s == "+" || s.eq_ignore_ascii_case("%2B"))
    {
        let r = segs[..pos]
            .iter()
            .map(|s| decode(s))
            .collect::<ApiResult<Vec<_>>>()?
            .join("/");
        return Ok((r, decode_all(&segs[pos + 1..])?));
    }
    Ok((first, decode_all(&segs[1..])?))
}

/// `acct[/org[/proj]]/registry` → (space path, identifier).
pub(crate) fn split_registry_ref(r: &str) -> ApiResult<(String, String)> {
    let r = r.trim_matches('/');
    let (space, ident) = r.rsplit_once('/').ok_or_else(|| {
        ApiError::bad(
            "registry_ref",
            format!(
                "invalid registry_ref '{r}': expected <account>[/<org>[/<project>]]/<registry>"
            ),
        )
    })?;
    validate_path("registry_ref", space)?;
    Ok((space.to_string(), ident.to_string()))
}

/// The raw text after `/artifact/` in a registry path (refs already consumed).
pub(crate) fn raw_after_artifact(r: &str) -> ApiResult<String> {
    r.split_once("/artifact/")
        .map(|(_, a)| a.to_string())
        .ok_or_else(|| ApiError::bad("artifact", "missing artifact name"))
}

async fn load_registry(
    state: &AppState,
    principal: &Principal,
    space: &str,
    ident: &str,
) -> ApiResult<Registry> {
    // A registry the caller cannot read answers like one that does not exist, before anything
    // below it (artifacts, versions) is looked up: 401 to anonymous callers, 404 to others.
    match state.db.registry_in_scope(space, ident).await? {
        // Caches and trash registries are the server's own: the dialect shows their content on the
        // registries it belongs to (a proxy's cached artifacts, a registry's deleted versions).
        Some(r)
            if !matches!(
                r.kind,
                crate::model::RegistryKind::Cache | crate::model::RegistryKind::Trash
            ) && principal.can(&r, crate::auth::Need::Read) =>
        {
            Ok(r)
        }
        _ if principal.is_anonymous() => {
            Err(ApiError::Unauthenticated("authentication required".into()))
        }
        _ => Err(ApiError::not_found(format!(
            "registry '{space}/{ident}' doesn't exist"
        ))),
    }
}
