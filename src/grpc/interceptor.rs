use tonic::{Request, Status, service::Interceptor};

use crate::{
    auth::{Authenticator, Principal},
    error::ApiError,
    telemetry::CallerSlot,
};

/// Verifies the bearer token of every call to the services it wraps and hands the resulting
/// `Principal` to the handlers through the request extensions. Health and reflection are not
/// wrapped: load balancers and operators call them without a token.
#[derive(Clone)]
pub struct AuthInterceptor {
    auth: Authenticator,
}

impl AuthInterceptor {
    pub fn new(auth: Authenticator) -> Self {
        Self { auth }
    }
}

impl Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
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
        if let Some(slot) = request.extensions().get::<CallerSlot>() {
            slot.set(&principal.subject);
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
