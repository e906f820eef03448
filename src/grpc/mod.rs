//! The gRPC transport: proto -> domain -> store -> proto. No SQL here.
mod admin;
pub mod codec;
mod context;
mod convert;
mod drain;
mod export;
mod gate;
mod handler;
mod import;
mod interceptor;
mod library;
mod likes;
pub mod limits;
mod live;
mod plays;
mod rpc;
mod stats;
mod tracks;

pub use admin::AdminApi;
pub use context::CallContext;
pub use drain::{Drain, DrainTrigger};
pub use gate::DatabaseGate;
pub use interceptor::AuthInterceptor;
pub use library::LibraryApi;
pub use limits::{LimitSettings, Limits, RateInfo, StreamGuard};
pub use rpc::{CallClass, Rpc, RpcKind};
