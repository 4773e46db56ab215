//! Generated metadata documents (packuments, simple pages, index files), cached per process and
//! validated on every request against the revisions of the packages they were built from.
//!
//! A server keeps no state that a request depends on: a cached document is served only when the
//! packages it came from still have the same revisions in the metadata store (one indexed lookup
//! per registry of the read chain), so a publish through any server process is visible at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::store::artifacts::PackageRow;

/// A rendered document with its validators (cheap to clone: the body is shared).
#[derive(Clone)]
pub struct Doc {
    pub body: Bytes,
    pub etag: String,
    pub content_type: &'static str,
    /// Since when this process has served this content under its key (epoch ms): the
    /// `Last-Modified` of documents whose clients revalidate by date. Not a time derived from the
    /// data, which can move backwards (deleting the most recently changed package) and would make
    /// a changed document look unmodified. [`DocCache::put`] keeps it across rebuilds with the same
    /// content and moves it to a later second when the content changes, since HTTP dates have a
    /// resolution of one second. Another process may date the same content differently: that costs
    /// a client one download, never a stale document.
    pub changed_at: i64,
    /// The body gzip-compressed, made on the first request that accepts it and kept with the
    /// document (a large index is compressed once, not per request).
    gzip: Arc<std::sync::OnceLock<Bytes>>,
}

impl Doc {
    pub fn new(body: impl Into<Bytes>, content_type: &'static str) -> Doc {
        let body = body.into();
        let etag = format!(
            "\"{}\"",
            hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(&body)[..16])
        );
        Doc {
            body,
            etag,
            content_type,
            changed_at: crate::model::now_ms(),
            gzip: Arc::default(),
        }
    }

    /// Like [`Self::respond`], gzip-compressed for a client that accepts it (`Accept-Encoding`):
    /// for large documents (a Helm `index.yaml`). The compressed representation has an ETag of
    /// its own, as HTTP wants for a different representation.
    pub fn respond_compressed(&self, headers: &HeaderMap, head: bool) -> Response {
        let gzip = headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(accepts_gzip);
        if !gzip {
            let mut r = self.respond(headers, head);
            r.headers_mut()
                .append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
            return r;
        }
        let body = self.gzip.get_or_init(|| {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            // Writing to memory cannot fail.
            let _ = enc.write_all(&self.body);
            enc.finish().unwrap_or_default().into()
        });
        let etag = format!("{}-gzip\"", self.etag.trim_end_matches('"'));
        let compressed = Doc {
            body: body.clone(),
            etag,
            content_type: self.content_type,
            changed_at: self.changed_at,
            gzip: Arc::default(),
        };
        let mut r = compressed.respond(headers, head);
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r.headers_mut()
            .append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        r
    }

    /// 200 with the body, or 304 when the client already has this version (by `ETag`).
    pub fn respond(&self, headers: &HeaderMap, head: bool) -> Response {
        self.respond_with(headers, head, None)
    }

    /// Like [`Self::respond`], also sending `Last-Modified` (see [`Doc::changed_at`]) and honouring
    /// `If-Modified-Since`: for clients that revalidate by date (apt; Cargo may).
    pub fn respond_dated(&self, headers: &HeaderMap, head: bool) -> Response {
        self.respond_with(headers, head, Some(self.changed_at))
    }

    fn respond_with(&self, headers: &HeaderMap, head: bool, modified_ms: Option<i64>) -> Response {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if let Ok(v) = HeaderValue::from_str(&self.etag) {
            h.insert(header::ETAG, v);
        }
        if let Some(ms) = modified_ms
            && let Ok(v) = HeaderValue::from_str(&crate::model::http_date(ms))
        {
            h.insert(header::LAST_MODIFIED, v);
        }
        if crate::http::not_modified(headers, &self.etag, modified_ms) {
            return (StatusCode::NOT_MODIFIED, h).into_response();
        }
        if head {
            return (StatusCode::OK, h).into_response();
        }
        (StatusCode::OK, h, self.body.clone()).into_response()
    }
}

