//! HTTP plumbing shared by every route that is not about any one protocol: query strings, small
//! bodies read whole, header values and conditional requests.
//!
//! Generated documents and stored files carry two validators, an `ETag` and (where the data has a
//! modification time) `Last-Modified`; clients revalidate with either (`apt` and R send
//! `If-Modified-Since`, Cargo and npm `If-None-Match`), so both are checked in one place.

use axum::body::Body;
use axum::http::{HeaderMap, header};
use futures::TryStreamExt;

use crate::blob::ByteStream;
use crate::error::{ApiError, ApiResult};

/// Query string as ordered pairs; repeated keys (`package_type=A&package_type=B`) are kept.
pub fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

pub fn query_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

pub fn query_all<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

/// Parses a non-negative integer query parameter.
pub fn query_int(pairs: &[(String, String)], key: &str) -> ApiResult<Option<i64>> {
    match query_get(pairs, key) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad(
                    key,
                    format!("{key} must be a non-negative integer, got '{v}'"),
                )
            }),
    }
}

/// Reads a whole (small) body into memory, refusing more than `limit` bytes with 413 after
/// draining a bounded rest, so that the client, still sending, gets to read the error.
pub async fn read_body(body: Body, limit: usize) -> ApiResult<bytes::Bytes> {
    use futures::StreamExt;
    let mut stream: ByteStream = Box::pin(body.into_data_stream().map_err(std::io::Error::other));
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad("body", format!("reading the request body: {e}")))?;
        if buf.len() + chunk.len() > limit {
            crate::blob::drain(stream).await;
            return Err(ApiError::PayloadTooLarge(format!(
                "request body larger than {limit} bytes"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Refuses a declared `Content-Length` above `cap` with 413. Bodies without one (chunked) are
/// capped while they are read.
pub fn check_length(headers: &HeaderMap, cap: u64) -> ApiResult<()> {
    match declared_length(headers) {
        Some(n) if n > cap => Err(ApiError::PayloadTooLarge(format!(
            "request body of {n} bytes is larger than the limit of {cap} bytes"
        ))),
        _ => Ok(()),
    }
}

/// Refuses a path with an empty segment (`a//b`, a leading `/`). Formats split paths into
/// segments, and dropping an empty one would name another path than the one asked for: a file
/// stored or served as `etc/passwd` for `tool/1.0//etc/passwd`. One trailing slash is part of
/// some protocols (listings, PyPI's simple pages) and stays allowed.
pub fn check_segments(path: &str) -> ApiResult<()> {
    let inner = path.strip_suffix('/').unwrap_or(path);
    if !inner.is_empty() && inner.split('/').any(str::is_empty) {
        return Err(ApiError::bad(
            "path",
            "the path has an empty segment ('//'); remove the doubled slash",
        ));
    }
    Ok(())
}

/// The body size a request declares (`Content-Length`); None for a chunked body.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// A header value from text that is known to be printable (digests, names, URLs we built); an
/// unprintable one becomes empty rather than failing the response.
pub fn header_value(s: &str) -> axum::http::HeaderValue {
    axum::http::HeaderValue::from_str(s)
        .unwrap_or_else(|_| axum::http::HeaderValue::from_static(""))
}

/// Whether an `If-None-Match` value names `etag` (weak comparison, `*` matches anything).
pub fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == etag || t.trim_start_matches("W/") == etag)
}

/// Whether a GET or HEAD can be answered with 304, following RFC 9110 §13.2.2: `If-None-Match`
/// decides when present; otherwise `If-Modified-Since` is compared with `last_modified_ms`
/// (epoch milliseconds, compared at the one-second resolution of HTTP dates). An unparseable date
/// is ignored, as the RFC asks.
pub fn not_modified(headers: &HeaderMap, etag: &str, last_modified_ms: Option<i64>) -> bool {
    if let Some(inm) = headers.get(header::IF_NONE_MATCH) {
        return inm.to_str().is_ok_and(|v| etag_matches(v, etag));
    }
    let (Some(modified), Some(since)) = (last_modified_ms, headers.get(header::IF_MODIFIED_SINCE))
    else {
        return false;
    };
    let Some(since) = since
        .to_str()
        .ok()
        .and_then(|s| httpdate::parse_http_date(s.trim()).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
    else {
        return false;
    };
    modified.div_euclid(1000) <= since.as_secs() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn if_none_match_decides_when_present() {
        let etag = "\"abc\"";
        assert!(not_modified(
            &headers(&[(header::IF_NONE_MATCH, "\"x\", W/\"abc\"")]),
            etag,
            None
        ));
        assert!(!not_modified(
            &headers(&[(header::IF_NONE_MATCH, "\"x\"")]),
            etag,
            None
        ));
        // A mismatching ETag wins over a matching date.
        let h = headers(&[
            (header::IF_NONE_MATCH, "\"x\""),
            (header::IF_MODIFIED_SINCE, "Sun, 29 Nov 2026 17:00:00 GMT"),
        ]);
        assert!(!not_modified(&h, etag, Some(0)));
    }

    #[test]
    fn if_modified_since_compares_seconds() {
        // 2026-11-29T17:00:00Z
        let at = 1_795_971_600_000;
        let h = headers(&[(header::IF_MODIFIED_SINCE, "Sun, 29 Nov 2026 17:00:00 GMT")]);
        assert!(not_modified(&h, "\"e\"", Some(at + 999)), "same second");
        assert!(not_modified(&h, "\"e\"", Some(at - 60_000)), "older");
        assert!(!not_modified(&h, "\"e\"", Some(at + 1000)), "newer");
        assert!(!not_modified(&h, "\"e\"", None), "no Last-Modified known");
        let bad = headers(&[(header::IF_MODIFIED_SINCE, "yesterday")]);
        assert!(!not_modified(&bad, "\"e\"", Some(0)));
    }
}
