//! audiOhm Library Service: listening history, liked tracks and library statistics over gRPC.
pub mod auth;
pub mod backoff;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod export;
pub mod grpc;
pub mod server;
pub mod store;
pub mod telemetry;

/// Code generated from `proto/`.
pub mod pb {
    tonic::include_proto!("audiohm.library.v1");

    /// Encoded descriptors of `proto/`, for the reflection services.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/library_descriptor.bin"));
}
