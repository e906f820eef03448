use std::{sync::Arc, time::Duration};

use tonic::{Request, Status, metadata::MetadataMap, service::Interceptor};

use super::{
    context::CallContext,
    gate::DatabaseGate,
    limits::{CallClass, Limits},
};
use crate::{
    auth::{Authenticator, Principal},
    error::{ApiError, database_unavailable},
};

/// Verifies the bearer token of every call to the services it wraps, counts the call against the
/// caller's rate limit, and hands the resulting `Principal` to the handlers through the request
/// extensions. Health and reflection are not wrapped: load balancers and operators call them
/// without a token.
#[derive(Clone)]
pub struct AuthInterceptor {
    auth: Authenticator,
    limits: Arc<Limits>,
    gate: DatabaseGate,
}

impl AuthInterceptor {
    pub fn new(auth: Authenticator, limits: Arc<Limits>, gate: DatabaseGate) -> Self {
        Self { auth, limits, gate }
    }
}

/// The client's deadline (`grpc-timeout`: digits and a unit), if it sent one.
fn client_timeout(metadata: &MetadataMap) -> Option<Duration> {
    let value = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

impl Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let context = request.extensions().get::<CallContext>().cloned();
        if let (Some(context), Some(timeout)) = (&context, client_timeout(request.metadata())) {
            // Queued past its deadline: the client has given up, so do no work for it.
            if context.arrived.elapsed() >= timeout {
                return Err(Status::deadline_exceeded(
                    "the deadline passed before the call could start",
                ));
            }
        }
        let header = request.metadata().get("authorization").ok_or_else(|| {
            Status::unauthenticated(
                "missing authorization metadata: send `authorization: Bearer <token>`",
            )
        })?;
        let value = header
            .to_str()
            .map_err(|_| Status::unauthenticated("authorization metadata is not valid ASCII"))?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => {
                return Err(Status::unauthenticated(
                    "authorization metadata must be `Bearer <token>`",
                ));
            }
        };
        let principal = self
            .auth
            .verify(token)
            .map_err(|e| Status::from(ApiError::from(e)))?;
        if let Some(context) = &context {
            context.set_caller(&principal.subject);
            match self.limits.check(&principal, CallClass::of(&context.path)) {
                Ok(rate) => context.set_rate(rate),
                Err(limited) => {
                    context.set_rate(limited.info);
                    return Err(ApiError::ResourceExhausted {
                        message: format!(
                            "rate limit of {} calls per minute reached; retry in {} ms",
                            limited.info.limit,
                            limited.retry_after.as_millis()
                        ),
                        retry_after: limited.retry_after,
                    }
                    .into());
                }
            }
        }
        if self.gate.is_down() {
            return Err(database_unavailable());
        }
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// The caller, as the interceptor verified it.
pub fn principal<T>(request: &Request<T>) -> Result<Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("missing credentials"))
}
