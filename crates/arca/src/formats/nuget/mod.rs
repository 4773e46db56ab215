//! NuGet (NUGET registries): the NuGet v3 protocol.
//!
//! Layout under `<base>/pkg/<account>/<registry>/nuget/`:
//! * `index.json`: the service index;
//! * `PUT api/v2/package[/]` (also `PUT` on the root, as Harness does): push a `.nupkg`
//!   (multipart/form-data, chunked or not, or the raw package); `DELETE api/v2/package/<id>/<ver>`
//!   unlists, `POST` on the same URL relists (as on nuget.org; hard deletion, to the trash can, is
//!   a management-API operation); `PUT api/v2/symbolpackage[/]`: push a `.snupkg`;
//! * `package/<id>/index.json`, `package/<id>/<ver>/<id>.<ver>.nupkg`, `package/<id>/<ver>/<id>.nuspec`
//!   (PackageBaseAddress, lowercase ids and normalised versions);
//! * `registration/<id>/index.json`, `registration/<id>/page/<lower>/<upper>.json`,
//!   `registration/<id>/<ver>.json` (RegistrationsBaseUrl; pages of 64 versions, inlined in the
//!   index up to 128 versions, as nuget.org does);
//! * `query` (SearchQueryService) and `autocomplete` (SearchAutocompleteService).
//!
//! Packages are keyed by their lowercase id and versions by their lowercase normalised version
//! (`1.0` and `1.0.0.0` are `1.0.0`); the original spellings are kept in the metadata. The v2
//! OData feed is not served: every NuGet client since 3.0 speaks v3.

pub(crate) mod nuspec;
mod proxy;
mod v2;
pub(crate) mod version;

use crate::formats::setup::{Setup, SetupContext, inline, step};
use std::collections::BTreeMap;

use async_trait::async_trait;
use axum::Json;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::TryStreamExt;
use serde_json::{Value, json};

use super::upload::{Body as UploadBody, FileSpec, Upload};
use super::{Format, NativeRequest, Resolver, native_root};
use crate::auth::Need;
use crate::blob::{ByteStream, StagedBlob};
use crate::doc_cache::{self as cache, Doc};
use crate::download::serve_file;
use crate::error::{ApiError, ApiResult};
use crate::model::{PackageType, Registry, RegistryKind, rfc3339};
use crate::proxy::documents::CacheState;
use crate::state::AppState;
use crate::store::artifacts::{PackageRow, VersionRow};
use version::NuVersion;

pub struct Nuget;

/// Versions per registration page (nuget.org's page size).
const PAGE_SIZE: usize = 64;
/// Up to this many versions the pages are inlined in the registration index.
const INLINE_LIMIT: usize = 128;
const MAX_NUSPEC: u64 = 1 << 20;
/// nuget.org marks unlisted versions by this publish date; clients rely on it.
const UNLISTED_DATE: &str = "1900-01-01T00:00:00+00:00";

#[async_trait]
impl Format for Nuget {
    fn package_type(&self) -> PackageType {
        PackageType::Nuget
    }

    fn client_setup(&self, c: &SetupContext) -> Setup {
        let SetupContext {
            id,
            root,
            user,
            art,
            ver,
            ..
        } = c;
        Setup {
            title: "NuGet Client Setup",
            sections: vec![
                inline(
                    "Add the source",
                    vec![step(
                        "For a NuGet v3 client: NuGet.exe 5 or later (with mono on Linux), or `dotnet nuget` with the same arguments; the nuget 2.x of some Linux distributions speaks only v2 and fails",
                        &[(
                            "",
                            format!(
                                "nuget sources add -Name {id} -Source {root}/index.json -Username {user} -Password <TOKEN>"
                            ),
                        )],
                    )],
                ),
                inline(
                    "Push",
                    vec![step(
                        "Push",
                        &[(
                            "",
                            format!("nuget push {art}.{ver}.nupkg -Source {id} -ApiKey <TOKEN>"),
                        )],
                    )],
                ),
                inline(
                    "Install",
                    vec![step(
                        "Install",
                        &[(
                            "",
                            format!("nuget install {art} -Version {ver} -Source {id}"),
                        )],
                    )],
                ),
            ],
        }
    }

    fn pull_command(&self, c: &SetupContext, name: &str, version: &str) -> String {
        let url = &c.root;
        format!("nuget install {name} -Version {version} -Source {url}/index.json")
    }

