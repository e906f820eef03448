//! The web page's static files (`--web-root`), served on the gRPC port so that the page and its
//! gRPC-web calls share one origin and need no CORS. Only GET and HEAD reach the files; every
//! gRPC call is a POST and goes on to the services untouched. Without `--web-root` the layer is
//! not in the stack at all, so API calls pay nothing for it.
use std::{
    path::{Path, PathBuf},
    pin::Pin,
    task::{Context, Poll},
};

use anyhow::{Context as _, bail};
use http::{HeaderName, HeaderValue, Method, header};
use tonic::body::Body;
use tower::{Layer, Service};
use tower_http::services::ServeDir;

/// The page calls only its own origin; nothing inline, nothing from elsewhere, never framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

#[derive(Clone)]
pub struct SiteLayer {
    files: ServeDir,
}

impl SiteLayer {
    /// Checks the folder up front: a typo or an unbuilt page should stop start-up with a reason,
    /// not answer every browser with 404.
    pub fn new(root: &Path) -> anyhow::Result<Self> {
        let index = root.join("index.html");
        if !index.is_file() {
            bail!(
                "--web-root {}: no index.html there (build the page first: npm --prefix web run build)",
                root.display()
            );
        }
        let root: PathBuf = root
            .canonicalize()
            .with_context(|| format!("resolving --web-root {}", root.display()))?;
        tracing::info!(web_root = %root.display(), "serving the web page");
        Ok(Self {
            files: ServeDir::new(root),
        })
    }
}

impl<S> Layer<S> for SiteLayer {
    type Service = Site<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Site {
            inner,
            files: self.files.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Site<S> {
    inner: S,
    files: ServeDir,
}

impl<S, B> Service<http::Request<B>> for Site<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            return Box::pin(self.inner.call(request));
        }
        let served = self.files.call(request);
        Box::pin(async move {
            let response = match served.await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok(with_page_headers(response.map(Body::new)))
        })
    }
}

fn with_page_headers(mut response: http::Response<Body>) -> http::Response<Body> {
    let headers = response.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "no-referrer");
    // index.html names the hashed asset files of one build; a cached copy would load stale ones.
    set(header::CACHE_CONTROL, "no-cache");
    response
}
