//! Native package protocols, one module per format, behind one small interface.
//!
//! Every format is served under `<base>/pkg/<account>/<registry>/<format>/...`. The router here
//! finds the registry, checks the format matches its package type and authenticates the caller; the
//! format module then speaks its protocol. Formats never read storage for a registry directly: they
//! go through [`Resolver`], which knows the registry's kind:
//!
//! * immutable content (a file addressed by its path or digest) is looked up along the registry's
//!   *read chain*: a hosted registry, then its upstream proxies in order; a group's members in
//!   order; a proxy's cache (and, once proxying lands, the upstream itself, with the fetched file
//!   kept in the cache);
//! * generated metadata (indexes, packuments, `maven-metadata.xml`, tag lists) is built per registry
//!   by the format from indexed queries and merged across the read chain by the format's own rule;
//! * writes go to the registry's *write target*: a hosted registry itself, a group's deployment
//!   member; proxies, caches and the trash can refuse uploads.
//!
//! Uploads go through one pipeline, [`upload::Upload`]: write target, write permission and declared
//! size before the body is read, the body staged, the format's checks, then the record.
//!
//! Every per-format fact lives in the format's module, behind [`Format`]: its protocol, its
//! client setup and pull command, whether it signs its metadata, its error envelope (applied by
//! the router to every error once the format is known, authentication failures included) and any
//! routes of its own outside `/pkg` (OCI's `/v2`). Adding a format: write its module implementing
//! [`Format`], add its [`PackageType`] variant, and add one line to [`Formats::new`].

mod address;
pub mod cargo;
pub mod composer;
pub mod cran;
pub mod debian;
pub mod generic;
pub mod helm;
pub mod json_stream;
pub mod maven;
pub mod members;
pub mod npm;
pub mod nuget;
pub mod oci;
pub mod opm;
pub mod pypi;
pub mod rpm;
pub mod setup;
pub mod upload;

use std::collections::HashMap;
use std::sync::Arc;

use self::address::{native_address, native_address_scoped};
use async_trait::async_trait;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;

use crate::auth::{Need, Principal};
use crate::blob::ByteStream;
use crate::error::{ApiError, ApiResult};
use crate::model::{PackageType, Registry, RegistryKind};
use crate::state::AppState;
use crate::store::artifacts::FileRow;

/// One native request, already routed to a registry.
pub struct NativeRequest {
    pub method: Method,
    pub registry: Registry,
    pub principal: Principal,
    /// Path below `<format>/`, still percent-encoded.
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// Behind a mutex only so that the request is `Sync` (a `Body` is not) and can be borrowed
    /// across awaits; it is taken exactly once.
    pub body: std::sync::Mutex<Option<Body>>,
}

impl NativeRequest {
    /// Takes the body out of the request (for handlers that keep using the request's other parts).
    pub fn take_body(&self) -> Body {
        self.body
            .lock()
            .ok()
            .and_then(|mut b| b.take())
            .unwrap_or_else(Body::empty)
    }

    /// The path below `<format>/` as percent-decoded, non-empty segments.
    pub fn segments(&self) -> Vec<String> {
        self.path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect()
    }

    /// The request body as a stream of chunks for the blob store (chunked and `Expect:
    /// 100-continue` bodies included: hyper answers the expectation when the stream is first polled).
    pub fn into_body_stream(self) -> ByteStream {
        let body = self
            .body
            .into_inner()
            .ok()
            .flatten()
            .unwrap_or_else(Body::empty);
        Box::pin(body.into_data_stream().map_err(std::io::Error::other))
    }
}

/// `<root>/public.key` of a registry that signs its metadata (Debian, RPM).
pub async fn public_key_response(state: &AppState, reg: &Registry) -> ApiResult<Response> {
    let key = crate::signing::key_for(&state.db, reg).await?;
    let mut r = axum::response::IntoResponse::into_response(key.public_armored.clone());
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/pgp-keys"),
    );
    Ok(r)
}