    async fn handle(&self, state: &AppState, req: NativeRequest) -> ApiResult<Response> {
        let segs = req.segments();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let method = req.method.clone();
        let get = method == Method::GET || method == Method::HEAD;
        match (&method, segs.as_slice()) {
            (_, ["index.json"]) if get => service_index(state, &req),
            (&Method::PUT, [] | ["api", "v2", "package"]) => push(state, req, false).await,
            (&Method::PUT, ["api", "v2", "symbolpackage"]) => push(state, req, true).await,
            (&Method::DELETE, ["api", "v2", "package", id, ver] | [id, ver]) => {
                set_listed(state, &req, id, ver, false).await
            }
            (&Method::POST, ["api", "v2", "package", id, ver]) => {
                set_listed(state, &req, id, ver, true).await
            }
            (_, ["package", id, "index.json"]) if get => flat_versions(state, &req, id).await,
            (_, ["package", id, ver, file]) if get => flat_file(state, &req, id, ver, file).await,
            (_, ["registration", id, "index.json"]) if get => {
                registration_index(state, &req, id).await
            }
            (_, ["registration", id, "page", lower, upper]) if get => {
                let upper = upper.strip_suffix(".json").unwrap_or(upper);
                registration_page(state, &req, id, lower, upper).await
            }
            (_, ["registration", id, leaf]) if get => {
                let ver = leaf
                    .strip_suffix(".json")
                    .ok_or_else(|| ApiError::not_found("no such NuGet endpoint"))?;
                registration_leaf(state, &req, id, ver).await
            }
            (_, ["query"]) if get => search(state, &req).await,
            // v2: downloads by id and version, and the OData feed.
            (_, ["api", "v2", "package", id, ver]) if get => {
                let (lid, lver) = keys(id, ver)?;
                let file = format!("{lid}.{lver}.nupkg");
                flat_file(state, &req, &lid, &lver, &file).await
            }
            (_, ["api", "v2", rest @ ..]) if get => v2::handle(state, &req, rest).await,
            (_, ["autocomplete"]) if get => autocomplete(state, &req).await,
            _ => Err(ApiError::not_found("no such NuGet endpoint")),
        }
    }
}

fn json_doc(v: &Value) -> Doc {
    Doc::new(v.to_string(), "application/json")
}

fn service_index(state: &AppState, req: &NativeRequest) -> ApiResult<Response> {
    let root = native_root(state, &req.registry);
    let mut resources = Vec::new();
    // A proxy or a cache takes no pushes: only what it serves is advertised.
    if !matches!(req.registry.kind, RegistryKind::Proxy | RegistryKind::Cache) {
        resources.push(
            json!({"@id": format!("{root}/api/v2/package"), "@type": "PackagePublish/2.0.0"}),
        );
        resources.push(json!({"@id": format!("{root}/api/v2/symbolpackage"), "@type": "SymbolPackagePublish/4.9.0"}));
    }
    resources.extend([
        json!({"@id": format!("{root}/package/"), "@type": "PackageBaseAddress/3.0.0"}),
        // NuGet.exe `list` goes through the v2 feed.
        json!({"@id": format!("{root}/api/v2"), "@type": "LegacyGallery"}),
        json!({"@id": format!("{root}/api/v2"), "@type": "LegacyGallery/2.0.0"}),
    ]);
    // NuGet 5.x needs the -rc and -beta aliases besides the versioned ones.
    for t in [
        "",
        "/3.0.0-rc",
        "/3.0.0-beta",
        "/3.4.0",
        "/3.6.0",
        "/Versioned",
    ] {
        resources.push(json!({"@id": format!("{root}/registration/"), "@type": format!("RegistrationsBaseUrl{t}")}));
    }
    for t in ["", "/3.0.0-rc", "/3.0.0-beta", "/3.5.0"] {
        resources.push(
            json!({"@id": format!("{root}/query"), "@type": format!("SearchQueryService{t}")}),
        );
        resources.push(json!({"@id": format!("{root}/autocomplete"), "@type": format!("SearchAutocompleteService{t}")}));
    }
    let doc = json_doc(&json!({"version": "3.0.0", "resources": resources}));
    Ok(doc.respond(&req.headers, req.method == Method::HEAD))
}

// ---------------------------------------------------------------------------------------------
// Push.

/// The uploaded package: the body itself, or the first file part of a multipart body.
async fn stage_upload(up: &Upload<'_>, req: NativeRequest) -> ApiResult<StagedBlob> {
    let content_type = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body: ByteStream = req.into_body_stream();
    let Ok(boundary) = multer::parse_boundary(&content_type) else {
        return up.stage(body).await;
    };
    let mut multipart = multer::Multipart::new(body, boundary);
    let field = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::bad("package", format!("malformed multipart body: {e}")))?
        .ok_or_else(|| ApiError::bad("package", "the multipart body has no package"))?;
    let stream: ByteStream = Box::pin(field.map_err(std::io::Error::other));
    let staged = up.stage(stream).await?;
    // Let the client finish sending (there should be nothing after the package).
    while let Ok(Some(_)) = multipart.next_field().await {}
    Ok(staged)
}

/// Finds the manifest at the root of a package (zip) and returns its bytes.
pub(crate) fn read_manifest(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let pick = |names: Vec<&str>| {
        let found: Vec<&str> = names
            .into_iter()
            .filter(|n| !n.contains(['/', '\\']) && n.to_ascii_lowercase().ends_with(".nuspec"))
            .collect();
        match found.as_slice() {
            [one] => Ok(one.to_string()),
            [] => Err("the package has no .nuspec at its root".to_string()),
            _ => Err("the package has more than one .nuspec at its root".to_string()),
        }
    };
    crate::archive::zip_entry(path, pick, MAX_NUSPEC)
}

