//! OCI Distribution Specification v1.1 for DOCKER and HELM registries, served under `/v2/`.
//!
//! Repository names are `<account>/<registry>/<image...>`, so the reference a user types is
//! `<host>/<account>/<registry>/<image>:<tag>`. Inside a registry an image is a package; a tag is
//! a version whose files are the manifest (`<image>/<tag>/manifest`) and the blobs it references
//! (`<image>/<tag>/blobs/<digest>`, which gives versions their size); a manifest pushed by digest
//! only (an index's children, referrers) is a version named by its digest. Blobs a repository
//! holds before any manifest names them are recorded in `oci_blobs`, upload sessions in
//! `oci_uploads` (their bytes in a blob-store session), so any server process can continue an
//! upload another one started, given a shared blob store.
//!
//! Auth: the Docker token flow (`/v2/token` issues short-lived HMAC-signed tokens scoped to
//! repositories and actions; the key lives in the metadata store so every process accepts every
//! other's tokens). Basic credentials and API tokens are also accepted directly.

pub(crate) mod blobs;
pub(crate) mod manifests;
mod proxy;
mod token;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::setup::{Setup, SetupContext, inline, step};
use super::{Format, NativeRequest};
use crate::auth::{Need, Principal};
use crate::error::ApiError;
use crate::model::{PackageType, Registry};
use crate::state::AppState;

pub use token::token_endpoint;

/// DOCKER registries: served at `/v2` (the distribution spec fixes the path), so the format's own
/// routes are the OCI endpoints, and its `/pkg` root only says where to go. HELM registries use
/// the same `/v2` endpoints for charts over OCI (their format is [`super::helm::Helm`]).
pub struct Docker;

#[async_trait::async_trait]
impl Format for Docker {
    fn package_type(&self) -> PackageType {
        PackageType::Docker
    }

    fn client_setup(&self, c: &SetupContext) -> Setup {
        let SetupContext {
            oci_account: account,
            oci_id: id,
            art,
            ver,
            ..
        } = c;
        let host = c.authority();
        let image = format!("{host}/{account}/{id}/{art}:{ver}");
        // Podman, Buildah and Skopeo insist on TLS unless told otherwise.
        let tls = if c.plain_http() {
            " --tls-verify=false"
        } else {
            ""
        };
        let mut sections = Vec::new();
        if c.plain_http() {
            sections.push(inline(
                "Allow plain HTTP",
                vec![step(
                    "Docker: list the registry in \"insecure-registries\" of /etc/docker/daemon.json and restart the daemon (Docker already allows 127.0.0.0/8); Podman, Buildah and Skopeo take --tls-verify=false as below",
                    &[(
                        "daemon.json",
                        format!("{{\"insecure-registries\": [\"{host}\"]}}"),
                    )],
                )],
            ));
        }
        sections.extend([
            inline(
                "Login",
                vec![
                    step(
                        "Docker (paste the token, then press Enter and Ctrl-D)",
                        &[(
                            "",
                            format!("docker login -u {} --password-stdin {host}", c.user),
                        )],
                    ),
                    step(
                        "Podman (paste the token, then press Enter and Ctrl-D)",
                        &[(
                            "",
                            format!("podman login{tls} -u {} --password-stdin {host}", c.user),
                        )],
                    ),
                ],
            ),
            inline(
                "Pull an image",
                vec![
                    step("Docker", &[("", format!("docker pull {image}"))]),
                    step("Podman", &[("", format!("podman pull{tls} {image}"))]),
                ],
            ),
            inline(
                "Push an image",
                vec![
                    step(
                        "Docker: tag and push",
                        &[
                            ("", format!("docker tag {art}:{ver} {image}")),
                            ("", format!("docker push {image}")),
                        ],
                    ),
                    step(
                        "Podman: tag and push",
                        &[
                            ("", format!("podman tag {art}:{ver} {image}")),
                            ("", format!("podman push{tls} {image}")),
                        ],
                    ),
                ],
            ),
        ]);
        if let Some(note) = super::setup::oci_case_note(c) {
            // The login section comes first, after the plain-HTTP note where there is one.
            let login = usize::from(c.plain_http());
            sections[login]["secHeader"] = serde_json::json!(note);
        }
        Setup {
            title: "Docker Client Setup",
            sections,
        }
    }

    fn pull_command(&self, c: &SetupContext, name: &str, version: &str) -> String {
        let host = &c.host;
        format!(
            "docker pull {host}/{}/{}/{name}:{version}",
            c.oci_account, c.oci_id
        )
    }

