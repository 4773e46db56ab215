//! A test balancer: every request goes to the next server in turn (no stickiness of any kind,
//! not even per connection), streamed both ways.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;

/// A balancer that sends every request to the next node in turn (no stickiness of any kind,
/// not even per connection), counting what each node got.
pub struct RoundRobin {
    pub addr: String,
    pub counts: Arc<Vec<AtomicUsize>>,
}

pub async fn round_robin(nodes: Vec<String>) -> RoundRobin {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let counts: Arc<Vec<AtomicUsize>> =
        Arc::new(nodes.iter().map(|_| AtomicUsize::new(0)).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let nodes = Arc::new(nodes);
    let c2 = counts.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let (client, nodes, next, counts) =
                (client.clone(), nodes.clone(), next.clone(), c2.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (client, nodes, next, counts) =
                            (client.clone(), nodes.clone(), next.clone(), counts.clone());
                        async move {
                            let i = next.fetch_add(1, Ordering::SeqCst) % nodes.len();
                            counts[i].fetch_add(1, Ordering::SeqCst);
                            let (parts, body) = req.into_parts();
                            let url = format!(
                                "{}{}",
                                nodes[i],
                                parts
                                    .uri
                                    .path_and_query()
                                    .map(|p| p.as_str())
                                    .unwrap_or("/")
                            );
                            let mut headers = parts.headers.clone();
                            headers.remove(hyper::header::HOST);
                            let body = reqwest::Body::wrap_stream(body.into_data_stream());
                            let resp = client
                                .request(parts.method, url)
                                .headers(headers)
                                .body(body)
                                .send()
                                .await;
                            let out = match resp {
                                Ok(r) => {
                                    let mut b = hyper::Response::builder().status(r.status());
                                    for (k, v) in r.headers() {
                                        b = b.header(k, v);
                                    }
                                    let stream = r.bytes_stream().map(|c| {
                                        c.map(hyper::body::Frame::data)
                                            .map_err(std::io::Error::other)
                                    });
                                    b.body(BodyExt::boxed(http_body_util::StreamBody::new(stream)))
                                        .expect("response")
                                }
                                Err(e) => hyper::Response::builder()
                                    .status(502)
                                    .body(
                                        http_body_util::Full::new(bytes::Bytes::from(
                                            e.to_string(),
                                        ))
                                        .map_err(|never| match never {})
                                        .boxed(),
                                    )
                                    .expect("response"),
                            };
                            Ok::<_, std::convert::Infallible>(out)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(sock), svc)
                    .await;
            });
        }
    });
    RoundRobin { addr, counts }
}