async fn push(state: &AppState, req: NativeRequest, symbols: bool) -> ApiResult<Response> {
    let up = Upload::begin(state, &req, UploadBody::Streamed).await?;
    let target = &up.target;
    let staged = stage_upload(&up, req).await?;
    let manifest = up.inspect(&staged, "package", read_manifest).await?;
    let spec = nuspec::parse(&manifest).map_err(|e| ApiError::bad("package", e))?;
    let is_symbols = spec
        .package_types
        .iter()
        .any(|t| t.eq_ignore_ascii_case("SymbolsPackage"));
    if symbols != is_symbols {
        return Err(ApiError::bad(
            "package",
            if symbols {
                "not a symbol package (its nuspec lacks the SymbolsPackage package type)"
            } else {
                "a symbol package (.snupkg) must be pushed to the symbol package endpoint"
            },
        ));
    }
    let lid = spec.id.to_ascii_lowercase();
    let norm = spec.version.normalized();
    let lver = norm.to_ascii_lowercase();
    let subject = format!("{}:{norm}", spec.id);
    let dir = format!("package/{lid}/{lver}");
    let exists = |what: &str| {
        ApiError::conflict(format!(
            "{what} {} {norm} already exists and this registry does not allow re-uploads",
            spec.id
        ))
    };
    if symbols {
        let pkg = state.db.package_by_name(&target.id, &lid).await?;
        let base = match &pkg {
            Some(p) => state.db.version_by_name(&p.id, &lver).await?,
            None => None,
        };
        if base.is_none() {
            return Err(ApiError::not_found(format!(
                "push the package {} {norm} before its symbols",
                spec.id
            )));
        }
        let name = format!("{lid}.{lver}.snupkg");
        let path = format!("{dir}/{name}");
        up.check_new(&subject, &path, || exists("the symbol package of"))
            .await?;
        up.record(
            staged,
            FileSpec {
                package: &lid,
                version: &lver,
                path: &path,
                name: &name,
                content_type: Some("application/octet-stream"),
                metadata: json!({"symbols": true}),
            },
            || exists("the symbol package of"),
        )
        .await?;
        return Ok(StatusCode::CREATED.into_response());
    }
    let nupkg_name = format!("{lid}.{lver}.nupkg");
    let nupkg_path = format!("{dir}/{nupkg_name}");
    up.check_new(&subject, &nupkg_path, || exists("package"))
        .await?;
    let blob = staged.info.clone();
    // The manifest is served on its own (PackageBaseAddress `.nuspec`).
    let spec_staged = up.stage_bytes(Bytes::from(manifest)).await?;
    let file = up
        .record(
            staged,
            FileSpec {
                package: &lid,
                version: &lver,
                path: &nupkg_path,
                name: &nupkg_name,
                content_type: Some("application/octet-stream"),
                metadata: json!({}),
            },
            || exists("package"),
        )
        .await?;
    let spec_name = format!("{lid}.nuspec");
    up.record(
        spec_staged,
        FileSpec {
            package: &lid,
            version: &lver,
            path: &format!("{dir}/{spec_name}"),
            name: &spec_name,
            content_type: Some("application/xml"),
            metadata: json!({}),
        },
        || exists("package"),
    )
    .await?;
    let meta = version_metadata(&spec, blob.size as i64, &blob.sha512);
    state
        .db
        .set_version_metadata(&file.version_id, &meta)
        .await?;
    if let Some(pkg) = state.db.package_by_name(&target.id, &lid).await?
        && pkg.metadata.get("id").is_none()
    {
        state
            .db
            .set_package_metadata(&pkg.id, &json!({"id": spec.id}))
            .await?;
    }
    Ok(StatusCode::CREATED.into_response())
}

/// The version metadata of a package with this manifest (what registrations and search read).
pub(super) fn version_metadata(spec: &nuspec::Nuspec, size: i64, sha512: &str) -> Value {
    let mut meta = json!({
        "id": spec.id,
        "version": spec.version.normalized(),
        "fullVersion": spec.version.full(),
        "prerelease": spec.version.is_prerelease(),
        "semver2": spec.version.is_semver2(),
        "listed": true,
        "dependencyGroups": spec.dependency_groups,
        "packageTypes": spec.package_types,
        "licenseExpression": spec.license_expression,
        "nupkg": {"size": size, "sha512": sha512},
    });
    for (k, v) in &spec.fields {
        if matches!(
            k.as_str(),
            "title"
                | "authors"
                | "owners"
                | "description"
                | "summary"
                | "tags"
                | "projectUrl"
                | "iconUrl"
                | "licenseUrl"
                | "requireLicenseAcceptance"
                | "releaseNotes"
                | "minClientVersion"
                | "language"
                | "copyright"
                | "readme"
        ) {
            meta[k] = json!(v);
        }
    }
    meta
}

