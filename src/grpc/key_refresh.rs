//! Gives the authenticator its one chance to wait: when keys come from a JWKS URL and a token
//! names a key id no key has, the call waits (bounded) for one early refresh before the
//! [`AuthInterceptor`](super::AuthInterceptor) verifies it, because tonic's interceptors cannot
//! wait. Without a JWKS URL, or with a known key id, the call goes straight through.
use std::{
    pin::Pin,
    task::{Context, Poll},
};

use tonic::server::NamedService;
use tower::Service;

use crate::auth::Authenticator;

/// Wraps one intercepted service.
#[derive(Clone)]
pub struct KeyRefreshService<S> {
    inner: S,
    auth: Authenticator,
}

impl<S> KeyRefreshService<S> {
    pub fn new(inner: S, auth: Authenticator) -> Self {
        Self { inner, auth }
    }
}

impl<S: NamedService> NamedService for KeyRefreshService<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for KeyRefreshService<S>
where
    S: Service<http::Request<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if !self.auth.fetches_keys() {
            return Box::pin(self.inner.call(request));
        }
        // The clone that was polled ready serves this call; the fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            // A missing or malformed header is the interceptor's to refuse, with its message.
            let token = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token.trim());
            if let Some(token) = token {
                auth.await_unknown_key(token).await;
            }
            inner.call(request).await
        })
    }
}
