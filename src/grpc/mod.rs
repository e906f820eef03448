//! The gRPC transport: proto -> domain -> store -> proto. No SQL here.
mod admin;
mod convert;
mod drain;
mod import;
mod interceptor;
mod library;
mod likes;
mod plays;
mod stats;

pub use admin::AdminApi;
pub use drain::{Drain, DrainTrigger};
pub use interceptor::AuthInterceptor;
pub use library::LibraryApi;
