//! TLS to Redis (`rediss://`, `rediss+sentinel://`, `rediss+cluster://`), with rustls and its `ring` provider
//! (cargo feature `tls`): the settings ([`TlsConfig`]: a CA file, a client certificate),
//! their loading and checking, and the `redis::Client` for a URL with them.
//!
//! [`TlsConfig`] exists in every build, so that builders take it whatever the features;
//! without the `tls` feature a `rediss://` URL is an `Error::Config` saying to enable it.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// TLS settings for a `rediss://` (or `rediss+sentinel://`) URL: the CA that signed the
/// server's certificate (default: the system's roots) and, for a server with
/// `tls-auth-clients yes`, a client certificate and its key. Files are PEM; they are read
/// when the pool is built, and a file that is missing, unreadable or holds no certificate
/// (or key) is an `Error::Config` (setting `tls`) naming it.
///
/// ```
/// use workq_common::TlsConfig;
///
/// let tls = TlsConfig::new()
///     .ca_file("/etc/redis/tls/ca.crt")
///     .client_cert("/etc/redis/tls/client.crt", "/etc/redis/tls/client.key");
/// # let _ = tls;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    ca_file: Option<PathBuf>,
    client: Option<(PathBuf, PathBuf)>,
}

impl TlsConfig {
    /// No CA file (the system's roots) and no client certificate.
    pub fn new() -> Self {
        TlsConfig::default()
    }

    /// Trust only the CA certificates in this PEM file (one or more), instead of the
    /// system's roots.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Present this client certificate (PEM, the chain leaf first) with this private key
    /// (PEM: PKCS#8, PKCS#1 or SEC1).
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client = Some((cert.into(), key.into()));
        self
    }

    /// The CA file, if one was given.
    pub fn ca(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// The client certificate and key files, if given.
    pub fn client(&self) -> Option<(&Path, &Path)> {
        self.client
            .as_ref()
            .map(|(c, k)| (c.as_path(), k.as_path()))
    }
}

/// The TLS of a `rediss` URL, loaded: the settings and the certificates read from them.
#[derive(Clone, Debug)]
pub(crate) struct Tls {
    config: TlsConfig,
    #[cfg(feature = "tls")]
    certs: redis::TlsCertificates,
}

/// Equal when made from the same settings.
impl PartialEq for Tls {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config
    }
}
impl Eq for Tls {}

/// Whether `url` asks for TLS (`rediss://`, `rediss+...://`).
fn is_tls_url(url: &str) -> bool {
    url.starts_with("rediss://") || url.starts_with("rediss+")
}

/// The TLS for `url` with the settings `config`: `None` for a plain URL. An
/// `Error::Config` (setting `tls`) for TLS settings with a plain URL, a `rediss` URL in a
/// build without the `tls` feature, and a certificate file that cannot be used.
pub(crate) fn load(url: &str, config: Option<&TlsConfig>) -> Result<Option<Tls>> {
    if !is_tls_url(url) {
        return match config {
            Some(_) => Err(Error::config(
                "tls",
                "TLS settings were given but the URL is not rediss:// (use rediss://, rediss+sentinel:// or rediss+cluster:// for TLS)",
            )),
            None => Ok(None),
        };
    }
    let config = config.cloned().unwrap_or_default();
    #[cfg(not(feature = "tls"))]
    {
        let _ = config;
        Err(Error::config(
            "tls",
            "rediss:// (TLS) needs workq built with the `tls` cargo feature: enable workq-producer's or workq-worker's `tls` feature (the workq and workq-worker binaries have it)",
        ))
    }
    #[cfg(feature = "tls")]
    {
        enabled::install_provider();
        let certs = enabled::certificates(&config)?;
        Ok(Some(Tls { config, certs }))
    }
}

/// A client for `url`, with `tls`'s certificates when given (a `rediss` URL: see [`load`]).
pub(crate) fn client(url: &str, tls: Option<&Tls>) -> redis::RedisResult<redis::Client> {
    match tls {
        #[cfg(feature = "tls")]
        Some(t) => redis::Client::build_with_tls(url, t.certs.clone()),
        #[cfg(not(feature = "tls"))]
        Some(t) => {
            let _ = &t.config;
            redis::Client::open(url)
        }
        None => redis::Client::open(url),
    }
}

/// `builder` with `tls`'s certificates for every node, when given.
pub(crate) fn cluster(
    builder: redis::cluster::ClusterClientBuilder,
    tls: Option<&Tls>,
) -> redis::cluster::ClusterClientBuilder {
    match tls {
        #[cfg(feature = "tls")]
        Some(t) => builder.certs(t.certs.clone()),
        #[cfg(not(feature = "tls"))]
        Some(t) => {
            let _ = &t.config;
            builder
        }
        None => builder,
    }
}

