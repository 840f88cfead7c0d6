//! A minimal HTTP/1.1 server for workq's own endpoints (a worker's `/metrics`, `/healthz`
//! and `/readyz`, and the exporter's): GET and HEAD only, a handler that maps a path to a
//! complete [`Response`], on the caller's tokio runtime, stopped by a cancellation token.
//! It is hyper 1's server side with HTTP/1.1 only, so no router, TLS or HTTP/2 is built.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A client that has not sent its request headers in this long is disconnected, so idle
/// or slow connections cannot pile up.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What a handler answers to a GET of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type` header.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with this status, content type and body.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            content_type,
            body: body.into(),
        }
    }

    /// A `text/plain` response.
    pub fn text(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status, "text/plain; charset=utf-8", body)
    }

    /// 404, naming the path.
    pub fn not_found(path: &str) -> Self {
        Self::text(404, format!("no such endpoint: {path}\n"))
    }
}

/// Maps a request path (without the query) to its response, which may take a while to
/// work out (the exporter reads Redis): a future, run on the runtime's threads.
pub type Handler = Arc<dyn Fn(&str) -> Pending + Send + Sync>;

/// A response being worked out.
pub type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;

/// A handler whose responses are ready at once (a closure from path to [`Response`]).
pub fn ready_handler(f: impl Fn(&str) -> Response + Send + Sync + 'static) -> Handler {
    Arc::new(move |path: &str| -> Pending { Box::pin(std::future::ready(f(path))) })
}

/// Serves `listener` with `handler` until `shutdown` is cancelled, then closes the
/// listener and every open connection before returning (it does not wait for a request
/// in progress: what these endpoints serve is cheap to ask again). Accept errors (out of
/// file descriptors, say) are logged and retried after a short pause.
pub async fn serve(listener: TcpListener, handler: Handler, shutdown: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = shutdown.cancelled() => break,
            // Reaps finished connections, so the set stays as large as the open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "HTTP endpoint: cannot accept a connection");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    () = shutdown.cancelled() => break,
                }
                continue;
            }
        };
        let handler = Arc::clone(&handler);
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let handler = Arc::clone(&handler);
                async move { Ok::<_, Infallible>(respond(&handler, &req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "HTTP endpoint: connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.shutdown().await;
}

async fn respond(handler: &Handler, req: &Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let method = req.method();
    if method != Method::GET && method != Method::HEAD {
        let mut res = hyper::Response::new(Full::new(Bytes::from_static(
            b"only GET and HEAD are served\n",
        )));
        *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        res.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return res;
    }
    let r = handler(req.uri().path()).await;
    // hyper leaves out the body of a HEAD response itself.
    let mut res = hyper::Response::new(Full::new(Bytes::from(r.body)));
    *res.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = HeaderValue::from_str(r.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    res.headers_mut().insert(CONTENT_TYPE, content_type);
    res
}
