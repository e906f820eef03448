//! The TLS crypto provider shared by the service port, the JWKS client, the bench and the tests.
use std::sync::Arc;

use rustls::crypto::{CryptoProvider, ring};

/// *ring*, everywhere. rustls 0.23.48 deprecated it for lacking post-quantum key exchange;
/// aws-lc-rs, which has it, needs cmake and doubles the build, and a hybrid key exchange brings
/// nothing inside one cluster yet.
#[allow(deprecated)]
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}
