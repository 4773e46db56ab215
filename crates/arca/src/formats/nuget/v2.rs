//! The read side of the NuGet v2 (OData/Atom) feed, for clients that still use it: `nuget list`
//! (NuGet.exe lists through the `LegacyGallery` resource of the service index) and v2-only
//! clients such as Debian's NuGet 2.8. Only the queries those clients send are understood:
//! `Search()`, `FindPackagesById()`, `Packages()` and `Packages(Id='..',Version='..')`, each with
//! `$skip`/`$top`, and their `/$count`. Pushes go to the same v2 URL (`PUT api/v2/package`).

use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use quick_xml::escape::escape;
use serde_json::Value;

use super::{Entry, NativeRequest, Urls, chain_versions, listed, published};
use crate::error::{ApiError, ApiResult};
use crate::formats::native_root;
use crate::http::{query_get, query_int, query_pairs};
use crate::model::rfc3339;
use crate::state::AppState;
use crate::store::artifacts::Page;

/// Most entries one v2 response carries (clients follow `$skip`).
const MAX_TOP: i64 = 100;

/// Strips OData quoting: `'abc'` → `abc` (with `''` as an escaped quote).
fn unquote(s: &str) -> String {
    let s = s.trim();
    let s = s
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .unwrap_or(s);
    s.replace("''", "'")
}

fn xml(body: String) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/atom+xml;type=feed;charset=utf-8"),
    );
    r
}

fn text(body: String) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// `Packages(Id='x',Version='y')` → `(x, y)`.
fn key_predicate(seg: &str) -> Option<(String, String)> {
    let inner = seg.strip_prefix("Packages(")?.strip_suffix(')')?;
    let mut id = None;
    let mut version = None;
    for part in inner.split(',') {
        let (k, v) = part.split_once('=')?;
        match k.trim() {
            "Id" => id = Some(unquote(v)),
            "Version" => version = Some(unquote(v)),
            _ => return None,
        }
    }
    Some((id?, version?))
}

pub async fn handle(state: &AppState, req: &NativeRequest, rest: &[&str]) -> ApiResult<Response> {
    let root = native_root(state, &req.registry);
    let base = format!("{root}/api/v2");
    match rest {
        [] => Ok(xml(format!(
            r#"<?xml version="1.0" encoding="utf-8"?><service xml:base="{base}/" xmlns="http://www.w3.org/2007/app" xmlns:atom="http://www.w3.org/2005/Atom"><workspace><atom:title>Default</atom:title><collection href="Packages"><atom:title>Packages</atom:title></collection></workspace></service>"#,
            base = escape(&base)
        ))),
        ["$metadata"] => {
            let mut r = METADATA.into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml;charset=utf-8"),
            );
            Ok(r)
        }
        [op] | [op, "$count"] => {
            let count = rest.len() == 2;
            let (name, entries) = if let Some((id, version)) = key_predicate(op) {
                ("Packages", exact(state, req, &id, &version).await?)
            } else {
                let name = op.strip_suffix("()").unwrap_or(op);
                let entries = match name {
                    "Search" => search(state, req).await?,
                    "FindPackagesById" => by_id(state, req).await?,
                    "Packages" => packages(state, req).await?,
                    _ => return Err(ApiError::not_found("no such NuGet v2 endpoint")),
                };
                (name, entries)
            };
            if count {
                return Ok(text(entries.len().to_string()));
            }
            Ok(xml(feed(&root, &base, name, &entries)))
        }
        _ => Err(ApiError::not_found("no such NuGet v2 endpoint")),
    }
    .map(|r| {
        if req.method == Method::HEAD {
            (r.status(), r.headers().clone()).into_response()
        } else {
            r
        }
    })
}

/// One feed entry: the entry plus whether it is the latest (stable / any) of its package.
struct Row {
    lid: String,
    entry: Entry,
    latest: bool,
    absolute_latest: bool,
}

