//! One error type for the API layer and its single mapping to `tonic::Status` (AIP-193).
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    auth::{AuthError, Denied},
    domain::Violation,
    store::StoreError,
};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid request")]
    InvalidArgument(Vec<Violation>),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    /// Over the caller's quota, or too many open streams: retry after the given time.
    #[error("{message}")]
    ResourceExhausted {
        message: String,
        retry_after: Duration,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A WatchLibrary cursor older than the events kept: reload, then watch from now.
    #[error("events expired")]
    EventsExpired,
    /// A broken invariant of ours; the detail goes to the log only.
    #[error("{0}")]
    Internal(String),
    /// A status the transport already decided (a client stream that broke, a server shutting
    /// down), passed on as it is.
    #[error("{0}")]
    Status(#[from] Status),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn invalid(field: &str, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![Violation::new(field, description)])
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        Self::Unauthenticated(e.to_string())
    }
}

impl From<Denied> for ApiError {
    fn from(e: Denied) -> Self {
        match e {
            Denied::PermissionDenied(why) => Self::PermissionDenied(why),
            Denied::UserRequired => Self::invalid(
                "user_id",
                "user_id is required: the token's subject is not a listener",
            ),
        }
    }
}

/// Full cause chain for the log: the client gets a generic message, the operator the detail.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::InvalidArgument(violations) => {
                let message = match violations.as_slice() {
                    [one] => format!("invalid {}: {}", one.field, one.description),
                    many => format!(
                        "invalid fields: {}",
                        many.iter()
                            .map(|v| v.field.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                let mut details = ErrorDetails::new();
                for v in violations {
                    details.add_bad_request_violation(v.field, v.description);
                }
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            ApiError::NotFound(m) => Status::not_found(m),
            ApiError::Unauthenticated(m) => Status::unauthenticated(m),
            ApiError::PermissionDenied(m) => Status::permission_denied(m),
            ApiError::ResourceExhausted {
                message,
                retry_after,
            } => {
                let mut details = ErrorDetails::new();
                details.set_retry_info(Some(retry_after));
                Status::with_error_details(Code::ResourceExhausted, message, details)
            }
            ApiError::Store(StoreError::Overloaded) => {
                shed("the service is writing as fast as it can; retry shortly")
            }
            ApiError::Store(err) if err.is_unavailable() => {
                tracing::warn!(error = %chain(&err), "database unavailable");
                database_unavailable()
            }
            ApiError::Store(err) => {
                tracing::error!(error = %chain(&err), "database error");
                Status::internal("internal error")
            }
            ApiError::EventsExpired => {
                let mut details = ErrorDetails::new();
                details.set_error_info(
                    "EVENTS_EXPIRED",
                    "library.audiohm",
                    std::collections::HashMap::new(),
                );
                details.add_bad_request_violation(
                    "after",
                    "the events after this cursor are no longer kept",
                );
                Status::with_error_details(
                    Code::FailedPrecondition,
                    "the events after this cursor are no longer kept: reload the library, then \
                     watch without `after`",
                    details,
                )
            }
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                Status::internal("internal error")
            }
            ApiError::Status(status) => status,
        }
    }
}

/// UNAVAILABLE with a short RetryInfo: a call refused because the server has more work than
/// it can answer in time (too many calls in flight, a write queue full or too slow). Nothing
/// of it was done.
pub fn shed(message: &str) -> Status {
    let mut details = ErrorDetails::new();
    details.set_retry_info(Some(Duration::from_millis(200)));
    Status::with_error_details(Code::Unavailable, message, details)
}

/// UNAVAILABLE with a RetryInfo: the database cannot be reached, the call may be retried.
pub fn database_unavailable() -> Status {
    let mut details = ErrorDetails::new();
    details.set_retry_info(Some(Duration::from_secs(1)));
    Status::with_error_details(
        Code::Unavailable,
        "the library database is unavailable; retry shortly",
        details,
    )
}