async fn set_listed(
    state: &AppState,
    req: &NativeRequest,
    id: &str,
    ver: &str,
    listed: bool,
) -> ApiResult<Response> {
    let target = Resolver { state }.write_target(&req.registry).await?;
    req.principal.check(&target, Need::Write)?;
    let (lid, lver) = keys(id, ver)?;
    let pkg = state
        .db
        .package_by_name(&target.id, &lid)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("package '{id}' not found")))?;
    let v = state
        .db
        .version_by_name(&pkg.id, &lver)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("package {id} {ver} not found")))?;
    state
        .db
        .merge_version_metadata(&v.id, &json!({ "listed": listed }))
        .await?;
    Ok(if listed {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    }
    .into_response())
}

/// The storage keys of an id and a version as clients send them.
pub(super) fn keys(id: &str, ver: &str) -> ApiResult<(String, String)> {
    let v = NuVersion::parse(ver)
        .ok_or_else(|| ApiError::not_found(format!("'{ver}' is not a NuGet version")))?;
    Ok((id.to_ascii_lowercase(), v.normalized().to_ascii_lowercase()))
}

// ---------------------------------------------------------------------------------------------
// Reading.

/// One version as the read chain sees it (the first registry that has it wins).
pub(super) struct Entry {
    pub(super) version: NuVersion,
    pub(super) row: VersionRow,
}

/// The versions of `lid` along the read chain, ascending, with the packages they came from.
pub(super) async fn chain_versions(
    state: &AppState,
    reg: &Registry,
    lid: &str,
) -> ApiResult<(Vec<PackageRow>, Vec<Entry>)> {
    let pkgs = chain_packages(state, reg, lid).await?;
    let entries = versions_of(state, &pkgs).await?;
    Ok((pkgs, entries))
}

/// The package `lid` in each registry of the read chain (one indexed lookup each): enough to
/// validate a cached document.
async fn chain_packages(state: &AppState, reg: &Registry, lid: &str) -> ApiResult<Vec<PackageRow>> {
    Ok((Resolver { state })
        .packages(reg, lid)
        .await?
        .into_iter()
        .map(|(_, p)| p)
        .collect())
}

/// The versions of these packages, ascending by NuGet's order (the first package that has a
/// version wins).
async fn versions_of(state: &AppState, pkgs: &[PackageRow]) -> ApiResult<Vec<Entry>> {
    let mut by_key: BTreeMap<String, Entry> = BTreeMap::new();
    for pkg in pkgs {
        for row in state.db.all_versions(&pkg.id).await? {
            // Versions without a manifest (a symbol package alone cannot exist) are skipped.
            let Some(version) = row
                .metadata
                .get("fullVersion")
                .and_then(Value::as_str)
                .and_then(NuVersion::parse)
            else {
                continue;
            };
            by_key
                .entry(row.version.clone())
                .or_insert(Entry { version, row });
        }
    }
    let mut entries: Vec<Entry> = by_key.into_values().collect();
    entries.sort_by(|a, b| a.version.cmp(&b.version));
    Ok(entries)
}

