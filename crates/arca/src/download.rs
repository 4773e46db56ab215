//! Serving stored files: HEAD, single `Range` requests, conditional requests (`ETag` and
//! `Last-Modified`), checksums headers.
//! Shared by every format.

use crate::http::header_value;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::artifacts::FileRow;

/// A `Range` that no byte of the body satisfies (or that cannot be read): answered 416.
#[derive(Debug, PartialEq, Eq)]
pub struct Unsatisfiable;

/// Parses a single `bytes=` range against a length. `Ok(None)`: no (usable) range, serve it all.
/// Multiple ranges are answered with the whole body, which RFC 9110 allows.
pub fn parse_range(value: &str, len: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(Unsatisfiable)?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| Unsatisfiable)?;
        if n == 0 {
            return Err(Unsatisfiable);
        }
        (len.saturating_sub(n), len)
    } else {
        let start: u64 = a.parse().map_err(|_| Unsatisfiable)?;
        let end = if b.is_empty() {
            len
        } else {
            b.parse::<u64>()
                .map_err(|_| Unsatisfiable)?
                .saturating_add(1)
                .min(len)
        };
        (start, end)
    };
    if range.0 >= len || range.0 >= range.1 {
        return Err(Unsatisfiable);
    }
    Ok(Some(range))
}

pub fn guess_content_type(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "json" => "application/json",
        "xml" | "pom" => "application/xml",
        "txt" | "asc" | "md" => "text/plain; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "gz" | "tgz" => "application/gzip",
        "zip" | "jar" | "whl" | "nupkg" => "application/zip",
        "tar" => "application/x-tar",
        "yaml" | "yml" => "application/yaml",
        _ => "application/octet-stream",
    }
}

/// Types a browser would render as a document able to run script.
fn is_active(content_type: &str) -> bool {
    let t = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    t.contains("html")
        || t.contains("xml")
        || t.contains("svg")
        || t.contains("script")
        || t == "application/pdf"
        || t == "text/xsl"
}

/// The headers every stored or relayed file is served with: its type, and what keeps user
/// content from running as the registry's origin.
pub fn user_content_headers(out: &mut HeaderMap, content_type: &str, name: &str) {
    out.insert(header::CONTENT_TYPE, header_value(content_type));
    // Stored files are user content served from the registry's origin: never sniffed into
    // something active, never able to run script against the origin, and active types
    // (HTML, SVG, XML, scripts) downloaded rather than rendered.
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    out.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    if is_active(content_type) {
        let name: String = name
            .chars()
            .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
            .collect();
        out.insert(
            header::CONTENT_DISPOSITION,
            header_value(&format!("attachment; filename=\"{name}\"")),
        );
    }
}

/// Answers GET or HEAD for a stored file, counting full downloads.
pub async fn serve_file(
    state: &AppState,
    file: &FileRow,
    method: &Method,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let resp = serve_blob(state, file, method, headers).await?;
    // A redirect to the store is a download too (the client fetches it from there).
    if *method == Method::GET
        && matches!(
            resp.status(),
            StatusCode::OK | StatusCode::TEMPORARY_REDIRECT
        )
    {
        state.record_download(file);
    }
    Ok(resp)
}

