//! The HTTP side: a hyper server that answers `GET /metrics` and `GET /healthz` and nothing
//! else, with every request bounded in time and size.
//!
//! Each connection is its own task, so one slow client holds up no other; at most
//! [`MAX_CONNECTIONS`] are served at once (more are closed at once, so a flood cannot take the
//! process's file descriptors), headers must arrive within [`HEADER_READ_TIMEOUT`] (which also
//! closes idle keep-alive connections) and fit in [`MAX_REQUEST_HEAD`], and a connection lives
//! at most [`CONNECTION_LIFETIME`] before it is closed after its current response.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use echotool_core::{CancellationToken, Family, HostPort, resolve};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{ACCEPT, ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, error};

use crate::{Format, Metrics, MetricsError, Phase};

/// Connections served at once; scrapers and probes need a handful.
const MAX_CONNECTIONS: usize = 32;
/// How long a client may take to send a request's headers, or stay idle between requests.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request head (request line and headers) read; hyper's minimum.
const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// How long one connection may stay open, however busy.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// How long a response in flight may take to finish when its connection is closed: a scrape
/// is answered in microseconds, so this only bounds clients that read slowly or not at all.
const GRACE: Duration = Duration::from_secs(1);
/// The pause after a failed accept (out of file descriptors, say) before the next.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The metrics server's socket, bound and listening, not yet serving.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl MetricsServer {
    /// Binds `addr` (the first address a name resolves to).
    pub async fn bind(addr: &HostPort) -> Result<MetricsServer, MetricsError> {
        let resolved = resolve(addr, Family::Any).await?;
        let Some(&wanted) = resolved.first() else {
            return Err(MetricsError::Resolve(echotool_core::Error::Resolve {
                host: addr.host.clone(),
                reason: "it resolves to no address".into(),
            }));
        };
        let bind_err = |source| MetricsError::Bind {
            addr: HostPort::from(wanted).to_string(),
            source,
        };
        let listener = TcpListener::bind(wanted).await.map_err(bind_err)?;
        let local_addr = listener.local_addr().map_err(bind_err)?;
        Ok(MetricsServer {
            listener,
            local_addr,
        })
    }

    /// The address actually bound (the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the metrics are: `http://127.0.0.1:9555/metrics`.
    pub fn url(&self) -> String {
        format!("http://{}/metrics", HostPort::from(self.local_addr))
    }

    /// Answers requests until `shutdown` is cancelled, then lets the responses in flight
    /// finish (bounded by a few seconds) and returns.
    pub async fn serve(self, metrics: Metrics, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut connections = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = shutdown.cancelled() => break,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    error!(error = %err, "metrics: accepting a connection failed");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                debug!(%peer, "metrics: {MAX_CONNECTIONS} connections open already, closing");
                continue;
            };
            connections.spawn(serve_connection(
                stream,
                metrics.clone(),
                shutdown.clone(),
                permit,
            ));
            // Reap the finished ones, so the set holds only live connections.
            while connections.try_join_next().is_some() {}
        }
        let drained = async { while connections.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(GRACE, drained).await;
    }
}

/// Serves one connection, within the bounds above; `_permit` holds its place until it ends.
async fn serve_connection(
    stream: TcpStream,
    metrics: Metrics,
    shutdown: CancellationToken,
    _permit: OwnedSemaphorePermit,
) {
    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
        let response = respond(&metrics, &request);
        async move { Ok::<_, Infallible>(response) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_REQUEST_HEAD);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    let ended = tokio::select! {
        result = connection.as_mut() => Some(result),
        () = tokio::time::sleep(CONNECTION_LIFETIME) => None,
        () = shutdown.cancelled() => None,
    };
    let result = match ended {
        Some(result) => result,
        None => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(GRACE, connection).await {
                Ok(result) => result,
                Err(_) => return,
            }
        }
    };
    if let Err(err) = result {
        debug!(error = %err, "metrics: a connection ended in an error");
    }
}