pub(super) fn listed(row: &VersionRow) -> bool {
    row.metadata
        .get("listed")
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

async fn flat_versions(state: &AppState, req: &NativeRequest, id: &str) -> ApiResult<Response> {
    let lid = id.to_ascii_lowercase();
    let chain = (Resolver { state }).packages(&req.registry, &lid).await?;
    let upstream = proxy::flat_versions(state, &req.registry, &lid, false).await?;
    for (proxy, _, versions) in &upstream {
        if !versions.is_empty() {
            crate::formats::members::served_by(&proxy.identifier);
        }
    }
    let answered: Vec<_> = upstream
        .iter()
        .map(|(r, d, _)| (r.clone(), d.clone()))
        .collect();
    let stale = answered.iter().any(|(_, d)| d.state == CacheState::Stale);
    let upstream_key: String = answered.iter().map(|(_, d)| d.sha256.as_str()).collect();
    let pkgs: Vec<PackageRow> = chain.iter().map(|(_, p)| p.clone()).collect();
    let doc = state
        .docs
        .get_or_build(
            format!("nuget-flat|{}|{lid}|{upstream_key}", req.registry.id),
            cache::stamp(&pkgs),
            || async {
                // What a proxy cached is listed as its upstream lists it now; only where the
                // upstream is unavailable do the cached versions stand for it.
                let stored: Vec<PackageRow> =
                    crate::proxy::documents::without_answered_caches(&chain, &answered)
                        .into_iter()
                        .map(|(_, p)| p)
                        .collect();
                let mut all: BTreeMap<String, NuVersion> = versions_of(state, &stored)
                    .await?
                    .into_iter()
                    .map(|e| (e.row.version, e.version))
                    .collect();
                for (_, _, versions) in &upstream {
                    for v in versions.iter() {
                        if let Some(parsed) = NuVersion::parse(v) {
                            all.entry(v.clone()).or_insert(parsed);
                        }
                    }
                }
                if all.is_empty() {
                    return Err(ApiError::not_found(format!("package '{id}' not found")));
                }
                let mut sorted: Vec<(String, NuVersion)> = all.into_iter().collect();
                sorted.sort_by(|a, b| a.1.cmp(&b.1));
                let versions: Vec<&str> = sorted.iter().map(|(k, _)| k.as_str()).collect();
                Ok(json_doc(&json!({"versions": versions})))
            },
        )
        .await?;
    Ok(stale_marked(
        doc.respond(&req.headers, req.method == Method::HEAD),
        stale,
    ))
}

/// Marks a response built from an upstream document served stale.
fn stale_marked(mut resp: Response, stale: bool) -> Response {
    if stale {
        resp.headers_mut().insert(
            "x-arca-cache",
            header::HeaderValue::from_static(CacheState::Stale.header_value()),
        );
    }
    resp
}

async fn flat_file(
    state: &AppState,
    req: &NativeRequest,
    id: &str,
    ver: &str,
    file: &str,
) -> ApiResult<Response> {
    let (lid, lver) = keys(id, ver)?;
    let expected = [
        format!("{lid}.{lver}.nupkg"),
        format!("{lid}.nuspec"),
        format!("{lid}.{lver}.snupkg"),
    ];
    let lfile = file.to_ascii_lowercase();
    if !expected.contains(&lfile) {
        return Err(ApiError::not_found(format!(
            "no file '{file}' in {id} {ver}"
        )));
    }
    let resolver = Resolver { state };
    // A name a hosted member owns is never downloaded from a proxy member (unless allow-listed).
    resolver.guard(&req.registry, &lid).await?;
    let found = resolver
        .find_file(&req.registry, &format!("package/{lid}/{lver}/{lfile}"))
        .await?
        .map(|(_, f)| f);
    let f = match found {
        Some(f) => Some(f),
        None if !lfile.ends_with(".snupkg") => {
            proxy::fetch(state, &req.registry, &lid, &lver, &lfile).await?
        }
        None => None,
    }
    .ok_or_else(|| ApiError::not_found(format!("package {id} {ver} not found")))?;
    serve_file(state, &f, &req.method, &req.headers).await
}

/// URLs of one package's registration documents.
pub(super) struct Urls {
    pub(super) root: String,
    pub(super) lid: String,
}

impl Urls {
    fn index(&self) -> String {
        format!("{}/registration/{}/index.json", self.root, self.lid)
    }
    fn leaf(&self, lver: &str) -> String {
        format!("{}/registration/{}/{lver}.json", self.root, self.lid)
    }
    fn page(&self, lower: &str, upper: &str) -> String {
        format!(
            "{}/registration/{}/page/{lower}/{upper}.json",
            self.root, self.lid
        )
    }
    fn content(&self, lver: &str) -> String {
        format!(
            "{}/package/{}/{lver}/{}.{lver}.nupkg",
            self.root, self.lid, self.lid
        )
    }
}

pub(super) fn published(row: &VersionRow) -> String {
    if listed(row) {
        rfc3339(row.created_at)
    } else {
        UNLISTED_DATE.into()
    }
}

fn catalog_entry(urls: &Urls, e: &Entry) -> Value {
    let m = &e.row.metadata;
    let lver = &e.row.version;
    let leaf = urls.leaf(lver);
    let groups: Vec<Value> = m
        .get("dependencyGroups")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let gid = format!("{leaf}#dependencygroup/{i}");
            let deps: Vec<Value> = g
                .get("dependencies")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|d| {
                    let did = d.get("id").and_then(Value::as_str).unwrap_or("");
                    json!({
                        "@id": format!("{gid}/{}", did.to_ascii_lowercase()),
                        "@type": "PackageDependency",
                        "id": did,
                        "range": d.get("range"),
                        "registration": format!("{}/registration/{}/index.json", urls.root, did.to_ascii_lowercase()),
                    })
                })
                .collect();
            let mut group = json!({"@id": gid, "@type": "PackageDependencyGroup", "dependencies": deps});
            if let Some(tf) = g.get("targetFramework").and_then(Value::as_str) {
                group["targetFramework"] = json!(tf);
            }
            group
        })
        .collect();
    let text = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let tags: Vec<&str> = m
        .get("tags")
        .and_then(Value::as_str)
        .unwrap_or("")
        .split([' ', ','])
        .filter(|t| !t.is_empty())
        .collect();
    json!({
        "@id": leaf,
        "@type": "PackageDetails",
        "id": m.get("id"),
        "version": e.version.full(),
        "authors": text("authors"),
        "description": text("description"),
        "summary": text("summary"),
        "title": text("title"),
        "tags": tags,
        "iconUrl": text("iconUrl"),
        "licenseUrl": text("licenseUrl"),
        "licenseExpression": text("licenseExpression"),
        "projectUrl": text("projectUrl"),
        "language": text("language"),
        "minClientVersion": text("minClientVersion"),
        "requireLicenseAcceptance": text("requireLicenseAcceptance") == "true",
        "listed": listed(&e.row),
        "published": published(&e.row),
        "packageContent": urls.content(lver),
        "dependencyGroups": groups,
    })
}

