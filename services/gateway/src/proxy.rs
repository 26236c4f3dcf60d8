//! The routing proxy: a gRPC call is forwarded, headers, body, trailers and
//! deadline untouched, to the service that owns its package. Streams pass
//! through as they come.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Request, Response};
use tonic::Status;
use tonic::body::Body;
use tower::{Service, ServiceExt as _};

use crate::upstream::Upstream;

/// Forwards each call to its upstream by gRPC package.
#[derive(Debug, Clone)]
pub struct Proxy {
    upstreams: Arc<[Upstream]>,
}

impl Proxy {
    /// A proxy over `upstreams`.
    pub fn new(upstreams: Vec<Upstream>) -> Self {
        Self { upstreams: upstreams.into() }
    }

    fn route(&self, path: &str) -> Option<&Upstream> {
        self.upstreams.iter().find(|upstream| path.starts_with(&upstream.path_prefix))
    }
}

impl Service<Request<axum::body::Body>> for Proxy {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Each call clones its upstream's channel, whose own buffer applies
        // back-pressure; the proxy itself is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<axum::body::Body>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let Some(upstream) = self.route(&path) else {
            let status = Status::unimplemented(format!("no service behind the gateway serves {path}"));
            return Box::pin(async move { Ok(status.into_http()) });
        };
        let service = upstream.service;
        let channel = upstream.channel.clone();
        Box::pin(async move {
            let request = request.map(Body::new);
            match channel.oneshot(request).await {
                Ok(response) => Ok(response),
                Err(error) => {
                    tracing::warn!(service, %path, %error, "upstream unreachable");
                    Ok(Status::unavailable(format!("{service} is unavailable; try again later")).into_http())
                }
            }
        })
    }
}
