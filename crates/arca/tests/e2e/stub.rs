//! A programmable upstream for proxy tests: answers each path as told (content, a status, a
//! slow or truncated body), honours `If-None-Match`, and counts what it was asked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode, header};

/// What the stub answers for a path.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with this body and content type, an ETag derived from the body.
    Ok(Vec<u8>, &'static str),
    /// Like `Ok`, after a delay.
    Slow(Vec<u8>, Duration),
    /// A bare status (404, 500, 429...).
    Status(u16),
    /// Declares `declared` bytes, sends `body`, then ends the connection.
    Truncated(Vec<u8>, usize),
    /// 200 declaring the whole length: sends the first part at once and the rest only when the
    /// test opens the gate (so a test can see bytes arrive before the upstream is done).
    Gated(Vec<u8>, Vec<u8>, Arc<tokio::sync::Semaphore>),
}

#[derive(Default)]
struct State {
    replies: HashMap<String, Reply>,
    hits: HashMap<String, usize>,
    /// Requests answered 304 (the client's `If-None-Match` matched), by path.
    not_modified: HashMap<String, usize>,
    authorization: Vec<String>,
}

pub struct Stub {
    pub base: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Stub {
    pub async fn start() -> Stub {
        let state: Arc<Mutex<State>> = Arc::default();
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let state = shared.clone();
            async move { answer(&state, req.uri().path(), req.headers()).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Stub { base, state, task }
    }

    pub fn set(&self, path: &str, reply: Reply) {
        self.state
            .lock()
            .unwrap()
            .replies
            .insert(path.to_string(), reply);
    }

    /// Requests for `path` so far.
    pub fn hits(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Requests for `path` answered 304 Not Modified so far (revalidations).
    pub fn not_modified(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .not_modified
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Requests for any path so far.
    pub fn total(&self) -> usize {
        self.state.lock().unwrap().hits.values().sum()
    }

    /// The paths asked for so far (for failure messages).
    pub fn paths(&self) -> Vec<String> {
        self.state.lock().unwrap().hits.keys().cloned().collect()
    }

    /// Every `Authorization` header received.
    pub fn authorization(&self) -> Vec<String> {
        self.state.lock().unwrap().authorization.clone()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn etag(body: &[u8]) -> String {
    use sha2::Digest;
    format!("\"{}\"", &hex::encode(sha2::Sha256::digest(body))[..16])
}

async fn answer(state: &Mutex<State>, path: &str, headers: &HeaderMap) -> Response<Body> {
    let reply = {
        let mut s = state.lock().unwrap();
        *s.hits.entry(path.to_string()).or_default() += 1;
        if let Some(a) = headers.get(header::AUTHORIZATION) {
            s.authorization
                .push(a.to_str().unwrap_or_default().to_string());
        }
        s.replies.get(path).cloned()
    };
    let ok = |body: Vec<u8>, ctype: &str| {
        let tag = etag(&body);
        if headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == tag.as_bytes())
        {
            *state
                .lock()
                .unwrap()
                .not_modified
                .entry(path.to_string())
                .or_default() += 1;
            return Response::builder()
                .status(304)
                .header(header::ETAG, tag)
                .body(Body::empty())
                .unwrap();
        }
        Response::builder()
            .header(header::CONTENT_TYPE, ctype)
            .header(header::ETAG, tag)
            .body(Body::from(body))
            .unwrap()
    };
    match reply {
        None => Response::builder().status(404).body(Body::empty()).unwrap(),
        Some(Reply::Ok(body, ctype)) => ok(body, ctype),
        Some(Reply::Slow(body, delay)) => {
            tokio::time::sleep(delay).await;
            ok(body, "application/octet-stream")
        }
        Some(Reply::Status(code)) => Response::builder()
            .status(StatusCode::from_u16(code).unwrap())
            .body(Body::from("upstream error page"))
            .unwrap(),
        Some(Reply::Gated(first, rest, gate)) => {
            let len = first.len() + rest.len();
            let chunks = futures::stream::unfold(
                (Some(first), Some(rest), gate),
                |(first, rest, gate)| async move {
                    if let Some(f) = first {
                        return Some((
                            Ok::<_, std::io::Error>(bytes::Bytes::from(f)),
                            (None, rest, gate),
                        ));
                    }
                    let r = rest?;
                    gate.acquire().await.ok()?.forget();
                    Some((Ok(bytes::Bytes::from(r)), (None, None, gate)))
                },
            );
            let mut r = Response::new(Body::from_stream(chunks));
            r.headers_mut().insert(
                header::CONTENT_LENGTH,
                HeaderValue::from_str(&len.to_string()).unwrap(),
            );
            r
        }
        Some(Reply::Truncated(body, declared)) => {
            // A stream (no size of its own), so that the declared length is what goes out.
            let chunks = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(body))]);
            let mut r = Response::new(Body::from_stream(chunks));
            r.headers_mut().insert(
                header::CONTENT_LENGTH,
                HeaderValue::from_str(&declared.to_string()).unwrap(),
            );
            r
        }
    }
}

/// Listens where a stopped upstream was (`base`, its `http://host:port`) and counts the
/// connections made to it, closing each at once (the proxy sees a broken upstream): a proxy
/// that serves stale copies can be seen to have asked, an offline one not to.
pub struct Dead {
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Dead {
    pub async fn at(base: &str) -> Dead {
        let addr = base.trim_start_matches("http://").trim_end_matches('/');
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let connections: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
        let count = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(conn);
            }
        });
        Dead { connections, task }
    }

    pub fn count(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn reset(&self) {
        self.connections
            .store(0, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Dead {
    fn drop(&mut self) {
        self.task.abort();
    }
}