/// One version of a registration as served: stored (its item generated here) or an upstream's
/// (its item relayed, URLs pointing at Arca).
struct Listed {
    version: NuVersion,
    lver: String,
    item: Value,
    listed: bool,
    published: String,
}

fn stored_item(urls: &Urls, e: &Entry) -> Listed {
    Listed {
        version: e.version.clone(),
        lver: e.row.version.clone(),
        item: json!({
            "@id": urls.leaf(&e.row.version),
            "@type": "Package",
            "commitId": e.row.id,
            "commitTimeStamp": rfc3339(e.row.updated_at),
            "catalogEntry": catalog_entry(urls, e),
            "packageContent": urls.content(&e.row.version),
            "registration": urls.index(),
        }),
        listed: listed(&e.row),
        published: published(&e.row),
    }
}

/// What the registration documents of one package are built from: the stored packages along
/// the read chain and the upstream registrations of its proxies.
struct Sources {
    chain: Vec<(Registry, PackageRow)>,
    upstream: proxy::Registrations,
    urls: Urls,
}

impl Sources {
    async fn of(state: &AppState, reg: &Registry, lid: &str) -> ApiResult<Sources> {
        let urls = Urls {
            root: native_root(state, reg),
            lid: lid.to_string(),
        };
        let chain = (Resolver { state }).packages(reg, lid).await?;
        let upstream = proxy::registrations(state, reg, lid, &urls).await?;
        for (proxy, _, _) in &upstream {
            crate::formats::members::served_by(&proxy.identifier);
        }
        Ok(Sources {
            chain,
            upstream,
            urls,
        })
    }

    /// The document cache's key part and stamp.
    fn key(&self) -> (String, String) {
        let upstream: String = self
            .upstream
            .iter()
            .map(|(_, d, _)| d.sha256.as_str())
            .collect();
        let pkgs: Vec<PackageRow> = self.chain.iter().map(|(_, p)| p.clone()).collect();
        (upstream, cache::stamp(&pkgs))
    }

    fn stale(&self) -> bool {
        self.upstream
            .iter()
            .any(|(_, d, _)| d.state == CacheState::Stale)
    }

    /// Every version, ascending: stored ones first by key, then the upstreams' in order. What a
    /// proxy cached is listed as its upstream lists it now; only where the upstream is
    /// unavailable do the cached versions stand for it.
    async fn items(&self, state: &AppState) -> ApiResult<Vec<Listed>> {
        let answered: Vec<_> = self
            .upstream
            .iter()
            .map(|(r, d, _)| (r.clone(), d.clone()))
            .collect();
        let stored: Vec<PackageRow> =
            crate::proxy::documents::without_answered_caches(&self.chain, &answered)
                .into_iter()
                .map(|(_, p)| p)
                .collect();
        let mut by_key: BTreeMap<String, Listed> = versions_of(state, &stored)
            .await?
            .iter()
            .map(|e| (e.row.version.clone(), stored_item(&self.urls, e)))
            .collect();
        for (_, _, pages) in &self.upstream {
            for u in pages.iter().flat_map(|p| p.iter()) {
                by_key.entry(u.lver.clone()).or_insert_with(|| Listed {
                    version: u.version.clone(),
                    lver: u.lver.clone(),
                    item: u.item.clone(),
                    listed: u.item["catalogEntry"]["listed"].as_bool().unwrap_or(true),
                    published: u.item["catalogEntry"]["published"]
                        .as_str()
                        .unwrap_or(UNLISTED_DATE)
                        .to_string(),
                });
            }
        }
        let mut all: Vec<Listed> = by_key.into_values().collect();
        all.sort_by(|a, b| a.version.cmp(&b.version));
        Ok(all)
    }
}

fn page(urls: &Urls, chunk: &[Listed], inline: bool) -> Value {
    let lower = chunk.first().map(|e| e.version.full()).unwrap_or_default();
    let upper = chunk.last().map(|e| e.version.full()).unwrap_or_default();
    let (lk, uk) = (
        chunk.first().map(|e| e.lver.as_str()).unwrap_or(""),
        chunk.last().map(|e| e.lver.as_str()).unwrap_or(""),
    );
    let mut p = json!({
        "@id": urls.page(lk, uk),
        "@type": "catalog:CatalogPage",
        "count": chunk.len(),
        "lower": lower,
        "upper": upper,
        "parent": urls.index(),
    });
    if inline {
        p["items"] = json!(chunk.iter().map(|l| l.item.clone()).collect::<Vec<_>>());
    }
    p
}

