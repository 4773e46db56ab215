//! Proxies on several servers sharing the metadata store and the blob store: concurrent cold
//! misses spread over the servers cause one upstream fetch.

use crate::both_backends;
use crate::common::{Backend, Server};
use crate::proxy::gitflic_proxy;
use crate::stub::{Reply, Stub};

/// 60 concurrent cold requests for one file, spread over three servers: one upstream request,
/// the whole file for every client.
async fn misses_on_three_servers_fetch_once(b: Backend) {
    let stub = Stub::start().await;
    let a = Server::start(b).await;
    gitflic_proxy(
        &a,
        "gen",
        "generic",
        &format!("{}/files", stub.base),
        "mirror",
        "UPSTREAM-SECRET",
        0,
    )
    .await;
    let data = a.data_dir().display().to_string();
    let mut servers = vec![a];
    for _ in 0..2 {
        let s = Server::start_with(
            tempfile::tempdir().unwrap(),
            servers[0].database_url.clone(),
            &[
                ("ARCA_ADMIN_TOKEN", servers[0].token.as_str()),
                ("ARCA_DATA_DIR", data.as_str()),
            ],
        )
        .await;
        servers.push(s);
    }
    let big: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    let path = "/files/tool/1.0/big.bin";
    stub.set(
        path,
        Reply::Slow(big.clone(), std::time::Duration::from_millis(400)),
    );
    let all = futures::future::join_all((0..60).map(|i| {
        let s = &servers[i % 3];
        let req = s
            .client
            .get(s.url("/pkg/default/gen/generic/tool/1.0/big.bin"))
            .header("x-api-key", &s.token);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
        }
    }))
    .await;
    for (status, body) in &all {
        assert_eq!(*status, 200, "{}", String::from_utf8_lossy(body));
        assert!(*body == big, "every client gets the whole file");
    }
    assert_eq!(stub.hits(path), 1, "one upstream request for three servers");
}

both_backends!(misses_on_three_servers_fetch_once);