fn paging(req: &NativeRequest) -> ApiResult<(usize, usize)> {
    let q = query_pairs(req.query.as_deref());
    let skip = query_int(&q, "$skip")?.unwrap_or(0).max(0) as usize;
    let top = query_int(&q, "$top")?.unwrap_or(MAX_TOP).clamp(0, MAX_TOP) as usize;
    Ok((skip, top))
}

fn prerelease_allowed(req: &NativeRequest) -> bool {
    let q = query_pairs(req.query.as_deref());
    query_get(&q, "includePrerelease").is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// Every listed version of a package, with its latest flags.
async fn rows_of(state: &AppState, req: &NativeRequest, lid: &str) -> ApiResult<Vec<Row>> {
    let (_, entries) = chain_versions(state, &req.registry, lid).await?;
    let entries: Vec<Entry> = entries.into_iter().filter(|e| listed(&e.row)).collect();
    let latest_stable = entries.iter().rposition(|e| !e.version.is_prerelease());
    let last = entries.len().checked_sub(1);
    Ok(entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| Row {
            lid: lid.to_string(),
            entry,
            latest: Some(i) == latest_stable,
            absolute_latest: Some(i) == last,
        })
        .collect())
}

async fn search(state: &AppState, req: &NativeRequest) -> ApiResult<Vec<Row>> {
    let q = query_pairs(req.query.as_deref());
    let term = unquote(query_get(&q, "searchTerm").unwrap_or("")).to_ascii_lowercase();
    let filter = query_get(&q, "$filter").unwrap_or("");
    let prerelease = prerelease_allowed(req);
    let (skip, top) = paging(req)?;
    let ids: Vec<String> = (super::Resolver { state })
        .read_chain(&req.registry)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    // Packages are paged in the database; with a latest-only filter there is one row each.
    let latest_only =
        filter.contains("IsLatestVersion") || filter.contains("IsAbsoluteLatestVersion");
    let page = Page {
        offset: if latest_only { skip as i64 } else { 0 },
        limit: if latest_only { top as i64 } else { 10_000 },
        sort: crate::store::paging::SortField::Name,
        descending: false,
        search: Some(term),
    };
    let (_, pkgs) = state.db.list_packages(&ids, &[], &page).await?;
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for p in pkgs {
        if !seen.insert(p.name.clone()) {
            continue;
        }
        for row in rows_of(state, req, &p.name).await? {
            let keep = if !prerelease && row.entry.version.is_prerelease() {
                false
            } else if latest_only {
                if prerelease {
                    row.absolute_latest
                } else {
                    row.latest
                }
            } else {
                true
            };
            if keep {
                out.push(row);
            }
        }
    }
    if latest_only {
        return Ok(out);
    }
    Ok(out.into_iter().skip(skip).take(top).collect())
}

async fn by_id(state: &AppState, req: &NativeRequest) -> ApiResult<Vec<Row>> {
    let q = query_pairs(req.query.as_deref());
    let id = unquote(query_get(&q, "id").unwrap_or("")).to_ascii_lowercase();
    let (skip, top) = paging(req)?;
    Ok(rows_of(state, req, &id)
        .await?
        .into_iter()
        .skip(skip)
        .take(top)
        .collect())
}

/// `Packages()` with no filter lists everything; `$filter=tolower(Id) eq 'x'` (what NuGet 2.x
/// sends to find a package) narrows to one id.
async fn packages(state: &AppState, req: &NativeRequest) -> ApiResult<Vec<Row>> {
    let q = query_pairs(req.query.as_deref());
    let filter = query_get(&q, "$filter").unwrap_or("");
    if let Some(rest) = filter
        .strip_prefix("tolower(Id) eq ")
        .or_else(|| filter.strip_prefix("Id eq "))
    {
        let id = unquote(rest).to_ascii_lowercase();
        let (skip, top) = paging(req)?;
        return Ok(rows_of(state, req, &id)
            .await?
            .into_iter()
            .skip(skip)
            .take(top)
            .collect());
    }
    search(state, req).await
}

