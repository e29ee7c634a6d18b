//! TLS set-up for both sides, on rustls with the ring provider.
//!
//! The connecting side trusts a CA file, or anything (`--insecure`, which
//! still checks handshake signatures so that the session keys are real), and
//! can present a client certificate. The accepting side serves one
//! certificate chain from PEM. Both only build configurations: the
//! handshakes themselves run in [`crate::connect`] and [`crate::Acceptor`],
//! under the caller's deadline.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::DigitallySignedStruct;
use tokio_rustls::TlsAcceptor;

use crate::TlsOptions;

/// Why a TLS configuration could not be built: a file, its PEM, or the pair
/// of certificate and key. Each says which file and what to do.
#[derive(Debug)]
pub enum TlsConfigError {
    /// Neither a CA file nor `insecure`: nothing to check the server against.
    NoTrust,
    /// A file named in the options cannot be read.
    Read {
        path: PathBuf,
        /// The CA file (named as such in the message) or another one.
        ca: bool,
        error: io::Error,
    },
    /// PEM that does not hold a certificate; `path` is `None` for PEM given
    /// as bytes (the accepting side).
    BadCertificate {
        path: Option<PathBuf>,
        reason: String,
    },
    /// PEM without any certificate in it.
    NoCertificate { path: Option<PathBuf> },
    /// A CA certificate that parses but that rustls cannot use as an anchor.
    UnusableCa { path: PathBuf, reason: String },
    /// PEM that does not hold a private key.
    BadKey {
        path: Option<PathBuf>,
        reason: String,
    },
    /// The certificate and the key do not belong together (or are of a kind
    /// rustls does not support).
    BadPair { client: bool, reason: String },
    /// The host of the target cannot be a TLS server name.
    ServerName { host: String, reason: String },
    /// The crypto provider refused the protocol versions (not expected with ring).
    Setup(rustls::Error),
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsConfigError::NoTrust => f.write_str(
                "a TLS target needs --ca FILE (the PEM of the authority that signed the broker's certificate), or --insecure to skip verification",
            ),
            TlsConfigError::Read { path, ca: true, error } => {
                write!(f, "cannot read the CA file {}: {error}", path.display())
            }
            TlsConfigError::Read { path, ca: false, error } => {
                write!(f, "cannot read {}: {error}", path.display())
            }
            TlsConfigError::BadCertificate { path: Some(p), reason } => {
                write!(f, "{}: not a PEM certificate: {reason}", p.display())
            }
            TlsConfigError::BadCertificate { path: None, reason } => {
                write!(f, "cannot read the certificate PEM: {reason}")
            }
            TlsConfigError::NoCertificate { path: Some(p) } => {
                write!(f, "{} holds no PEM certificate", p.display())
            }
            TlsConfigError::NoCertificate { path: None } => {
                f.write_str("the certificate file holds no PEM certificate")
            }
            TlsConfigError::UnusableCa { path, reason } => {
                write!(f, "{}: unusable certificate: {reason}", path.display())
            }
            TlsConfigError::BadKey { path: Some(p), reason } => {
                write!(f, "{}: not a PEM private key: {reason}", p.display())
            }
            TlsConfigError::BadKey { path: None, reason } => {
                write!(f, "cannot read the private key PEM: {reason}")
            }
            TlsConfigError::BadPair { client: true, reason } => write!(
                f,
                "the client certificate and key do not form a usable pair: {reason}"
            ),
            TlsConfigError::BadPair { client: false, reason } => {
                write!(f, "the certificate and key do not form a usable pair: {reason}")
            }
            TlsConfigError::ServerName { host, reason } => {
                write!(f, "`{host}` cannot name a TLS server: {reason}")
            }
            TlsConfigError::Setup(e) => write!(f, "TLS set-up failed: {e}"),
        }
    }
}

impl std::error::Error for TlsConfigError {}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls client configuration that `options` ask for.
pub fn client_config(options: &TlsOptions) -> Result<rustls::ClientConfig, TlsConfigError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsConfigError::Setup)?;
    if options.insecure {
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)));
        return with_client_cert(builder, options);
    }
    let Some(ca) = &options.ca else {
        return Err(TlsConfigError::NoTrust);
    };
    let pem = std::fs::read(ca).map_err(|error| TlsConfigError::Read {
        path: ca.clone(),
        ca: true,
        error,
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| TlsConfigError::BadCertificate {
            path: Some(ca.clone()),
            reason: e.to_string(),
        })?;
        roots.add(cert).map_err(|e| TlsConfigError::UnusableCa {
            path: ca.clone(),
            reason: e.to_string(),
        })?;
    }
    if roots.is_empty() {
        return Err(TlsConfigError::NoCertificate {
            path: Some(ca.clone()),
        });
    }
    with_client_cert(builder.with_root_certificates(roots), options)
}

/// Finishes a client configuration with the client certificate, if any.
fn with_client_cert(
    builder: rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>,
    options: &TlsOptions,
) -> Result<rustls::ClientConfig, TlsConfigError> {
    let Some((cert, key)) = &options.client_cert else {
        return Ok(builder.with_no_client_auth());
    };
    let chain = certificates(&read(cert)?, Some(cert))?;
    let key = private_key(&read(key)?, Some(key))?;
    builder
        .with_client_auth_cert(chain, key)
        .map_err(|e| TlsConfigError::BadPair {
            client: true,
            reason: e.to_string(),
        })
}

fn read(path: &Path) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|error| TlsConfigError::Read {
        path: path.to_path_buf(),
        ca: false,
        error,
    })
}

/// Every certificate of a PEM chain; at least one.
fn certificates(
    pem: &[u8],
    path: Option<&Path>,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsConfigError::BadCertificate {
            path: path.map(Path::to_path_buf),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsConfigError::NoCertificate {
            path: path.map(Path::to_path_buf),
        });
    }
    Ok(chain)
}

fn private_key(pem: &[u8], path: Option<&Path>) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsConfigError::BadKey {
        path: path.map(Path::to_path_buf),
        reason: e.to_string(),
    })
}

/// The name the server's certificate must carry: the target's host.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, TlsConfigError> {
    ServerName::try_from(host.to_string()).map_err(|e| TlsConfigError::ServerName {
        host: host.to_string(),
        reason: e.to_string(),
    })
}

/// A TLS acceptor serving one certificate chain and its private key (PEM),
/// without client authentication.
pub fn acceptor(cert_pem: &[u8], key_pem: &[u8]) -> Result<TlsAcceptor, TlsConfigError> {
    let chain = certificates(cert_pem, None)?;
    let key = private_key(key_pem, None)?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsConfigError::Setup)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsConfigError::BadPair {
            client: false,
            reason: e.to_string(),
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// `insecure`: any certificate is accepted, but the handshake signatures
/// are still checked.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