#[async_trait]
pub trait Format: Send + Sync {
    fn package_type(&self) -> PackageType;
    /// The steps a user follows to use a registry of this format (see [`setup`]).
    fn client_setup(&self, c: &setup::SetupContext) -> setup::Setup;
    /// The one command that fetches `name` at `version` from the registry.
    fn pull_command(&self, c: &setup::SetupContext, name: &str, version: &str) -> String;
    /// Whether the format signs its metadata with the registry's OpenPGP key (its key can then
    /// be read and rotated through the management API).
    fn signs_metadata(&self) -> bool {
        false
    }
    /// The error in the form this format's clients read (npm's `error`, Cargo's `errors[].detail`
    /// and login challenge). Applied by the router to every error of a request for this format.
    fn error_response(&self, e: ApiError) -> Response {
        e.into_response()
    }
    /// Routes the format serves outside `/pkg/<account>/<registry>/<format>/` (OCI's `/v2`).
    fn routes(&self) -> Option<axum::Router<AppState>> {
        None
    }
    /// Endpoints that authenticate by themselves (a login that exchanges a password for a token)
    /// and so skip the router's read check. Everything else needs read access to the registry.
    fn authenticates_itself(&self, _method: &Method, _path: &str) -> bool {
        false
    }
    async fn handle(&self, state: &AppState, req: NativeRequest) -> ApiResult<Response>;
}

/// The registry of formats: one entry per package type, built once (formats are stateless).
pub struct Formats {
    by_segment: HashMap<&'static str, Arc<dyn Format>>,
}

/// Every format, by path segment and package type.
pub fn all() -> &'static Formats {
    static ALL: std::sync::OnceLock<Formats> = std::sync::OnceLock::new();
    ALL.get_or_init(Formats::new)
}

/// The format of a package type (every [`PackageType`] has one: [`Formats::new`] is checked by a
/// test).
pub fn for_type(t: PackageType) -> &'static dyn Format {
    all()
        .get(t.path_segment())
        .map(|f| f.as_ref())
        .unwrap_or(&generic::Generic)
}

impl Formats {
    fn new() -> Formats {
        let all: Vec<Arc<dyn Format>> = vec![
            Arc::new(generic::Generic),
            Arc::new(pypi::Pypi),
            Arc::new(npm::Npm),
            Arc::new(cargo::Cargo),
            Arc::new(maven::Maven),
            Arc::new(nuget::Nuget),
            Arc::new(composer::Composer),
            Arc::new(cran::Cran),
            Arc::new(opm::Opm),
            Arc::new(helm::Helm),
            Arc::new(debian::Debian),
            Arc::new(rpm::Rpm),
            Arc::new(oci::Docker),
            // One line per format.
        ];
        Formats {
            by_segment: all
                .into_iter()
                .map(|f| (f.package_type().path_segment(), f))
                .collect(),
        }
    }

    pub fn get(&self, segment: &str) -> Option<&Arc<dyn Format>> {
        self.by_segment.get(segment)
    }

    /// The routes formats serve outside `/pkg`, merged into the server's router.
    pub fn extra_routes(&self) -> axum::Router<AppState> {
        self.by_segment
            .values()
            .filter_map(|f| f.routes())
            .fold(axum::Router::new(), axum::Router::merge)
    }
}

/// The public URL of a registry's native root: `<base>/pkg/<account>/<registry>/<format>`, or
/// `<base>/pkg/<scope path>/-/<registry>/<format>` for a name unique in its owner only.
pub fn native_root(state: &AppState, reg: &Registry) -> String {
    format!(
        "{}/pkg/{}/{}",
        state.config.base_url,
        reg.native_prefix(),
        reg.package_type.path_segment()
    )
}

/// Kind-aware access to a registry's content. See the module documentation.
pub struct Resolver<'a> {
    pub state: &'a AppState,
}

