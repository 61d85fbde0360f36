//! The benchmark baseline: the machine's HTTP ceiling with the same server stack the gateway
//! uses (hyper + tokio), answering every request with the body the hello functions return.
//! `cargo run --release -p nimbus-local --example bench_hello_server -- PORT`

use std::convert::Infallible;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, service::service_fn};
use hyper_util::rt::TokioIo;

const BODY: &str = r#"{"message":"hello, world"}"#;

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    println!("{}", listener.local_addr().expect("addr").port());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|_req| async {
                Ok::<_, Infallible>(
                    Response::builder()
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from_static(BODY.as_bytes())))
                        .expect("response"),
                )
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
