//! Counts each authenticated call against its caller's quota, then refuses it while the database
//! is down. This runs after the [`AuthInterceptor`](super::AuthInterceptor) (which knows the
//! caller) and before the handler, as a service rather than in the interceptor because a shared
//! quota is a round trip to Redis, and tonic's interceptors cannot wait.
use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tonic::{body::Body, server::NamedService};
use tower::Service;

use super::{context::CallContext, gate::DatabaseGate, limits::Limits};
use crate::{
    auth::Principal,
    error::{ApiError, database_unavailable},
};

/// Wraps one generated service (inside its interceptor).
#[derive(Clone)]
pub struct QuotaService<S> {
    inner: S,
    limits: Arc<Limits>,
    gate: DatabaseGate,
}

impl<S> QuotaService<S> {
    pub fn new(inner: S, limits: Arc<Limits>, gate: DatabaseGate) -> Self {
        Self {
            inner,
            limits,
            gate,
        }
    }
}

impl<S: NamedService> NamedService for QuotaService<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for QuotaService<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone that was polled ready serves this call; the fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (limits, gate) = (self.limits.clone(), self.gate.clone());
        Box::pin(async move {
            let extensions = request.extensions();
            let class = extensions
                .get::<CallContext>()
                .and_then(|context| Some((context.clone(), context.rpc?.class()?)));
            // The interceptor refuses any call it could not classify or authenticate, so both
            // are here; if not, refuse rather than serve a call no quota was counted for.
            let (Some((context, class)), Some(principal)) = (class, extensions.get::<Principal>())
            else {
                let refused = ApiError::Internal("a call reached its quota unauthenticated".into());
                return Ok(tonic::Status::from(refused).into_http());
            };
            match limits.check(principal, class).await {
                Ok(rate) => context.set_rate(rate),
                Err(limited) => {
                    context.set_rate(limited.info);
                    let refused = ApiError::ResourceExhausted {
                        message: format!(
                            "rate limit of {} calls per minute reached; retry in {} ms",
                            limited.info.limit,
                            limited.retry_after.as_millis()
                        ),
                        retry_after: limited.retry_after,
                    };
                    return Ok(tonic::Status::from(refused).into_http());
                }
            }
            if gate.is_down() {
                return Ok(database_unavailable().into_http());
            }
            inner.call(request).await
        })
    }
}