async fn exact(
    state: &AppState,
    req: &NativeRequest,
    id: &str,
    version: &str,
) -> ApiResult<Vec<Row>> {
    let (lid, lver) = super::keys(id, version)?;
    let rows: Vec<Row> = rows_of(state, req, &lid)
        .await?
        .into_iter()
        .filter(|r| r.entry.row.version == lver)
        .collect();
    if rows.is_empty() {
        return Err(ApiError::not_found(format!(
            "package {id} {version} not found"
        )));
    }
    Ok(rows)
}

fn feed(root: &str, base: &str, name: &str, rows: &[Row]) -> String {
    let mut s = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><feed xml:base="{b}/" xmlns="http://www.w3.org/2005/Atom" xmlns:d="http://schemas.microsoft.com/ado/2007/08/dataservices" xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"><id>{b}/{name}</id><title type="text">{name}</title><updated>{now}</updated><link rel="self" title="{name}" href="{name}" />"#,
        b = escape(base),
        now = rfc3339(crate::model::now_ms()),
    );
    for r in rows {
        s.push_str(&entry_xml(root, base, r));
    }
    s.push_str("</feed>");
    s
}

fn entry_xml(root: &str, base: &str, r: &Row) -> String {
    let m = &r.entry.row.metadata;
    let field = |k: &str| escape(m.get(k).and_then(Value::as_str).unwrap_or("")).into_owned();
    let id = field("id");
    let version = escape(r.entry.version.full()).into_owned();
    let urls = Urls {
        root: root.to_string(),
        lid: r.lid.clone(),
    };
    let deps: Vec<String> = m
        .get("dependencyGroups")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .iter()
        .flat_map(|g| {
            let tf = g
                .get("targetFramework")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let deps = g
                .get("dependencies")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if deps.is_empty() {
                return vec![format!("::{tf}")];
            }
            deps.iter()
                .map(|d| {
                    format!(
                        "{}:{}:{tf}",
                        d.get("id").and_then(Value::as_str).unwrap_or(""),
                        d.get("range").and_then(Value::as_str).unwrap_or("")
                    )
                })
                .collect()
        })
        .collect();
    let (size, hash) = m
        .get("nupkg")
        .map(|n| {
            let size = n.get("size").and_then(Value::as_i64).unwrap_or(0);
            let hash = n
                .get("sha512")
                .and_then(Value::as_str)
                .and_then(|h| hex::decode(h).ok())
                .map(|b| base64::engine::general_purpose::STANDARD.encode(b))
                .unwrap_or_default();
            (size, hash)
        })
        .unwrap_or((0, String::new()));
    let entry_id = format!("{base}/Packages(Id='{id}',Version='{version}')");
    format!(
        r#"<entry><id>{entry_id}</id><category term="NuGetGallery.V2FeedPackage" scheme="http://schemas.microsoft.com/ado/2007/08/dataservices/scheme" /><link rel="edit" title="V2FeedPackage" href="Packages(Id='{id}',Version='{version}')" /><title type="text">{id}</title><summary type="text">{summary}</summary><updated>{updated}</updated><author><name>{authors}</name></author><content type="application/zip" src="{content}" /><m:properties><d:Id>{id}</d:Id><d:Version>{version}</d:Version><d:NormalizedVersion>{norm}</d:NormalizedVersion><d:Title>{title}</d:Title><d:Authors>{authors}</d:Authors><d:Description>{description}</d:Description><d:Summary>{summary}</d:Summary><d:Tags>{tags}</d:Tags><d:ProjectUrl>{project}</d:ProjectUrl><d:IconUrl>{icon}</d:IconUrl><d:LicenseUrl>{license}</d:LicenseUrl><d:RequireLicenseAcceptance m:type="Edm.Boolean">{rla}</d:RequireLicenseAcceptance><d:Dependencies>{deps}</d:Dependencies><d:DownloadCount m:type="Edm.Int32">{dl}</d:DownloadCount><d:VersionDownloadCount m:type="Edm.Int32">{dl}</d:VersionDownloadCount><d:IsLatestVersion m:type="Edm.Boolean">{latest}</d:IsLatestVersion><d:IsAbsoluteLatestVersion m:type="Edm.Boolean">{abs}</d:IsAbsoluteLatestVersion><d:IsPrerelease m:type="Edm.Boolean">{pre}</d:IsPrerelease><d:Listed m:type="Edm.Boolean">true</d:Listed><d:Published m:type="Edm.DateTime">{published}</d:Published><d:PackageSize m:type="Edm.Int64">{size}</d:PackageSize><d:PackageHash>{hash}</d:PackageHash><d:PackageHashAlgorithm>SHA512</d:PackageHashAlgorithm></m:properties></entry>"#,
        entry_id = escape(&entry_id),
        summary = field("summary"),
        updated = rfc3339(r.entry.row.updated_at),
        authors = field("authors"),
        content = escape(urls.content(&r.entry.row.version)),
        norm = escape(r.entry.version.normalized()),
        title = field("title"),
        description = field("description"),
        tags = field("tags"),
        project = field("projectUrl"),
        icon = field("iconUrl"),
        license = field("licenseUrl"),
        rla = field("requireLicenseAcceptance") == "true",
        deps = escape(deps.join("|")),
        dl = r.entry.row.download_count,
        latest = r.latest,
        abs = r.absolute_latest,
        pre = r.entry.version.is_prerelease(),
        published = published(&r.entry.row),
    )
}