/// Answers GET or HEAD with the blob a file row describes (no download counting: also used for
/// derived documents such as a wheel's METADATA).
pub async fn serve_blob(
    state: &AppState,
    file: &FileRow,
    method: &Method,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let etag = format!("\"{}\"", file.sha256);
    let content_type = file
        .content_type
        .clone()
        .unwrap_or_else(|| guess_content_type(&file.name).to_string());
    let mut out = HeaderMap::new();
    out.insert(header::ETAG, header_value(&etag));
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    user_content_headers(&mut out, &content_type, &file.name);
    out.insert("x-checksum-sha256", header_value(&file.sha256));
    out.insert("x-checksum-sha1", header_value(&file.sha1));
    out.insert("x-checksum-md5", header_value(&file.md5));
    out.insert(
        header::LAST_MODIFIED,
        header_value(&crate::model::http_date(file.updated_at)),
    );
    if crate::http::not_modified(headers, &etag, Some(file.updated_at)) {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    // A store that hands out direct URLs (S3 with presigned redirects) serves whole downloads
    // itself, with the content type and disposition set here. Streamed instead: ranges, active
    // content (it needs the sandboxing headers above, which S3 cannot add), and clients that
    // may not follow redirects (no User-Agent: scripts and probes).
    if *method == Method::GET
        && !headers.contains_key(header::RANGE)
        && headers.contains_key(header::USER_AGENT)
        && !is_active(&content_type)
    {
        let mut overrides = vec![("content-type", content_type.as_str())];
        let disposition = out
            .get(header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if let Some(d) = &disposition {
            overrides.push(("content-disposition", d.as_str()));
        }
        if let Some(url) = state.blobs.download_url(&file.sha256, &overrides).await? {
            out.insert(header::LOCATION, header_value(&url));
            out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return Ok((StatusCode::TEMPORARY_REDIRECT, out).into_response());
        }
    }
    let len = file.size as u64;
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(r) => match parse_range(r, len) {
            Ok(r) => r,
            Err(Unsatisfiable) => {
                let mut resp = ApiError::RangeNotSatisfiable(format!(
                    "range '{r}' is not satisfiable for {len} bytes"
                ))
                .into_response();
                resp.headers_mut().insert(
                    header::CONTENT_RANGE,
                    header_value(&format!("bytes */{len}")),
                );
                return Ok(resp);
            }
        },
        None => None,
    };
    let (status, body_len) = match range {
        Some((a, b)) => {
            out.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {a}-{}/{len}", b - 1)),
            );
            (StatusCode::PARTIAL_CONTENT, b - a)
        }
        None => (StatusCode::OK, len),
    };
    out.insert(header::CONTENT_LENGTH, header_value(&body_len.to_string()));
    if *method == Method::HEAD {
        return Ok((status, out).into_response());
    }
    let read = state.blobs.get(&file.sha256, range).await?;
    Ok((status, out, Body::from_stream(read.stream)).into_response())
}

#[cfg(test)]
mod tests {
    use super::{Unsatisfiable, parse_range};

    #[test]
    fn ranges() {
        // No range, another unit or several ranges: the whole body.
        assert_eq!(parse_range("", 10), Ok(None));
        assert_eq!(parse_range("items=0-1", 10), Ok(None));
        assert_eq!(parse_range("bytes=0-1,3-4", 10), Ok(None));
        // End inclusive in the header, exclusive in the result; clamped to the length.
        assert_eq!(parse_range("bytes=0-0", 10), Ok(Some((0, 1))));
        assert_eq!(parse_range("bytes=2-5", 10), Ok(Some((2, 6))));
        assert_eq!(parse_range("bytes=2-", 10), Ok(Some((2, 10))));
        assert_eq!(parse_range("bytes=2-99", 10), Ok(Some((2, 10))));
        // Suffix ranges: the last n bytes, all of them when n exceeds the length.
        assert_eq!(parse_range("bytes=-3", 10), Ok(Some((7, 10))));
        assert_eq!(parse_range("bytes=-30", 10), Ok(Some((0, 10))));
        // Unsatisfiable or malformed: 416.
        for bad in [
            "bytes=10-",
            "bytes=5-2",
            "bytes=-0",
            "bytes=a-b",
            "bytes=3",
            "bytes=-",
        ] {
            assert_eq!(parse_range(bad, 10), Err(Unsatisfiable), "{bad}");
        }
        assert_eq!(parse_range("bytes=0-", 0), Err(Unsatisfiable));
        assert_eq!(
            parse_range(&format!("bytes=0-{}", u64::MAX), 10),
            Ok(Some((0, 10)))
        );
    }
}
