//! A recording HTTP proxy between nimbus and the AWS endpoint: every request nimbus sends is
//! recorded as an AWS operation and classified read or write, so tests count calls without
//! trusting nimbus's own report. It can also inject faults (fail every request after N writes,
//! as a lost network would) and slow every request down. For the fields moto leaves out of its
//! answers it can fill them as AWS documents them ([`Proxy::fill_domain_targets`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// One request nimbus made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path (with the query).
    pub path: String,
    /// The AWS operation: `CreateRole`, `DescribeTable`, or `PUT /2015-03-31/functions` for REST.
    pub operation: String,
    /// Whether it changes something.
    pub write: bool,
    /// The request's body, as text.
    pub body: String,
}

/// The regional target [`Proxy::fill_domain_targets`] gives every custom domain name.
pub const DOMAIN_TARGET: &str = "d-abcdef1234.execute-api.us-east-1.amazonaws.com";
/// The hosted zone of API Gateway's regional endpoints in us-east-1, as AWS documents it.
pub const DOMAIN_ZONE: &str = "Z1UJRXOUMOOFQ8";

#[derive(Default)]
struct Shared {
    calls: Vec<Call>,
    fail_after_writes: Option<usize>,
    delay: Duration,
    fill_domain_targets: bool,
}

/// The proxy; stops with the test's runtime.
pub struct Proxy {
    pub url: String,
    shared: Arc<Mutex<Shared>>,
    _runtime: tokio::runtime::Runtime,
}

impl Proxy {
    /// A proxy in front of `upstream` (`http://host:port`).
    pub fn start(upstream: &str) -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let upstream = upstream.trim_end_matches('/').to_string();
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let state = shared.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (client, upstream, state) = (client.clone(), upstream.clone(), state.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        forward(req, client.clone(), upstream.clone(), state.clone())
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Proxy {
            url: format!("http://{addr}"),
            shared,
            _runtime: runtime,
        }
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().unwrap().calls.clone()
    }

    /// Forgets the calls so far.
    pub fn clear(&self) {
        self.shared.lock().unwrap().calls.clear();
    }

    /// The write calls so far.
    pub fn writes(&self) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.write).collect()
    }

    /// After `n` more writes, every request fails with 503 until [`Proxy::heal`].
    pub fn fail_after_writes(&self, n: usize) {
        let mut s = self.shared.lock().unwrap();
        let done = s.calls.iter().filter(|c| c.write).count();
        s.fail_after_writes = Some(done + n);
    }

    /// Stops failing.
    pub fn heal(&self) {
        self.shared.lock().unwrap().fail_after_writes = None;
    }

    /// Adds `ApiGatewayDomainName` and `HostedZoneId` to the domain name configurations of
    /// API Gateway v2's answers where they lack them: AWS always returns them (the regional
    /// target a CNAME points at), moto 5.2 echoes the configurations as they were sent.
    pub fn fill_domain_targets(&self) {
        self.shared.lock().unwrap().fill_domain_targets = true;
    }

    /// Every request waits `delay` first.
    pub fn slow_down(&self, delay: Duration) {
        self.shared.lock().unwrap().delay = delay;
    }
}

async fn forward(
    req: Request<Incoming>,
    client: Client<HttpConnector, Full<Bytes>>,
    upstream: String,
    state: Arc<Mutex<Shared>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_else(|| "/".into());
    let (operation, write) = classify(&parts, &body, &path);
    let (delay, failing, fill) = {
        let mut s = state.lock().unwrap();
        let writes = s.calls.iter().filter(|c| c.write).count();
        let failing = s.fail_after_writes.is_some_and(|n| writes >= n);
        if !failing {
            s.calls.push(Call {
                method: parts.method.to_string(),
                path: path.clone(),
                operation,
                write,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        let fill = s.fill_domain_targets && path.starts_with("/v2/domainnames");
        (s.delay, failing, fill)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if failing {
        return Ok(Response::builder()
            .status(503)
            .body(Full::new(Bytes::from_static(b"injected fault")))
            .unwrap());
    }
    let mut upstream_req = Request::builder()
        .method(parts.method.clone())
        .uri(format!("{upstream}{path}"));
    for (k, v) in &parts.headers {
        upstream_req = upstream_req.header(k, v);
    }
    let upstream_req = upstream_req.body(Full::new(body)).unwrap();
    match client.request(upstream_req).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            let mut body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            if fill {
                body = with_domain_targets(body);
                parts.headers.remove(hyper::header::CONTENT_LENGTH);
            }
            Ok(Response::from_parts(parts, Full::new(body)))
        }
        Err(e) => Ok(Response::builder()
            .status(502)
            .body(Full::new(Bytes::from(format!("proxy: {e}"))))
            .unwrap()),
    }
}

/// `body` with every `domainNameConfigurations` entry given the target and zone AWS returns.
fn with_domain_targets(body: Bytes) -> Bytes {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return body;
    };
    let mut fill = |d: &mut serde_json::Value| {
        for c in d["domainNameConfigurations"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            if c.get("apiGatewayDomainName").is_none() {
                c["apiGatewayDomainName"] = DOMAIN_TARGET.into();
                c["hostedZoneId"] = DOMAIN_ZONE.into();
            }
        }
    };
    if let Some(items) = v.get_mut("items").and_then(|i| i.as_array_mut()) {
        items.iter_mut().for_each(&mut fill);
    } else if v.get("domainNameConfigurations").is_some() {
        fill(&mut v);
    } else {
        return body;
    }
    Bytes::from(serde_json::to_vec(&v).unwrap())
}

/// The AWS operation of a request and whether it writes.
fn classify(parts: &hyper::http::request::Parts, body: &[u8], path: &str) -> (String, bool) {
    // JSON protocols (DynamoDB, CloudWatch Logs, SQS) name the operation in a header.
    if let Some(target) = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        let op = target.rsplit('.').next().unwrap_or(target).to_string();
        let write = !is_read(&op);
        return (op, write);
    }
    // Query protocols (IAM, SNS, STS) put `Action=...` in the form body.
    let text = String::from_utf8_lossy(body);
    if let Some(action) = text.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        let write = !is_read(action);
        return (action.to_string(), write);
    }
    // REST (S3, Lambda, API Gateway, Scheduler): the method says it.
    let method = parts.method.as_str();
    let write = !matches!(method, "GET" | "HEAD");
    (
        format!("{method} {}", path.split('?').next().unwrap_or(path)),
        write,
    )
}

fn is_read(op: &str) -> bool {
    ["Get", "List", "Describe", "Head", "Query", "Scan", "Filter"]
        .iter()
        .any(|p| op.starts_with(p))
}