/// The answer to one request: the metrics, the health, or why not.
pub(crate) fn respond<B>(metrics: &Metrics, request: &Request<B>) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    if path != "/metrics" && path != "/healthz" {
        return text(
            StatusCode::NOT_FOUND,
            "not found: GET /metrics for the metrics, /healthz for the health\n",
        );
    }
    if request.method() != Method::GET {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("method not allowed: {path} answers GET only\n"),
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    if path == "/healthz" {
        return match metrics.phase() {
            Phase::Ready => text(StatusCode::OK, "ok\n"),
            Phase::Starting => text(StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
            Phase::Stopping => text(StatusCode::SERVICE_UNAVAILABLE, "stopping\n"),
        };
    }
    let accept = request.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    match metrics.encode(format) {
        Ok(body) => {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            );
            response
        }
        Err(err) => {
            error!(error = %err, "metrics: encoding the metrics failed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the metrics could not be encoded; see the server's log\n",
            )
        }
    }
}

/// A plain-text response.
fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::BuildInfo;

    fn metrics() -> Metrics {
        Metrics::new(BuildInfo {
            version: "0.1.0",
            rustls: "none",
            quinn: "none",
            target: "test",
        })
    }

    /// The status and body of `method path`.
    async fn ask(metrics: &Metrics, method: Method, path: &str) -> (StatusCode, String) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap();
        let response = respond(metrics, &request);
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn healthz_is_ok_only_between_ready_and_stopping() {
        let metrics = metrics();
        let healthz = || ask(&metrics, Method::GET, "/healthz");
        assert_eq!(
            healthz().await,
            (StatusCode::SERVICE_UNAVAILABLE, "starting\n".into())
        );
        metrics.ready([]);
        assert_eq!(healthz().await, (StatusCode::OK, "ok\n".into()));
        metrics.stopping();
        assert_eq!(
            healthz().await,
            (StatusCode::SERVICE_UNAVAILABLE, "stopping\n".into())
        );
    }

    #[tokio::test]
    async fn other_paths_are_404_and_other_methods_405() {
        let metrics = metrics();
        for path in ["/", "/metric", "/metrics/", "/healthz/x", "/favicon.ico"] {
            let (status, body) = ask(&metrics, Method::GET, path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert!(body.contains("/metrics"), "{body}");
        }
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::HEAD] {
            let request = Request::builder()
                .method(method.clone())
                .uri("/metrics")
                .body(())
                .unwrap();
            let response = respond(&metrics, &request);
            assert_eq!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method}"
            );
            assert_eq!(response.headers()[ALLOW], "GET");
        }
        let (status, _) = ask(&metrics, Method::GET, "/metrics?x=1").await;
        assert_eq!(status, StatusCode::OK, "a query is not another path");
    }

    /// Sends `request` on a new connection to `addr` and returns the whole response, which
    /// must come well before a stalled connection would have been closed by the header
    /// timeout: a server that served one connection at a time would miss this.
    async fn exchange(addr: SocketAddr, request: &str) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        let read = stream.read_to_string(&mut response);
        tokio::time::timeout(HEADER_READ_TIMEOUT / 2, read)
            .await
            .expect("a response before the header timeout")
            .unwrap();
        response
    }

    #[tokio::test]
    async fn a_silent_connection_holds_up_no_other() {
        let server = MetricsServer::bind(&HostPort::new("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = server.local_addr();
        assert_eq!(server.url(), format!("http://{addr}/metrics"));
        let metrics = metrics();
        metrics.ready([]);
        let shutdown = CancellationToken::new();
        let serving = tokio::spawn(server.serve(metrics, shutdown.clone()));
        // Half a request line, then nothing.
        let mut silent = TcpStream::connect(addr).await.unwrap();
        silent.write_all(b"GET /met").await.unwrap();
        let response = exchange(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(
            response.contains("content-type: text/plain; version=0.0.4"),
            "{response}"
        );
        assert!(response.contains("\r\n\r\n# HELP "), "{response}");
        let response = exchange(
            addr,
            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.ends_with("\r\n\r\nok\n"), "{response}");
        drop(silent);
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), serving)
            .await
            .expect("stops within its grace")
            .unwrap();
    }
}
