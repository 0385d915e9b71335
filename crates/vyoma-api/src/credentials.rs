//! The server's credentials: a folder holding the token's digest (`token.sha256`) and,
//! for TLS, the server's certificate and key (`server.pem`, `server.key`), signed by a
//! small CA (`ca.pem`; its key `ca.key` stays with whoever made the folder). With the
//! `generate` feature, [`generate`] makes such a folder with rcgen: `vyoma image build`
//! for a device, `vyoma run` on its first start.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::{CredentialsError, TokenDigest};

/// File names in a credentials folder.
pub mod files {
    /// The token's SHA-256, hex.
    pub const TOKEN_DIGEST: &str = "token.sha256";
    /// The server's certificate chain, PEM.
    pub const SERVER_CERT: &str = "server.pem";
    /// The server's private key, PEM.
    pub const SERVER_KEY: &str = "server.key";
    /// The CA certificate clients trust, PEM.
    pub const CA_CERT: &str = "ca.pem";
    /// The CA's private key, PEM (never copied into an image).
    pub const CA_KEY: &str = "ca.key";
}

/// What the server needs: the token digest, and the TLS configuration when serving HTTPS.
#[derive(Clone)]
pub struct ServerCredentials {
    /// Presented tokens are checked against this.
    pub token: TokenDigest,
    /// TLS, if on.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for ServerCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCredentials")
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, CredentialsError> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|source| CredentialsError::Read { path, source })
}

impl ServerCredentials {
    /// Loads the folder `dir`; with `tls`, the certificate and key too.
    pub fn load(dir: &Path, tls: bool) -> Result<ServerCredentials, CredentialsError> {
        let digest_path = dir.join(files::TOKEN_DIGEST);
        let text = read(dir, files::TOKEN_DIGEST)?;
        let token = std::str::from_utf8(&text)
            .ok()
            .and_then(TokenDigest::from_hex)
            .ok_or_else(|| CredentialsError::Invalid {
                path: digest_path,
                why: "expected the token's SHA-256 as 64 hex digits".into(),
            })?;
        let tls = if tls { Some(Arc::new(server_tls(dir)?)) } else { None };
        Ok(ServerCredentials { token, tls })
    }
}

