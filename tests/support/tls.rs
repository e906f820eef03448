//! Certificates made by the tests (rcgen), files laid out the way Kubernetes mounts a Secret, and
//! raw TLS clients that report what the server presented.
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use library_service::crypto::crypto_provider;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject},
};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, client::TlsStream};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// The name every server certificate is issued for, and the name clients expect.
pub const SERVER_NAME: &str = "localhost";

pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its private key.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl Ca {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("ca key");
        Self {
            issuer: CertifiedIssuer::self_signed(params, key).expect("ca certificate"),
        }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for [`SERVER_NAME`], told apart from others by its common name.
    pub fn server(&self, common_name: &str) -> Leaf {
        self.leaf(
            vec![SERVER_NAME.into()],
            common_name,
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate, as a calling service would hold.
    pub fn client(&self, common_name: &str) -> Leaf {
        self.leaf(Vec::new(), common_name, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn leaf(&self, names: Vec<String>, common_name: &str, usage: ExtendedKeyUsagePurpose) -> Leaf {
        let mut params = CertificateParams::new(names).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    /// A tonic client's TLS settings trusting this CA, with `identity` for mutual TLS.
    pub fn client_config(&self, identity: Option<&Leaf>) -> ClientTlsConfig {
        let config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(self.pem()))
            .domain_name(SERVER_NAME);
        match identity {
            Some(leaf) => config.identity(Identity::from_pem(&leaf.cert_pem, &leaf.key_pem)),
            None => config,
        }
    }
}

/// A directory laid out as the kubelet mounts a Secret: `tls.crt` and `tls.key` are symlinks
/// through `..data`, a symlink to a directory holding one version; an update writes a new
/// version directory and swaps `..data` in one rename.
pub struct SecretDir {
    dir: TempDir,
    version: usize,
}

impl SecretDir {
    pub fn new(files: &[(&str, &str)]) -> Self {
        let mut secret = Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
            version: 0,
        };
        secret.update(files);
        for (name, _) in files {
            std::os::unix::fs::symlink(format!("..data/{name}"), secret.path(name))
                .expect("file link");
        }
        secret
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Publishes new contents of the files atomically, as the kubelet does.
    pub fn update(&mut self, files: &[(&str, &str)]) {
        self.version += 1;
        let version = format!("..v{}", self.version);
        let root = self.dir.path();
        std::fs::create_dir(root.join(&version)).expect("version directory");
        for (name, contents) in files {
            std::fs::write(root.join(&version).join(name), contents).expect("writes a file");
        }
        let staged = root.join("..data_tmp");
        std::os::unix::fs::symlink(&version, &staged).expect("staged link");
        std::fs::rename(&staged, root.join("..data")).expect("swaps ..data");
    }
}

/// A TLS connection to `addr` trusting `ca_pem`, offering `alpn`, with an optional client
/// certificate.
pub async fn connect(
    addr: SocketAddr,
    ca_pem: &str,
    alpn: &[&[u8]],
    identity: Option<&Leaf>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(ca.expect("ca pem")).expect("ca added");
    }
    let builder = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .expect("tls versions")
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![leaf.der.clone()],
                PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("key pem"),
            )
            .expect("client certificate"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(SERVER_NAME).expect("server name");
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// The leaf certificate a new handshake with `addr` is given.
pub async fn served_certificate(addr: SocketAddr, ca_pem: &str) -> CertificateDer<'static> {
    let stream = connect(addr, ca_pem, &[b"h2"], None)
        .await
        .expect("tls handshake");
    stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("the server presents a certificate")
        .clone()
}

pub fn write(path: &Path, contents: &str) {
    std::fs::write(path, contents).expect("writes a file");
}