    fn routes(&self) -> Option<axum::Router<AppState>> {
        use axum::routing::{any, get};
        Some(
            axum::Router::new()
                .route("/v2/token", get(token_endpoint))
                .route("/v2", any(route))
                .route("/v2/", any(route))
                .route("/v2/{*rest}", any(route)),
        )
    }

    async fn handle(
        &self,
        state: &AppState,
        req: NativeRequest,
    ) -> crate::error::ApiResult<Response> {
        Err(ApiError::not_found(format!(
            "DOCKER registries speak the OCI distribution protocol at {}/v2/{}/",
            state.config.base_url,
            req.registry.oci_prefix()
        )))
    }
}

/// An error in the distribution spec's form.
#[derive(Debug)]
pub struct OciError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// For 401s: the scope to put in the Bearer challenge.
    pub scope: Option<String>,
}

pub type OciResult<T> = Result<T, OciError>;

impl From<crate::store::StoreError> for OciError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl OciError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> OciError {
        OciError {
            status,
            code,
            message: message.into(),
            scope: None,
        }
    }
    pub fn blob_unknown(d: &str) -> OciError {
        Self::new(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            format!("blob {d} is unknown to this repository"),
        )
    }
    pub fn manifest_unknown(r: &str) -> OciError {
        Self::new(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!("manifest '{r}' is unknown to this repository"),
        )
    }
    pub fn name_unknown(n: &str) -> OciError {
        Self::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("repository '{n}' is not known to this registry"),
        )
    }
    pub fn upload_unknown() -> OciError {
        Self::new(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            "blob upload unknown to registry",
        )
    }
    pub fn digest_invalid(m: impl Into<String>) -> OciError {
        Self::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", m)
    }
    pub fn manifest_invalid(m: impl Into<String>) -> OciError {
        Self::new(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", m)
    }
    pub fn denied(m: impl Into<String>) -> OciError {
        Self::new(StatusCode::FORBIDDEN, "DENIED", m)
    }
    pub fn unsupported(m: impl Into<String>) -> OciError {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", m)
    }
}

impl From<ApiError> for OciError {
    fn from(e: ApiError) -> OciError {
        let status = e.status();
        let message = e.public_message();
        let code = match status {
            StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
            StatusCode::FORBIDDEN => "DENIED",
            StatusCode::NOT_FOUND => "NAME_UNKNOWN",
            StatusCode::PAYLOAD_TOO_LARGE => "SIZE_INVALID",
            StatusCode::METHOD_NOT_ALLOWED => "UNSUPPORTED",
            StatusCode::RANGE_NOT_SATISFIABLE => "BLOB_UPLOAD_INVALID",
            StatusCode::CONFLICT => "DENIED",
            s if s.is_client_error() => "BLOB_UPLOAD_INVALID",
            _ => "UNKNOWN",
        };
        let status = if status == StatusCode::CONFLICT {
            StatusCode::FORBIDDEN
        } else {
            status
        };
        OciError::new(status, code, message)
    }
}

impl From<crate::blob::BlobError> for OciError {
    fn from(e: crate::blob::BlobError) -> OciError {
        ApiError::from(e).into()
    }
}

fn base_headers(h: &mut HeaderMap) {
    h.insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
}

/// Renders an error; 401s carry the Bearer challenge that starts the token flow.
fn render(state: &AppState, e: OciError) -> Response {
    let body = json!({"errors": [{"code": e.code, "message": e.message, "detail": null}]});
    let mut resp = (e.status, axum::Json(body)).into_response();
    base_headers(resp.headers_mut());
    if e.status == StatusCode::UNAUTHORIZED {
        let mut challenge = format!(
            "Bearer realm=\"{}/v2/token\",service=\"arca\"",
            state.config.base_url
        );
        if let Some(scope) = &e.scope {
            challenge.push_str(&format!(",scope=\"{scope}\""));
        }
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    resp
}

/// OCI repository name components (`[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, joined by `/`).
pub(crate) fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !(b[0].is_ascii_lowercase() || b[0].is_ascii_digit()) {
        return false;
    }
    let last = b[b.len() - 1];
    if !(last.is_ascii_lowercase() || last.is_ascii_digit()) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or any number of "-".
        let start = i;
        while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let run = &b[start..i];
        // An empty run is a character that is neither allowed nor a separator.
        let ok = run == b"."
            || run == b"_"
            || run == b"__"
            || (!run.is_empty() && run.iter().all(|&x| x == b'-'));
        if !ok {
            return false;
        }
    }
    true
}

/// What a request addresses.
pub(crate) struct Repo {
    pub registry: Registry,
    /// `<account>/<registry>/<image>`
    pub name: String,
    /// The image path inside the registry.
    pub image: String,
}