/// Whether an `Accept-Encoding` value accepts gzip (listed, and not with `q=0`).
fn accepts_gzip(v: &str) -> bool {
    v.split(',').any(|part| {
        let mut it = part.split(';').map(str::trim);
        let coding = it.next().unwrap_or("");
        let refused = it.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

/// What a document was built from: the packages (id and revision) found along the read chain.
pub fn stamp(packages: &[PackageRow]) -> String {
    packages
        .iter()
        .map(|p| format!("{}:{}", p.id, p.revision))
        .collect::<Vec<_>>()
        .join(",")
}

const MAX_BYTES: usize = 32 << 20;

#[derive(Default)]
pub struct DocCache {
    inner: Mutex<Inner>,
    /// One builder per key at a time: concurrent misses wait for the first build instead of all
    /// rebuilding the same document (after a publish, every client asks at once).
    building: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, (String, Arc<Doc>)>,
    bytes: usize,
}

impl DocCache {
    pub fn get(&self, key: &str, stamp: &str) -> Option<Arc<Doc>> {
        let inner = self.inner.lock().ok()?;
        inner
            .map
            .get(key)
            .filter(|(s, _)| s == stamp)
            .map(|(_, d)| d.clone())
    }

    /// Returns the cached document for `stamp`, or builds it with `build` (once per key at a time).
    pub async fn get_or_build<F, Fut, E>(
        &self,
        key: String,
        stamp: String,
        build: F,
    ) -> Result<Arc<Doc>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Doc, E>>,
    {
        if let Some(doc) = self.get(&key, &stamp) {
            return Ok(doc);
        }
        self.single_flight(&key, || async {
            match self.get(&key, &stamp) {
                Some(doc) => Ok(doc),
                None => build().await.map(|doc| self.put(key.clone(), stamp, doc)),
            }
        })
        .await
    }

    /// Like [`Self::get_or_build`] for documents generated together (a Debian distribution's
    /// Release and indexes, an RPM repository's repodata): `build` returns all of them, each is
    /// cached under `<prefix>|<name>`, and the one called `name` is returned (None if `build`
    /// made no such document).
    pub async fn get_or_build_set<F, Fut, E>(
        &self,
        prefix: &str,
        stamp: &str,
        name: &str,
        build: F,
    ) -> Result<Option<Arc<Doc>>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<(String, Doc)>, E>>,
    {
        let key = |n: &str| format!("{prefix}|{n}");
        if let Some(doc) = self.get(&key(name), stamp) {
            return Ok(Some(doc));
        }
        self.single_flight(prefix, || async {
            if let Some(doc) = self.get(&key(name), stamp) {
                return Ok(Some(doc));
            }
            let mut wanted = None;
            for (n, doc) in build().await? {
                let doc = self.put(key(&n), stamp.to_string(), doc);
                if n == name {
                    wanted = Some(doc);
                }
            }
            Ok(wanted)
        })
        .await
    }

    /// Runs `work` with no other `work` for the same key running in this process.
    async fn single_flight<T, F, Fut>(&self, key: &str, work: F) -> T
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let lock = match self.building.lock() {
            Ok(mut b) => b.entry(key.to_string()).or_default().clone(),
            Err(_) => Arc::default(),
        };
        let guard = lock.lock().await;
        let result = work().await;
        drop(guard);
        if let Ok(mut b) = self.building.lock() {
            // Forget the lock once nobody else holds it.
            if b.get(key).is_some_and(|l| Arc::strong_count(l) <= 2) {
                b.remove(key);
            }
        }
        result
    }

    pub fn put(&self, key: String, stamp: String, mut doc: Doc) -> Arc<Doc> {
        if let Ok(inner) = self.inner.lock()
            && let Some((_, prev)) = inner.map.get(&key)
        {
            doc.changed_at = if prev.etag == doc.etag {
                prev.changed_at
            } else {
                doc.changed_at
                    .max((prev.changed_at.div_euclid(1000) + 1) * 1000)
            };
        }
        let doc = Arc::new(doc);
        if let Ok(mut inner) = self.inner.lock() {
            if doc.body.len() > MAX_BYTES / 8 {
                return doc;
            }
            if inner.bytes + doc.body.len() > MAX_BYTES {
                // Crude but bounded: start over rather than track recency.
                inner.map.clear();
                inner.bytes = 0;
            }
            inner.bytes += doc.body.len();
            if let Some((_, old)) = inner.map.insert(key, (stamp, doc.clone())) {
                inner.bytes -= old.body.len();
            }
        }
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_goes_to_clients_that_accept_it_with_an_etag_of_its_own() {
        use std::io::Read;
        assert!(accepts_gzip("gzip, deflate"));
        assert!(accepts_gzip("br;q=1.0, GZIP;q=0.5"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("gzip;q=0, br"));
        assert!(!accepts_gzip("identity"));
        let doc = Doc::new("entries: {}\n".repeat(100), "application/yaml");
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        let r = doc.respond_compressed(&h, false);
        assert_eq!(r.headers()[header::CONTENT_ENCODING], "gzip");
        let etag = r.headers()[header::ETAG].clone();
        assert_ne!(etag.to_str().unwrap(), doc.etag);
        let body = doc.gzip.get().unwrap().clone();
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut plain)
            .unwrap();
        assert_eq!(plain.as_bytes(), &doc.body[..]);
        h.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(
            doc.respond_compressed(&h, false).status(),
            StatusCode::NOT_MODIFIED
        );
        let r = doc.respond_compressed(&HeaderMap::new(), false);
        assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
    }

    #[test]
    fn changed_content_is_dated_a_later_second_unchanged_content_keeps_its_date() {
        let cache = DocCache::default();
        let first = cache.put("k".into(), "s1".into(), Doc::new("one", "text/plain"));
        // The same content rebuilt (another stamp, e.g. an unrelated package changed).
        let same = cache.put("k".into(), "s2".into(), Doc::new("one", "text/plain"));
        assert_eq!(same.changed_at, first.changed_at);
        // New content within the same second still gets a later HTTP date.
        let changed = cache.put("k".into(), "s3".into(), Doc::new("two", "text/plain"));
        assert!(changed.changed_at.div_euclid(1000) > first.changed_at.div_euclid(1000));
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_MODIFIED_SINCE,
            HeaderValue::from_str(&crate::model::http_date(first.changed_at)).unwrap(),
        );
        assert_eq!(
            first.respond_dated(&h, false).status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(changed.respond_dated(&h, false).status(), StatusCode::OK);
    }
}