impl Resolver<'_> {
    /// The registries whose content a read through `reg` can see, in resolution order (less the
    /// proxies' caches once the dependency-confusion guard hid them for this request).
    pub async fn read_chain(&self, reg: &Registry) -> ApiResult<Vec<Registry>> {
        let hidden = members::proxies_hidden();
        Ok(self
            .reached(reg)
            .await?
            .iter()
            .filter(|r| r.reg.kind != RegistryKind::Proxy)
            .filter(|r| !(hidden && r.reg.kind == RegistryKind::Cache))
            .map(|r| r.reg.clone())
            .collect())
    }

    /// The proxies a read through `reg` may ask upstream, in resolution order (after everything
    /// stored: what a proxy fetched is in its cache, which [`Resolver::read_chain`] already
    /// holds). None once the dependency-confusion guard hid them; not those reached through a
    /// group that does not allow remote proxying (they answer from their cache only).
    pub async fn proxies(&self, reg: &Registry) -> ApiResult<Vec<Registry>> {
        if members::proxies_hidden() {
            return Ok(Vec::new());
        }
        Ok(self
            .reached(reg)
            .await?
            .iter()
            .filter(|r| r.reg.kind == RegistryKind::Proxy && r.live)
            .map(|r| r.reg.clone())
            .collect())
    }

    /// Every registry a read through `reg` reaches, walked once per request (see [`members`]).
    pub async fn reached(&self, reg: &Registry) -> ApiResult<Arc<Vec<members::Reached>>> {
        if let Some(w) = members::remembered_walk(&reg.id) {
            return Ok(w);
        }
        // A walk this process made a moment ago from the same rows (see `members::Walks`): a
        // group's read then costs one package query, as a registry's does.
        if let Some(w) = self.state.walks.get(reg) {
            members::remember_walk(&reg.id, w.clone());
            return Ok(w);
        }
        let fingerprint = members::Walks::fingerprint_now(reg);
        let w = Arc::new(self.walk(reg).await?);
        self.state.walks.put(reg, fingerprint, w.clone());
        members::remember_walk(&reg.id, w.clone());
        Ok(w)
    }

    /// Every registry a read through `reg` reaches, proxies right after their caches; a proxy is
    /// live unless a group on the way forbids remote proxying.
    async fn walk(&self, reg: &Registry) -> ApiResult<Vec<members::Reached>> {
        let mut out: Vec<members::Reached> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut queue: std::collections::VecDeque<(Registry, bool)> =
            std::collections::VecDeque::from([(reg.clone(), true)]);
        let reached =
            |reg: Registry, live: bool, label: String| members::Reached { reg, live, label };
        while let Some((r, live)) = queue.pop_front() {
            if !seen.insert(r.id.clone()) {
                continue;
            }
            match r.kind {
                RegistryKind::Hosted | RegistryKind::Cache | RegistryKind::Trash => {
                    let members = r.members.clone();
                    let label = r.identifier.clone();
                    out.push(reached(r, true, label));
                    for m in self.state.db.registries_by_ids(&members).await? {
                        queue.push_back((m, live));
                    }
                }
                RegistryKind::Proxy => {
                    if let Some(cache) = self.state.db.cache_of_proxy(&r.id).await?
                        && seen.insert(cache.id.clone())
                    {
                        out.push(reached(cache, true, r.identifier.clone()));
                    }
                    let label = r.identifier.clone();
                    out.push(reached(r, live, label));
                }
                RegistryKind::Group => {
                    // Members in order, each fully before the next.
                    let live = live && r.allow_remote_proxying;
                    for m in self
                        .state
                        .db
                        .registries_by_ids(&r.members)
                        .await?
                        .into_iter()
                        .rev()
                    {
                        queue.push_front((m, live));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The package called `name` in each registry of the read chain that has one, in order. This
    /// is where the dependency-confusion guard decides (see [`members`]): when a hosted member has
    /// the name and `reg`'s allow-list does not name it, the proxies' caches are left out here and
    /// the proxies are not asked for the rest of the request.
    pub async fn packages(
        &self,
        reg: &Registry,
        name: &str,
    ) -> ApiResult<Vec<(Registry, crate::store::artifacts::PackageRow)>> {
        let hidden = members::proxies_hidden();
        let mut out = Vec::new();
        let mut owned = false;
        let reached = self.reached(reg).await?;
        let stored: Vec<&members::Reached> = reached
            .iter()
            .filter(|r| {
                r.reg.kind != RegistryKind::Proxy && !(hidden && r.reg.kind == RegistryKind::Cache)
            })
            .collect();
        // One query for every member: a group's read costs about what a registry's does.
        let ids: Vec<String> = stored.iter().map(|r| r.reg.id.clone()).collect();
        let mut found = match ids.as_slice() {
            [one] => self
                .state
                .db
                .package_by_name(one, name)
                .await?
                .into_iter()
                .collect(),
            _ => self.state.db.packages_by_name(&ids, name).await?,
        };
        for r in stored {
            if let Some(i) = found.iter().position(|p| p.registry_id == r.reg.id) {
                owned |= members::is_hosted(r);
                out.push((r, found.swap_remove(i)));
            }
        }
        if owned && !members::allow_listed(&reg.dc_allow_list, name) {
            members::hide_proxies();
            out.retain(|(r, _)| r.reg.kind != RegistryKind::Cache);
        }
        Ok(out
            .into_iter()
            .map(|(r, p)| {
                members::served_by(&r.label);
                (r.reg.clone(), p)
            })
            .collect())
    }

    /// The dependency-confusion guard for a request that names a package without listing it (a
    /// download): when a hosted member has `name` and the allow-list does not name it, proxies
    /// and their caches are out of this request.
    pub async fn guard(&self, reg: &Registry, name: &str) -> ApiResult<()> {
        if members::proxies_hidden() || members::allow_listed(&reg.dc_allow_list, name) {
            return Ok(());
        }
        let reached = self.reached(reg).await?;
        let has_proxies = reached
            .iter()
            .any(|r| matches!(r.reg.kind, RegistryKind::Proxy | RegistryKind::Cache));
        if !has_proxies {
            return Ok(());
        }
        let hosted: Vec<String> = reached
            .iter()
            .filter(|r| members::is_hosted(r))
            .map(|r| r.reg.id.clone())
            .collect();
        if !self
            .state
            .db
            .packages_by_name(&hosted, name)
            .await?
            .is_empty()
        {
            members::hide_proxies();
        }
        Ok(())
    }

    /// Names the member that holds `file` in `X-Arca-Served-By` (a proxy's cache by its proxy).
    pub async fn served(&self, reg: &Registry, file: &FileRow) -> ApiResult<()> {
        self.served_from(reg, &file.registry_id).await
    }

    /// Names the member `registry_id` (reached through `reg`) in `X-Arca-Served-By`.
    pub async fn served_from(&self, reg: &Registry, registry_id: &str) -> ApiResult<()> {
        if let Some(r) = self
            .reached(reg)
            .await?
            .iter()
            .find(|r| r.reg.id == registry_id)
        {
            members::served_by(&r.label);
        }
        Ok(())
    }

    /// Every package of every registry of the read chain (one query per registry), with the
    /// chain: what a whole-repository index (PACKAGES, index.yaml, Release, repodata) is built
    /// from and validated against. A proxy's cached packages of a name a hosted registry of the
    /// chain owns are left out (the dependency-confusion guard).
    pub async fn all_packages(
        &self,
        reg: &Registry,
    ) -> ApiResult<(Vec<Registry>, Vec<crate::store::artifacts::PackageRow>)> {
        let chain = self.read_chain(reg).await?;
        let mut pkgs = Vec::new();
        for r in &chain {
            let page = crate::store::artifacts::Page {
                offset: 0,
                limit: i64::MAX,
                sort: crate::store::paging::SortField::Name,
                descending: false,
                search: None,
            };
            pkgs.extend(
                self.state
                    .db
                    .list_packages(std::slice::from_ref(&r.id), &[], &page)
                    .await?
                    .1,
            );
        }
        // The dependency-confusion guard for whole-repository indexes: what a proxy cached of a
        // name a hosted registry of the chain has is left out (unless allow-listed).
        let kind = |id: &str| chain.iter().find(|r| r.id == id).map(|r| r.kind);
        let owned: std::collections::HashSet<String> = pkgs
            .iter()
            .filter(|p| kind(&p.registry_id) == Some(RegistryKind::Hosted))
            .map(|p| p.name.clone())
            .collect();
        pkgs.retain(|p| {
            kind(&p.registry_id) != Some(RegistryKind::Cache)
                || !owned.contains(&p.name)
                || members::allow_listed(&reg.dc_allow_list, &p.name)
        });
        Ok((chain, pkgs))
    }

    /// A search through `reg`: packages whose name contains `term`, each name once (from the
    /// first registry of the read chain that has it; a proxy's cache not for a name a hosted
    /// registry of the chain owns, unless allow-listed), paged by name; the total counts names.
    pub async fn search(
        &self,
        reg: &Registry,
        term: &str,
        offset: i64,
        limit: i64,
    ) -> ApiResult<(i64, Vec<crate::store::artifacts::PackageRow>)> {
        let chain = self.read_chain(reg).await?;
        let ids: Vec<String> = chain.iter().map(|r| r.id.clone()).collect();
        let (total, rows) = self
            .state
            .db
            .search_names(&ids, term, offset, limit)
            .await?;
        let rank = |id: &str| chain.iter().position(|r| r.id == id);
        let kind = |id: &str| rank(id).map(|i| chain[i].kind);
        let owned: std::collections::HashSet<&str> = rows
            .iter()
            .filter(|p| kind(&p.registry_id) == Some(RegistryKind::Hosted))
            .map(|p| p.name.as_str())
            .collect();
        let mut best: std::collections::BTreeMap<
            String,
            (usize, &crate::store::artifacts::PackageRow),
        > = std::collections::BTreeMap::new();
        for p in &rows {
            let Some(i) = rank(&p.registry_id) else {
                continue;
            };
            if kind(&p.registry_id) == Some(RegistryKind::Cache)
                && owned.contains(p.name.as_str())
                && !members::allow_listed(&reg.dc_allow_list, &p.name)
            {
                continue;
            }
            if best.get(&p.name).is_none_or(|(j, _)| i < *j) {
                best.insert(p.name.clone(), (i, p));
            }
        }
        Ok((total, best.into_values().map(|(_, p)| p.clone()).collect()))
    }

    /// Finds an immutable file by its registry-relative path along the read chain.
    pub async fn find_file(
        &self,
        reg: &Registry,
        path: &str,
    ) -> ApiResult<Option<(Registry, FileRow)>> {
        for r in self.read_chain(reg).await? {
            if let Some(f) = self.state.db.file_by_path(&r.id, path).await? {
                self.served(reg, &f).await?;
                return Ok(Some((r, f)));
            }
        }
        Ok(None)
    }

    /// Where an upload addressed to `reg` lands.
    pub async fn write_target(&self, reg: &Registry) -> ApiResult<Registry> {
        match reg.kind {
            RegistryKind::Hosted => Ok(reg.clone()),
            RegistryKind::Group => match &reg.deployment_registry_id {
                Some(id) => {
                    let dep = self.state.db.registry_by_id(id).await?.ok_or_else(|| {
                        ApiError::conflict(format!(
                            "the deployment registry of '{}' no longer exists",
                            reg.identifier
                        ))
                    })?;
                    // Checked when the group is configured; a write never lands in a cache.
                    if dep.kind != RegistryKind::Hosted {
                        return Err(ApiError::bad(
                            "deploymentRepositoryUuid",
                            format!(
                                "the deployment registry '{}' of '{}' is not a LOCAL registry",
                                dep.identifier, reg.identifier
                            ),
                        ));
                    }
                    Ok(dep)
                }
                None => Err(ApiError::MethodNotAllowed(format!(
                    "virtual registry '{}' has no deployment registry; uploads are not possible",
                    reg.identifier
                ))),
            },
            kind => Err(ApiError::MethodNotAllowed(format!(
                "registry '{}' is a {} registry; uploads are not possible",
                reg.identifier,
                kind.gitflic()
            ))),
        }
    }
}

/// Entry point for `/pkg/{account}/{registry}/{format}/...` and
/// `/pkg/{scope path}/-/{registry}/{format}/...`. Once the format is known, every error (unknown
/// registry, bad credentials, missing permission) is answered in its envelope.
pub async fn route(State(state): State<AppState>, req: Request) -> Response {
    let raw = req.uri().path().strip_prefix("/pkg/").unwrap_or("");
    let mut addr = native_address(raw);
    // `<account>/<registry>/<format>/-/...` or `<account>/<org>/<project>/-/<registry>/...`, for a
    // project named like a format: the shorthand if it names a registry, else the scoped form.
    let mut scoped = false;
    if let Some(a) = &addr
        && !a.scoped
        && let Some(alt) = native_address_scoped(raw)
        && !matches!(
            state.db.registry_by_identifier(&a.scope, a.registry).await,
            Ok(Some(_))
        )
    {
        addr = Some(alt);
        scoped = true;
    }
    let segment = addr.map(|a| a.format).unwrap_or("");
    match all().get(segment).cloned() {
        Some(format) => match dispatch(&state, format.as_ref(), req, scoped).await {
            Ok(r) => r,
            Err(e) => format.error_response(e),
        },
        None if native_address(raw).is_none() => {
            ApiError::not_found("expected /pkg/<account>/<registry>/<format>/...").into_response()
        }
        None => ApiError::not_found(format!("package type '{segment}' is not supported"))
            .into_response(),
    }
}

/// Finds the registry, authenticates the caller and hands the request to its format.
async fn dispatch(
    state: &AppState,
    format: &dyn Format,
    req: Request,
    scoped: bool,
) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let raw = parts.uri.path().strip_prefix("/pkg/").unwrap_or("");
    crate::http::check_segments(raw)?;
    let addr = if scoped {
        native_address_scoped(raw)
    } else {
        native_address(raw)
    };
    let Some(addr) = addr else {
        return Err(ApiError::not_found(
            "expected /pkg/<account>/<registry>/<format>/... or /pkg/<scope path>/-/<registry>/<format>/...",
        ));
    };
    let (account, identifier, segment) = (addr.scope.as_str(), addr.registry, addr.format);
    let path = addr.rest.to_string();
    let principal = state.principal(&parts.headers).await?;
    let found = if addr.scoped {
        state.db.registry_in_scope(account, identifier).await?
    } else {
        state.db.registry_by_identifier(account, identifier).await?
    };
    // A registry the caller cannot read answers exactly like one that does not exist: 401 to
    // callers without credentials, 404 to others. Formats that authenticate on their own routes
    // (npm's login) see the registry first and check for themselves.
    let registry = found.filter(|r| {
        format.authenticates_itself(&parts.method, &path) || principal.can(r, Need::Read)
    });
    let registry = match registry {
        Some(r) => r,
        None if principal.is_anonymous() => {
            return Err(ApiError::Unauthenticated("authentication required".into()));
        }
        None => {
            return Err(ApiError::not_found(format!(
                "registry '{account}/{identifier}' does not exist"
            )));
        }
    };
    if format.package_type() != registry.package_type {
        return Err(ApiError::not_found(format!(
            "registry package type mismatch: '{identifier}' is a {} registry, not {segment}",
            registry.package_type.harness()
        )));
    }
    let native = NativeRequest {
        method: parts.method,
        registry,
        principal,
        path,
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body: std::sync::Mutex::new(Some(body)),
    };
    let (resp, served) = members::scope(format.handle(state, native)).await;
    let mut resp = resp?;
    // The members that answered (a merged document names each contributor once, in order).
    if !served.is_empty()
        && let Ok(v) = axum::http::HeaderValue::from_str(&served.join(", "))
    {
        resp.headers_mut().insert("x-arca-served-by", v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {

    use std::sync::Arc;

    use super::{Resolver, members};
    use crate::model::RegistryKind;
    use crate::testing::{state, stored};

    #[test]
    fn every_package_type_has_its_format() {
        for t in crate::model::PackageType::ALL {
            assert_eq!(super::for_type(t).package_type(), t, "{t:?}");
        }
    }

    #[tokio::test]
    async fn read_chain_follows_kinds_in_order_once() {
        let t = state().await;
        let s = &t.state;
        let proxy = stored(s, "acme", "proxy", RegistryKind::Proxy, &[]).await;
        let mut cache = crate::testing::registry(
            s,
            "acme",
            "proxy-cache",
            crate::model::PackageType::Generic,
            RegistryKind::Cache,
            &[],
        )
        .await;
        cache.cache_of = Some(proxy.id.clone());
        s.db.insert_registry(&cache).await.unwrap();
        let bare_proxy = stored(s, "acme", "bare", RegistryKind::Proxy, &[]).await;
        let a = stored(s, "acme", "a", RegistryKind::Hosted, &[&proxy]).await;
        let b = stored(s, "acme", "b", RegistryKind::Hosted, &[]).await;
        let inner = stored(s, "acme", "inner", RegistryKind::Group, &[&b]).await;
        let outer = stored(
            s,
            "acme",
            "outer",
            RegistryKind::Group,
            &[&inner, &bare_proxy, &a, &b],
        )
        .await;
        let r = Resolver { state: s };
        let names = |chain: Vec<crate::model::Registry>| -> Vec<String> {
            chain.into_iter().map(|r| r.identifier).collect()
        };
        // A hosted registry, then its upstream proxies (a proxy reads through its cache).
        assert_eq!(names(r.read_chain(&a).await.unwrap()), ["a", "proxy-cache"]);
        // A proxy without a cache contributes nothing stored.
        assert!(r.read_chain(&bare_proxy).await.unwrap().is_empty());
        // Members in order, nested groups included; every registry once.
        assert_eq!(
            names(r.read_chain(&outer).await.unwrap()),
            ["b", "a", "proxy-cache"]
        );
        assert_eq!(names(r.read_chain(&inner).await.unwrap()), ["b"]);
    }

    /// Records one file of `package` 1.0 in `reg`.
    async fn put(s: &crate::state::AppState, reg: &crate::model::Registry, package: &str) {
        let blob = crate::blob::BlobInfo {
            sha256: format!("{:0>64}", package.len()),
            sha1: String::new(),
            md5: String::new(),
            sha512: String::new(),
            size: 1,
        };
        s.db.record_blob(&blob).await.unwrap();
        let path = format!("{package}/1.0/f");
        s.db.record_file(
            reg,
            crate::store::artifacts::NewFile {
                package,
                version: "1.0",
                path: &path,
                name: "f",
                blob: &blob,
                content_type: None,
                metadata: serde_json::json!({}),
            },
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn the_guard_and_remote_proxying_shape_what_a_group_reaches() {
        let t = state().await;
        let s = &t.state;
        let hosted = stored(s, "acme", "h", RegistryKind::Hosted, &[]).await;
        let proxy = stored(s, "acme", "p", RegistryKind::Proxy, &[]).await;
        let mut cache = crate::testing::registry(
            s,
            "acme",
            "p-cache",
            crate::model::PackageType::Generic,
            RegistryKind::Cache,
            &[],
        )
        .await;
        cache.cache_of = Some(proxy.id.clone());
        s.db.insert_registry(&cache).await.unwrap();
        put(s, &hosted, "owned").await;
        put(s, &cache, "owned").await;
        put(s, &cache, "free").await;
        let mut g = stored(s, "acme", "g", RegistryKind::Group, &[&hosted, &proxy]).await;
        let r = Resolver { state: s };
        let names = |pkgs: Vec<crate::store::artifacts::PackageRow>| -> Vec<(String, String)> {
            let mut v: Vec<(String, String)> = pkgs
                .into_iter()
                .map(|p| {
                    let from = if p.registry_id == hosted.id {
                        "h"
                    } else {
                        "cache"
                    };
                    (p.name, from.to_string())
                })
                .collect();
            v.sort();
            v
        };
        // The hosted member owns `owned`: the cache's copy is left out of indexes and lookups.
        assert_eq!(
            names(r.all_packages(&g).await.unwrap().1),
            [
                ("free".into(), "cache".into()),
                ("owned".into(), "h".into())
            ]
        );
        let found = r.packages(&g, "owned").await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0.id, hosted.id);
        // Within a request, the decision also hides the proxy and its cache from later lookups.
        let ((), served) = members::scope(async {
            r.packages(&g, "owned").await.unwrap();
            assert!(r.proxies(&g).await.unwrap().is_empty());
            let chain: Vec<String> = r
                .read_chain(&g)
                .await
                .unwrap()
                .into_iter()
                .map(|x| x.identifier)
                .collect();
            assert_eq!(chain, ["h"]);
        })
        .await;
        assert_eq!(served, ["h"]);
        // A name nobody hosts comes from the cache (named after its proxy).
        let ((), served) = members::scope(async {
            assert_eq!(r.packages(&g, "free").await.unwrap().len(), 1);
        })
        .await;
        assert_eq!(served, ["p"]);
        // Allow-listed, the cache's copy is back.
        g.dc_allow_list = vec!["own*".into()];
        assert_eq!(r.packages(&g, "owned").await.unwrap().len(), 2);
        assert_eq!(r.all_packages(&g).await.unwrap().1.len(), 3);
        // allowRemoteProxying: the proxy is asked only when the group allows it.
        assert!(r.proxies(&g).await.unwrap().is_empty());
        g.allow_remote_proxying = true;
        assert_eq!(r.proxies(&g).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_remembered_walk_follows_registry_changes() {
        let t = state().await;
        let s = &t.state;
        let mut h = stored(s, "acme", "h", RegistryKind::Hosted, &[]).await;
        let other = stored(s, "acme", "other", RegistryKind::Hosted, &[]).await;
        let mut g = stored(s, "acme", "g", RegistryKind::Group, &[&h]).await;
        let r = Resolver { state: s };
        let labels = |w: Arc<Vec<members::Reached>>| -> Vec<String> {
            w.iter().map(|x| x.label.clone()).collect()
        };
        assert_eq!(labels(r.reached(&g).await.unwrap()), ["h"]);
        // Remembered across requests: the same walk while nothing changed.
        let first = r.reached(&g).await.unwrap();
        assert!(Arc::ptr_eq(&first, &r.reached(&g).await.unwrap()));
        // A member written by this process: the next read walks again and sees it.
        h.description = Some("changed".into());
        s.db.update_registry(&h).await.unwrap();
        let w = r.reached(&g).await.unwrap();
        assert!(!Arc::ptr_eq(&first, &w));
        assert_eq!(w[0].reg.description.as_deref(), Some("changed"));
        // The group's own member list is part of what the walk is checked against.
        g.members.push(other.id.clone());
        assert_eq!(labels(r.reached(&g).await.unwrap()), ["h", "other"]);
    }

    #[tokio::test]
    async fn write_target_of_each_kind() {
        let t = state().await;
        let s = &t.state;
        let h = stored(s, "acme", "h", RegistryKind::Hosted, &[]).await;
        let p = stored(s, "acme", "p", RegistryKind::Proxy, &[]).await;
        let mut g = crate::testing::registry(
            s,
            "acme",
            "g",
            crate::model::PackageType::Generic,
            RegistryKind::Group,
            &[&h, &p],
        )
        .await;
        let r = Resolver { state: s };
        assert_eq!(r.write_target(&h).await.unwrap().id, h.id);
        assert!(matches!(
            r.write_target(&p).await,
            Err(crate::error::ApiError::MethodNotAllowed(_))
        ));
        assert!(matches!(
            r.write_target(&g).await,
            Err(crate::error::ApiError::MethodNotAllowed(_))
        ));
        g.deployment_registry_id = Some(h.id.clone());
        assert_eq!(r.write_target(&g).await.unwrap().id, h.id);
    }
}