async fn resolve_repo(state: &AppState, name: &str) -> OciResult<Repo> {
    let parts: Vec<&str> = name.split('/').collect();
    if parts.len() < 3 || name.len() > 255 || !parts.iter().all(|p| valid_component(p)) {
        return Err(OciError::new(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            format!("invalid repository name '{name}': expected <account>/<registry>/<image>"),
        ));
    }
    let oci = |r: &Registry| matches!(r.package_type, PackageType::Docker | PackageType::Helm);
    // `<account>/<registry>/<image>` (a name per account, or unique in it), else
    // `<scope path>/<registry>/<image>` of a name per owner, by the longest existing scope.
    if let Some(registry) = state
        .db
        .registry_by_identifier(parts[0], parts[1])
        .await?
        .filter(oci)
    {
        return Ok(Repo {
            registry,
            name: name.to_string(),
            image: parts[2..].join("/"),
        });
    }
    for depth in (2..=3).rev() {
        if parts.len() < depth + 2 {
            continue;
        }
        if let Some(registry) = state
            .db
            .registry_in_scope(&parts[..depth].join("/"), parts[depth])
            .await?
            .filter(|r| oci(r) && r.named_per_owner())
        {
            return Ok(Repo {
                registry,
                name: name.to_string(),
                image: parts[depth + 1..].join("/"),
            });
        }
    }
    Err(OciError::name_unknown(name))
}

/// The repository a request names, as its caller may know it: a registry the caller cannot read
/// answers exactly like one that does not exist (401 with a pull challenge to anonymous callers,
/// `NAME_UNKNOWN` to signed-in ones), so probing reveals nothing.
async fn visible_repo(state: &AppState, who: &Caller, name: &str) -> OciResult<Repo> {
    let found = match resolve_repo(state, name).await {
        Ok(repo) => Some(repo),
        Err(e) if e.code == "NAME_UNKNOWN" => None,
        Err(e) => return Err(e),
    };
    match found {
        Some(repo) if who.principal.can(&repo.registry, Need::Read) => Ok(repo),
        _ if who.principal.is_anonymous() => {
            let mut e = OciError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required",
            );
            e.scope = Some(format!("repository:{name}:pull"));
            Err(e)
        }
        _ => Err(OciError::name_unknown(name)),
    }
}

/// The caller of an OCI request, and the actions its token (if any) was scoped to.
pub(crate) struct Caller {
    pub principal: Principal,
    token: Option<token::Claims>,
}

impl Caller {
    /// Checks that the caller may do `need` on `repo`; anonymous callers and tokens scoped too
    /// narrowly get a 401 challenge naming the scope to ask for.
    pub fn check(&self, repo: &Repo, need: Need) -> OciResult<()> {
        let action = match need {
            Need::Read => "pull",
            Need::Write => "push",
            Need::Delete | Need::Admin => "delete",
        };
        let scope = format!(
            "repository:{}:{}",
            repo.name,
            if action == "pull" {
                "pull"
            } else {
                "pull,push"
            }
        );
        if let Some(claims) = &self.token
            && !claims.grants(&repo.name, action)
        {
            let mut e = OciError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                format!("the token does not grant {action} on {}", repo.name),
            );
            e.scope = Some(scope);
            return Err(e);
        }
        match self.principal.check(&repo.registry, need) {
            Ok(()) => Ok(()),
            Err(ApiError::Unauthenticated(m)) => {
                let mut e = OciError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", m);
                e.scope = Some(scope);
                Err(e)
            }
            Err(other) => Err(other.into()),
        }
    }
}

async fn caller(state: &AppState, headers: &HeaderMap) -> OciResult<Caller> {
    if let Some(t) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|t| t.starts_with(token::PREFIX))
    {
        let claims = token::verify(state, t)
            .await
            .map_err(|m| OciError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", m))?;
        let principal = match &claims.sub {
            Some(name) => match state.db.user_by_name(name).await? {
                Some(user) => {
                    let roles = state.db.roles_of(&user.id).await?;
                    // The token's claims carry what its minting credentials allowed.
                    Principal::User {
                        user,
                        roles,
                        limit: Default::default(),
                    }
                }
                None => {
                    return Err(OciError::new(
                        StatusCode::UNAUTHORIZED,
                        "UNAUTHORIZED",
                        "the token's user no longer exists",
                    ));
                }
            },
            None => Principal::Anonymous,
        };
        return Ok(Caller {
            principal,
            token: Some(claims),
        });
    }
    let principal = state.principal(headers).await.map_err(|e| match e {
        ApiError::Unauthenticated(m) => OciError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", m),
        other => other.into(),
    })?;
    Ok(Caller {
        principal,
        token: None,
    })
}