async fn registration_index(
    state: &AppState,
    req: &NativeRequest,
    id: &str,
) -> ApiResult<Response> {
    let lid = id.to_ascii_lowercase();
    let src = Sources::of(state, &req.registry, &lid).await?;
    let (upstream, stamp) = src.key();
    let doc = state
        .docs
        .get_or_build(
            format!("nuget-reg|{}|{lid}|{upstream}", req.registry.id),
            stamp,
            || async {
                let entries = src.items(state).await?;
                if entries.is_empty() {
                    return Err(ApiError::not_found(format!("package '{id}' not found")));
                }
                let inline = entries.len() <= INLINE_LIMIT;
                let pages: Vec<Value> = entries
                    .chunks(PAGE_SIZE)
                    .map(|c| page(&src.urls, c, inline))
                    .collect();
                Ok(json_doc(&json!({
                    "@id": src.urls.index(),
                    "@type": ["catalog:CatalogRoot", "PackageRegistration", "catalog:Permalink"],
                    "count": pages.len(),
                    "items": pages,
                })))
            },
        )
        .await?;
    Ok(stale_marked(
        doc.respond(&req.headers, req.method == Method::HEAD),
        src.stale(),
    ))
}

async fn registration_page(
    state: &AppState,
    req: &NativeRequest,
    id: &str,
    lower: &str,
    upper: &str,
) -> ApiResult<Response> {
    let lid = id.to_ascii_lowercase();
    let src = Sources::of(state, &req.registry, &lid).await?;
    let (upstream, stamp) = src.key();
    let doc = state
        .docs
        .get_or_build(
            format!(
                "nuget-page|{}|{lid}|{lower}|{upper}|{upstream}",
                req.registry.id
            ),
            stamp,
            || async {
                let entries = src.items(state).await?;
                let chunk = entries
                    .chunks(PAGE_SIZE)
                    .find(|c| {
                        c.first().map(|e| e.lver.as_str()) == Some(lower)
                            && c.last().map(|e| e.lver.as_str()) == Some(upper)
                    })
                    .ok_or_else(|| ApiError::not_found("no such registration page"))?;
                let mut p = page(&src.urls, chunk, true);
                p["@context"] = json!({"@vocab": "http://schema.nuget.org/schema#"});
                Ok::<_, ApiError>(json_doc(&p))
            },
        )
        .await?;
    Ok(stale_marked(
        doc.respond(&req.headers, req.method == Method::HEAD),
        src.stale(),
    ))
}

async fn registration_leaf(
    state: &AppState,
    req: &NativeRequest,
    id: &str,
    ver: &str,
) -> ApiResult<Response> {
    let (lid, lver) = keys(id, ver)?;
    let src = Sources::of(state, &req.registry, &lid).await?;
    let entries = src.items(state).await?;
    let e = entries
        .iter()
        .find(|e| e.lver == lver)
        .ok_or_else(|| ApiError::not_found(format!("package {id} {ver} not found")))?;
    let urls = &src.urls;
    let leaf = json!({
        "@id": urls.leaf(&lver),
        "@type": ["Package", "http://schema.nuget.org/catalog#Permalink"],
        "catalogEntry": urls.leaf(&lver),
        "listed": e.listed,
        "packageContent": urls.content(&lver),
        "published": e.published,
        "registration": urls.index(),
    });
    Ok(stale_marked(
        json_doc(&leaf).respond(&req.headers, req.method == Method::HEAD),
        src.stale(),
    ))
}

// ---------------------------------------------------------------------------------------------
// Search.

struct SearchParams {
    text: String,
    skip: i64,
    take: i64,
    prerelease: bool,
    semver2: bool,
}

fn search_params(req: &NativeRequest) -> ApiResult<SearchParams> {
    use crate::http::{query_get, query_int, query_pairs};
    let q = query_pairs(req.query.as_deref());
    let mut text = query_get(&q, "q").unwrap_or("").trim().to_ascii_lowercase();
    // `packageid:Foo` / `id:Foo` narrow to ids; everything searches ids here.
    for prefix in ["packageid:", "id:"] {
        if let Some(rest) = text.strip_prefix(prefix) {
            text = rest.trim().to_string();
        }
    }
    let flag = |k: &str| query_get(&q, k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let semver2 = query_get(&q, "semVerLevel")
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok())
        .is_some_and(|m| m >= 2);
    Ok(SearchParams {
        text,
        skip: query_int(&q, "skip")?.unwrap_or(0).max(0),
        take: query_int(&q, "take")?.unwrap_or(20).clamp(0, 1000),
        prerelease: flag("prerelease"),
        semver2,
    })
}

fn visible(e: &Entry, p: &SearchParams) -> bool {
    listed(&e.row)
        && (p.prerelease || !e.version.is_prerelease())
        && (p.semver2 || !e.version.is_semver2())
}

/// Packages matching the text, paged in the database (`totalHits` counts packages whose every
/// version may still be filtered out by `prerelease`/`semVerLevel`; nuget.org's counts are
/// approximate in the same way).
async fn search_packages(
    state: &AppState,
    req: &NativeRequest,
    p: &SearchParams,
) -> ApiResult<(i64, Vec<PackageRow>)> {
    // Through a group a name several members have is listed and counted once.
    (Resolver { state })
        .search(&req.registry, &p.text, p.skip, p.take)
        .await
}

