use std::time::Duration;

use tonic::{Request, Status, metadata::MetadataMap, service::Interceptor};

use super::context::CallContext;
use crate::{auth::Authenticator, error::ApiError};

/// Verifies the bearer token of every call to the services it wraps and hands the resulting
/// `Principal` to the [`QuotaService`](super::QuotaService) (which counts the call against the
/// caller's rate limit) and the handlers through the request extensions. Health and reflection
/// are not wrapped: load balancers and operators call them without a token.
#[derive(Clone)]
pub struct AuthInterceptor {
    auth: Authenticator,
}

impl AuthInterceptor {
    pub fn new(auth: Authenticator) -> Self {
        Self { auth }
    }
}

/// The client's deadline (`grpc-timeout`: digits and a unit), if it sent one.
pub(super) fn client_timeout(metadata: &MetadataMap) -> Option<Duration> {
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
        // The observing layer classifies every call; without its context the call's quota is
        // unknown, and an unknown quota is a refusal, never a pass.
        let Some(context) = request.extensions().get::<CallContext>().cloned() else {
            return Err(ApiError::Internal(
                "a call reached the API without its call context".into(),
            )
            .into());
        };
        if context.rpc.and_then(|rpc| rpc.class()).is_none() {
            return Err(Status::unimplemented("no such method"));
        };
        if let Some(timeout) = client_timeout(request.metadata()) {
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
        context.set_caller(&principal.subject);
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;
    use crate::{auth::AuthConfig, grpc::Rpc};

    fn interceptor() -> AuthInterceptor {
        let auth = Authenticator::from_config(&AuthConfig {
            hs256_secret: Some("unit-test-secret-unit-test-secret".into()),
            ..AuthConfig::default()
        })
        .expect("a key");
        AuthInterceptor::new(auth)
    }

    fn request(context: Option<CallContext>) -> Request<()> {
        let mut request = Request::new(());
        request.metadata_mut().insert(
            "authorization",
            "Bearer not-a-token".parse().expect("ascii"),
        );
        if let Some(context) = context {
            request.extensions_mut().insert(context);
        }
        request
    }

    #[test]
    fn a_call_the_outer_layer_did_not_classify_is_refused() {
        let refused = interceptor().call(request(None)).expect_err("refused");
        assert_eq!(refused.code(), Code::Internal);
    }

    #[test]
    fn a_method_outside_the_rpc_table_is_refused_before_authentication() {
        let context = CallContext::new(None, tracing::Span::none());
        let refused = interceptor()
            .call(request(Some(context)))
            .expect_err("refused");
        assert_eq!(refused.code(), Code::Unimplemented);
    }

    #[test]
    fn a_classified_call_goes_on_to_authentication() {
        let context = CallContext::new(Some(Rpc::RecordPlay), tracing::Span::none());
        let refused = interceptor()
            .call(request(Some(context)))
            .expect_err("a bad token");
        assert_eq!(refused.code(), Code::Unauthenticated);
    }
}