/// Entry point for `/v2/` and everything below it.
pub async fn route(State(state): State<AppState>, req: Request) -> Response {
    // One request's walk of the members, guard decision and served-by (see `members`), as for
    // the `/pkg` routes.
    let (out, served) = crate::formats::members::scope(dispatch(&state, req)).await;
    let mut resp = match out {
        Ok(r) => r,
        Err(e) => render(&state, e),
    };
    if resp.status().is_success()
        && !served.is_empty()
        && let Ok(v) = HeaderValue::from_str(&served.join(", "))
    {
        resp.headers_mut().insert("x-arca-served-by", v);
    }
    base_headers(resp.headers_mut());
    resp
}

async fn dispatch(state: &AppState, req: Request) -> OciResult<Response> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let rest = path.strip_prefix("/v2").unwrap_or("");
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let query = parts.uri.query().map(str::to_string);
    let method = parts.method.clone();
    let headers = parts.headers;
    let who = caller(state, &headers).await?;
    if rest.is_empty() {
        // The API base: authenticated callers only, so clients learn how to log in.
        if who.principal.is_anonymous() && who.token.is_none() {
            return Err(OciError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required",
            ));
        }
        return Ok(axum::Json(json!({})).into_response());
    }
    if rest == "_catalog" {
        return manifests::catalog(state, &who, query.as_deref()).await;
    }
    let ctx = Ctx {
        state,
        who,
        method,
        headers,
        query,
    };
    if let Some(name) = rest.strip_suffix("/tags/list") {
        let repo = visible_repo(state, &ctx.who, name).await?;
        return manifests::tags(&ctx, &repo).await;
    }
    if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
        let repo = visible_repo(state, &ctx.who, name).await?;
        return manifests::handle(&ctx, &repo, reference, body).await;
    }
    if let Some((name, digest)) = rest.rsplit_once("/referrers/") {
        let repo = visible_repo(state, &ctx.who, name).await?;
        return manifests::referrers(&ctx, &repo, digest).await;
    }
    if let Some((name, session)) = rest.rsplit_once("/blobs/uploads") {
        let repo = visible_repo(state, &ctx.who, name).await?;
        let session = session.trim_start_matches('/');
        return blobs::upload(&ctx, &repo, session, body).await;
    }
    if let Some((name, digest)) = rest.rsplit_once("/blobs/") {
        let repo = visible_repo(state, &ctx.who, name).await?;
        return blobs::blob(&ctx, &repo, digest).await;
    }
    Err(OciError::new(
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
        "no such endpoint",
    ))
}

/// One request's context for the handlers.
pub(crate) struct Ctx<'a> {
    pub state: &'a AppState,
    pub who: Caller,
    pub method: Method,
    pub headers: HeaderMap,
    pub query: Option<String>,
}

impl Ctx<'_> {
    pub fn query(&self, key: &str) -> Option<String> {
        crate::http::query_pairs(self.query.as_deref())
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// Parses `algorithm:hex`, supporting sha256 and sha512.
pub(crate) fn parse_digest(d: &str) -> OciResult<(&'static str, String)> {
    let (alg, hex) = d
        .split_once(':')
        .ok_or_else(|| OciError::digest_invalid(format!("'{d}' is not a digest")))?;
    let (alg, len) = match alg {
        "sha256" => ("sha256", 64),
        "sha512" => ("sha512", 128),
        other => {
            return Err(OciError::new(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                format!("unsupported digest algorithm '{other}'"),
            ));
        }
    };
    if hex.len() != len
        || !hex
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        return Err(OciError::digest_invalid(format!(
            "'{d}' is not a valid {alg} digest"
        )));
    }
    Ok((alg, hex.to_string()))
}

pub(crate) fn empty(status: StatusCode) -> Response {
    (status, Body::empty()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_name_components() {
        for ok in ["a", "abc", "a.b", "a_b", "a__b", "a---b", "v1.2"] {
            assert!(valid_component(ok), "{ok}");
        }
        for bad in ["", "A", "-a", "a-", "a..b", "a___b", "a._b", "a b"] {
            assert!(!valid_component(bad), "{bad}");
        }
    }

    #[test]
    fn digests() {
        assert!(parse_digest(&format!("sha256:{}", "a".repeat(64))).is_ok());
        assert!(parse_digest(&format!("sha512:{}", "0".repeat(128))).is_ok());
        for bad in [
            "sha256:abc",
            "md5:00",
            "nope",
            &format!("sha256:{}", "A".repeat(64)),
        ] {
            assert!(parse_digest(bad).is_err(), "{bad}");
        }
    }
}