/// The rustls server configuration from `server.pem` and `server.key` in `dir`.
fn server_tls(dir: &Path) -> Result<rustls::ServerConfig, CredentialsError> {
    let cert_path = dir.join(files::SERVER_CERT);
    let key_path = dir.join(files::SERVER_KEY);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(dir, files::SERVER_CERT)?)
        .collect::<Result<_, _>>()
        .map_err(|e| CredentialsError::Invalid {
            path: cert_path.clone(),
            why: format!("not a PEM certificate chain: {e}"),
        })?;
    if certs.is_empty() {
        return Err(CredentialsError::Invalid {
            path: cert_path,
            why: "no certificate in it".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&read(dir, files::SERVER_KEY)?).map_err(|e| CredentialsError::Invalid {
        path: key_path.clone(),
        why: format!("not a PEM private key: {e}"),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| CredentialsError::Invalid {
            path: key_path,
            why: format!("the certificate and key do not make a TLS configuration: {e}"),
        })
}

/// Writes `contents` to `path` readable by the owner only (keys, token material).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), CredentialsError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let write = || -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|source| CredentialsError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// What [`generate`] made.
#[cfg(feature = "generate")]
#[derive(Debug)]
pub struct Generated {
    /// The operator token (only its digest is in the folder).
    pub token: crate::Token,
    /// The CA certificate clients trust, PEM.
    pub ca_pem: String,
    /// The folder.
    pub dir: std::path::PathBuf,
}

/// Makes a credentials folder at `dir`: a CA, a server certificate for `names` (host
/// names and IP addresses; `localhost`, `127.0.0.1` and `::1` are always in), and a fresh
/// token. Keys are written readable by the owner only.
#[cfg(feature = "generate")]
pub fn generate(dir: &Path, names: &[String]) -> Result<Generated, CredentialsError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };

    let gen_err = |e: rcgen::Error| CredentialsError::Generate(e.to_string());
    std::fs::create_dir_all(dir).map_err(|source| CredentialsError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let now = time::OffsetDateTime::now_utc();
    let (not_before, not_after) = (now - time::Duration::days(1), now + time::Duration::days(3650));

    let ca_key = KeyPair::generate().map_err(gen_err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name.push(DnType::CommonName, "VyomaOS operator CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_cert = ca.self_signed(&ca_key).map_err(gen_err)?;
    let issuer = Issuer::new(ca, &ca_key);

    let mut sans: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for n in names {
        if !sans.contains(n) {
            sans.push(n.clone());
        }
    }
    let server_key = KeyPair::generate().map_err(gen_err)?;
    let mut server = CertificateParams::new(sans).map_err(gen_err)?;
    server
        .distinguished_name
        .push(DnType::CommonName, "VyomaOS management API");
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.not_before = not_before;
    server.not_after = not_after;
    let server_cert = server.signed_by(&server_key, &issuer).map_err(gen_err)?;

    let token = crate::Token::generate()?;
    write_private(&dir.join(files::CA_KEY), ca_key.serialize_pem().as_bytes())?;
    write_private(&dir.join(files::SERVER_KEY), server_key.serialize_pem().as_bytes())?;
    write_private(&dir.join(files::SERVER_CERT), server_cert.pem().as_bytes())?;
    write_private(&dir.join(files::CA_CERT), ca_cert.pem().as_bytes())?;
    write_private(
        &dir.join(files::TOKEN_DIGEST),
        format!("{}\n", token.digest().to_hex()).as_bytes(),
    )?;
    Ok(Generated {
        token,
        ca_pem: ca_cert.pem(),
        dir: dir.to_path_buf(),
    })
}

#[cfg(all(test, feature = "generate"))]
mod tests {
    use super::*;

    #[test]
    fn a_generated_folder_loads_and_serves_tls() {
        let d = tempfile::tempdir().unwrap();
        let g = generate(d.path(), &["10.0.2.15".into(), "device.example".into()]).unwrap();
        let c = ServerCredentials::load(d.path(), true).unwrap();
        assert!(c.token.matches(g.token.as_str()));
        assert!(c.tls.is_some());
        assert!(g.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(d.path().join(files::SERVER_KEY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn broken_folders_say_which_file_and_why() {
        let d = tempfile::tempdir().unwrap();
        let e = ServerCredentials::load(d.path(), false).unwrap_err().to_string();
        assert!(e.contains("token.sha256") && e.contains("cannot read"), "{e}");
        std::fs::write(d.path().join(files::TOKEN_DIGEST), "xyz").unwrap();
        let e = ServerCredentials::load(d.path(), false).unwrap_err().to_string();
        assert!(e.contains("64 hex digits"), "{e}");
        std::fs::write(d.path().join(files::TOKEN_DIGEST), "ab".repeat(32)).unwrap();
        assert!(ServerCredentials::load(d.path(), false).is_ok());
        std::fs::write(d.path().join(files::SERVER_CERT), "not pem").unwrap();
        std::fs::write(d.path().join(files::SERVER_KEY), "not pem").unwrap();
        let e = ServerCredentials::load(d.path(), true).unwrap_err().to_string();
        assert!(e.contains("server.pem") && e.contains("no certificate"), "{e}");
    }
}

/// The credentials a hosted instance (`vyoma run`) serves with, made on first start:
/// keeps the folder `dir` (generating it when missing or unusable) and the client config
/// at `config` in step, so the endpoint `name` there holds the URL `url` and a token that
/// the folder's digest matches. A token the config no longer has is replaced (only its
/// digest is in the folder). Returns the credentials, with TLS when `tls`.
#[cfg(feature = "generate")]
pub fn prepare_hosted(
    dir: &Path,
    config: &Path,
    name: &str,
    url: &str,
    tls: bool,
) -> Result<ServerCredentials, CredentialsError> {
    let mut cfg = crate::ClientConfig::load(config)?;
    let existing = ServerCredentials::load(dir, true).ok();
    let known = cfg.endpoints.get(name).map(|e| e.token.clone());
    let (token, ca) = match (existing, known) {
        (Some(c), Some(t)) if c.token.matches(&t) => {
            let ca = std::fs::read_to_string(dir.join(files::CA_CERT)).ok();
            (t, ca)
        }
        _ => {
            let g = generate(dir, &[])?;
            (g.token.as_str().to_string(), Some(g.ca_pem))
        }
    };
    let endpoint = crate::Endpoint {
        url: url.to_string(),
        token,
        ca: if url.starts_with("https://") { ca } else { None },
    };
    if cfg.endpoints.get(name) != Some(&endpoint) {
        cfg.set(name, endpoint);
        cfg.save(config)?;
    }
    ServerCredentials::load(dir, tls)
}

#[cfg(all(test, feature = "generate"))]
mod hosted_tests {
    use super::*;

    #[test]
    fn hosted_credentials_are_made_once_and_kept_in_step() {
        let d = tempfile::tempdir().unwrap();
        let (dir, cfg) = (d.path().join("api"), d.path().join("client.toml"));
        let a = prepare_hosted(&dir, &cfg, "local", "http://127.0.0.1:7420", false).unwrap();
        let c = crate::ClientConfig::load(&cfg).unwrap();
        let t1 = c.endpoints["local"].token.clone();
        assert!(a.token.matches(&t1) && a.tls.is_none());
        assert_eq!(c.default.as_deref(), Some("local"));
        // Second start, other port, TLS: same token, new URL, the CA for https.
        let b = prepare_hosted(&dir, &cfg, "local", "https://127.0.0.1:9000", true).unwrap();
        let c = crate::ClientConfig::load(&cfg).unwrap();
        assert_eq!(c.endpoints["local"].token, t1);
        assert_eq!(c.endpoints["local"].url, "https://127.0.0.1:9000");
        assert!(
            c.endpoints["local"]
                .ca
                .as_deref()
                .is_some_and(|p| p.contains("BEGIN CERTIFICATE"))
        );
        assert!(b.tls.is_some() && b.token.matches(&t1));
        // The config lost its token: a new one replaces it.
        std::fs::remove_file(&cfg).unwrap();
        let n = prepare_hosted(&dir, &cfg, "local", "http://127.0.0.1:7420", false).unwrap();
        let t2 = crate::ClientConfig::load(&cfg).unwrap().endpoints["local"]
            .token
            .clone();
        assert_ne!(t1, t2);
        assert!(n.token.matches(&t2) && !n.token.matches(&t1));
    }
}