/// What to fix when connecting failed in the TLS handshake (a certificate refused either
/// way, or a server that does not speak TLS): waiting cannot heal these.
pub(crate) fn problem(message: &str) -> Option<&'static str> {
    if message.contains("invalid peer certificate") {
        Some("the server's TLS certificate was refused: give the CA that signed it (TlsConfig::ca_file, --tls-ca), and a host in the URL that the certificate names")
    } else if message.contains("received fatal alert") {
        Some("the server refused the TLS handshake: it may require a client certificate signed by a CA it trusts (TlsConfig::client_cert, --tls-cert and --tls-key)")
    } else if message.contains("received corrupt message") {
        Some("the server did not answer in TLS: use rediss:// only for a port that serves TLS (tls-port), redis:// otherwise")
    } else {
        None
    }
}

#[cfg(feature = "tls")]
mod enabled {
    use std::path::Path;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    use super::TlsConfig;
    use crate::{Error, Result};

    /// Makes ring the process' rustls provider, unless the program installed one: redis
    /// builds its rustls configs with the process default, and rustls panics at the first
    /// handshake when there is none (or when a build enables both ring and aws-lc-rs).
    pub(super) fn install_provider() {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Err: another thread installed one first, which serves as well.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    }

    fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
        std::fs::read(path).map_err(|e| {
            Error::config(
                "tls",
                format!("cannot read the TLS {what} file '{}': {e}", path.display()),
            )
        })
    }

    fn certs(pem: &[u8], path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
        let bad = |why: String| {
            Error::config(
                "tls",
                format!("the TLS {what} file '{}' {why}", path.display()),
            )
        };
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("is not valid PEM: {e}")))?;
        if certs.is_empty() {
            return Err(bad("holds no PEM certificate".into()));
        }
        Ok(certs)
    }

    /// Reads and checks the files of `config`.
    pub(super) fn certificates(config: &TlsConfig) -> Result<redis::TlsCertificates> {
        let root_cert = match config.ca() {
            Some(path) => {
                let pem = read(path, "CA")?;
                let mut store = rustls::RootCertStore::empty();
                for cert in certs(&pem, path, "CA")? {
                    store.add(cert).map_err(|e| {
                        Error::config(
                            "tls",
                            format!(
                                "the TLS CA file '{}' holds a certificate that cannot be a trust anchor: {e}",
                                path.display()
                            ),
                        )
                    })?;
                }
                Some(pem)
            }
            None => None,
        };
        let client_tls = match config.client() {
            Some((cert_path, key_path)) => {
                let client_cert = read(cert_path, "client certificate")?;
                certs(&client_cert, cert_path, "client certificate")?;
                let client_key = read(key_path, "client key")?;
                PrivateKeyDer::from_pem_slice(&client_key).map_err(|e| {
                    Error::config(
                        "tls",
                        format!(
                            "the TLS client key file '{}' holds no usable private key (PEM: PKCS#8, PKCS#1 or SEC1): {e}",
                            key_path.display()
                        ),
                    )
                })?;
                Some(redis::ClientTlsConfig {
                    client_cert,
                    client_key,
                })
            }
            None => None,
        };
        Ok(redis::TlsCertificates {
            client_tls,
            root_cert,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_with_a_plain_url_are_a_config_error() {
        let err = load("redis://h:1", Some(&TlsConfig::new())).unwrap_err();
        assert!(
            matches!(&err, Error::Config(c) if c.setting() == "tls"),
            "{err}"
        );
        assert!(load("redis://h:1", None).unwrap().is_none());
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn rediss_without_the_feature_names_the_feature() {
        let err = load("rediss://h:1", None).unwrap_err();
        assert!(err.to_string().contains("`tls` cargo feature"), "{err}");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn missing_and_empty_files_are_config_errors_naming_them() {
        let err = load(
            "rediss://h:1",
            Some(&TlsConfig::new().ca_file("/nonexistent/ca.pem")),
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Config(c) if c.setting() == "tls"),
            "{err}"
        );
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let empty = std::env::temp_dir().join(format!("workq-empty-{}.pem", std::process::id()));
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = load("rediss://h:1", Some(&TlsConfig::new().ca_file(&empty))).unwrap_err();
        let _ = std::fs::remove_file(&empty);
        assert!(
            err.to_string().contains("holds no PEM certificate"),
            "{err}"
        );
        // No CA file: the system's roots.
        assert!(load("rediss://h:1", None).unwrap().is_some());
    }
}