/// Search: the packages stored along the read chain, then what the upstreams' search services
/// answer (passed through live, URLs on Arca) for ids not stored here; the packages cached from
/// a proxy stand for it only where its upstream did not answer.
async fn search(state: &AppState, req: &NativeRequest) -> ApiResult<Response> {
    let p = search_params(req)?;
    let root = native_root(state, &req.registry);
    let (total, pkgs) = search_packages(state, req, &p).await?;
    let upstream = proxy::search(
        state,
        &req.registry,
        proxy::Service::Search,
        req.query.as_deref(),
        &root,
    )
    .await?;
    let answered_caches: std::collections::HashSet<String> = (Resolver { state })
        .read_chain(&req.registry)
        .await?
        .into_iter()
        .filter(|r| {
            r.cache_of
                .as_ref()
                .is_some_and(|p| upstream.answered.contains(p))
        })
        .map(|r| r.id)
        .collect();
    let mut data = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for pkg in pkgs {
        if answered_caches.contains(&pkg.registry_id) || !seen.insert(pkg.name.clone()) {
            continue;
        }
        let (_, entries) = chain_versions(state, &req.registry, &pkg.name).await?;
        let shown: Vec<&Entry> = entries.iter().filter(|e| visible(e, &p)).collect();
        let Some(latest) = shown.last() else {
            continue;
        };
        let urls = Urls {
            root: root.clone(),
            lid: pkg.name.clone(),
        };
        let m = &latest.row.metadata;
        let entry = catalog_entry(&urls, latest);
        let versions: Vec<Value> = shown
            .iter()
            .map(|e| json!({"version": e.version.full(), "downloads": e.row.download_count, "@id": urls.leaf(&e.row.version)}))
            .collect();
        let authors: Vec<&str> = m
            .get("authors")
            .and_then(Value::as_str)
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .collect();
        let types: Vec<Value> = m
            .get("packageTypes")
            .and_then(Value::as_array)
            .filter(|t| !t.is_empty())
            .map(|t| t.iter().map(|n| json!({"name": n})).collect())
            .unwrap_or_else(|| vec![json!({"name": "Dependency"})]);
        data.push(json!({
            "@id": urls.index(),
            "@type": "Package",
            "registration": urls.index(),
            "id": m.get("id").cloned().unwrap_or(json!(pkg.name)),
            "version": latest.version.full(),
            "description": entry["description"],
            "summary": entry["summary"],
            "title": entry["title"],
            "iconUrl": entry["iconUrl"],
            "licenseUrl": entry["licenseUrl"],
            "projectUrl": entry["projectUrl"],
            "tags": entry["tags"],
            "authors": authors,
            "owners": [],
            "totalDownloads": pkg.download_count,
            "verified": false,
            "packageTypes": types,
            "versions": versions,
        }));
    }
    for item in upstream.data {
        let lid = item["id"].as_str().unwrap_or("").to_ascii_lowercase();
        if seen.insert(lid) {
            data.push(item);
        }
    }
    Ok(Json(json!({"totalHits": total + upstream.total, "data": data})).into_response())
}

/// Autocomplete: ids (`q=`) or an id's versions (`id=`) stored along the read chain, then what
/// the upstreams' autocomplete services answer (passed through live) that is not among them.
async fn autocomplete(state: &AppState, req: &NativeRequest) -> ApiResult<Response> {
    let p = search_params(req)?;
    let q = crate::http::query_pairs(req.query.as_deref());
    let root = native_root(state, &req.registry);
    let (mut total, mut data, key): (i64, Vec<Value>, fn(&Value) -> String) = if let Some(id) =
        crate::http::query_get(&q, "id")
    {
        let (_, entries) = chain_versions(state, &req.registry, &id.to_ascii_lowercase()).await?;
        let versions: Vec<Value> = entries
            .iter()
            .filter(|e| visible(e, &p))
            .map(|e| json!(e.version.full()))
            .collect();
        // Versions compare by their normalised form.
        let key = |v: &Value| {
            let s = v.as_str().unwrap_or("");
            NuVersion::parse(s)
                .map(|n| n.normalized().to_ascii_lowercase())
                .unwrap_or_else(|| s.to_ascii_lowercase())
        };
        (versions.len() as i64, versions, key)
    } else {
        let (total, pkgs) = search_packages(state, req, &p).await?;
        let names: Vec<Value> = pkgs
            .iter()
            .map(|p| p.metadata.get("id").cloned().unwrap_or(json!(p.name)))
            .collect();
        let key = |v: &Value| v.as_str().unwrap_or("").to_ascii_lowercase();
        (total, names, key)
    };
    let upstream = proxy::search(
        state,
        &req.registry,
        proxy::Service::Autocomplete,
        req.query.as_deref(),
        &root,
    )
    .await?;
    let mut seen: std::collections::HashSet<String> = data.iter().map(key).collect();
    for item in upstream.data {
        if seen.insert(key(&item)) {
            data.push(item);
            total += 1;
        }
    }
    Ok(Json(json!({"totalHits": total, "data": data})).into_response())
}