/// The smallest EDMX document v2 clients accept when they probe `$metadata`.
const METADATA: &str = r#"<?xml version="1.0" encoding="utf-8"?><edmx:Edmx Version="1.0" xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx"><edmx:DataServices m:DataServiceVersion="2.0" m:MaxDataServiceVersion="2.0" xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"><Schema Namespace="NuGetGallery.OData" xmlns="http://schemas.microsoft.com/ado/2006/04/edm"><EntityType Name="V2FeedPackage" m:HasStream="true"><Key><PropertyRef Name="Id" /><PropertyRef Name="Version" /></Key><Property Name="Id" Type="Edm.String" Nullable="false" /><Property Name="Version" Type="Edm.String" Nullable="false" /><Property Name="NormalizedVersion" Type="Edm.String" /><Property Name="Authors" Type="Edm.String" /><Property Name="Dependencies" Type="Edm.String" /><Property Name="Description" Type="Edm.String" /><Property Name="DownloadCount" Type="Edm.Int32" Nullable="false" /><Property Name="IsLatestVersion" Type="Edm.Boolean" Nullable="false" /><Property Name="IsAbsoluteLatestVersion" Type="Edm.Boolean" Nullable="false" /><Property Name="IsPrerelease" Type="Edm.Boolean" Nullable="false" /><Property Name="Listed" Type="Edm.Boolean" Nullable="false" /><Property Name="PackageHash" Type="Edm.String" /><Property Name="PackageHashAlgorithm" Type="Edm.String" /><Property Name="PackageSize" Type="Edm.Int64" Nullable="false" /><Property Name="Published" Type="Edm.DateTime" Nullable="false" /><Property Name="Title" Type="Edm.String" /><Property Name="Summary" Type="Edm.String" /><Property Name="Tags" Type="Edm.String" /></EntityType><EntityContainer Name="FeedContext_x0060_1" m:IsDefaultEntityContainer="true"><EntitySet Name="Packages" EntityType="NuGetGallery.OData.V2FeedPackage" /><FunctionImport Name="Search" ReturnType="Collection(NuGetGallery.OData.V2FeedPackage)" EntitySet="Packages"><Parameter Name="searchTerm" Type="Edm.String" /><Parameter Name="targetFramework" Type="Edm.String" /><Parameter Name="includePrerelease" Type="Edm.Boolean" /></FunctionImport><FunctionImport Name="FindPackagesById" ReturnType="Collection(NuGetGallery.OData.V2FeedPackage)" EntitySet="Packages"><Parameter Name="id" Type="Edm.String" /></FunctionImport></EntityContainer></Schema></edmx:DataServices></edmx:Edmx>"#;
