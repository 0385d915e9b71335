//! The client config (`client.toml`): which VyomaOS instances the operator manages and
//! how to reach each (URL, token, the CA that signed its certificate), like a kubeconfig or
//! a talosconfig. `vyoma run` adds its own instance as `local` on first start; `vyoma image
//! build` writes one for the image next to it. The remote client reads it.
//!
//! ```toml
//! default = "local"
//!
//! [endpoints.local]
//! url = "http://127.0.0.1:7420"
//! token = "vyoma_..."
//!
//! [endpoints.kiosk]
//! url = "https://127.0.0.1:7443"
//! token = "vyoma_..."
//! ca = """
//! -----BEGIN CERTIFICATE-----
//! ...
//! """
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::CredentialsError;

/// One managed instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// `http://` (loopback only) or `https://` URL of its API.
    pub url: String,
    /// Its operator token.
    pub token: String,
    /// The CA certificate (PEM) that signed its server certificate; needed for https.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The endpoint used when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Endpoints by name.
    #[serde(default)]
    pub endpoints: BTreeMap<String, Endpoint>,
}

/// VyomaOS's folder in an XDG base directory: `$VAR/vyoma` when `VAR` is an absolute path,
/// else `~/FALLBACK/vyoma` (`vyoma_dir("XDG_STATE_HOME", ".local/state")`).
pub fn vyoma_dir(var: &str, fallback: &str) -> Option<PathBuf> {
    let base = std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(fallback)))?;
    Some(base.join("vyoma"))
}

impl ClientConfig {
    /// Where the config lives by default: `$VYOMA_CONFIG`, else
    /// `$XDG_CONFIG_HOME/vyoma/client.toml`, else `~/.config/vyoma/client.toml`.
    pub fn default_path() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("VYOMA_CONFIG") {
            return Some(PathBuf::from(p));
        }
        Some(vyoma_dir("XDG_CONFIG_HOME", ".config")?.join("client.toml"))
    }

    /// Reads `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<ClientConfig, CredentialsError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ClientConfig::default()),
            Err(source) => {
                return Err(CredentialsError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        toml::from_str(&text).map_err(|e| CredentialsError::Invalid {
            path: path.to_path_buf(),
            why: e.to_string().trim_end().replace('\n', " "),
        })
    }

    /// Writes it to `path` (owner-only: it holds tokens), creating the folder.
    pub fn save(&self, path: &Path) -> Result<(), CredentialsError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| CredentialsError::Write {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let text = format!(
            "# VyomaOS client config: the instances `vyoma --endpoint NAME` manages (docs/api.md).\n{}",
            toml::to_string_pretty(self).map_err(|e| CredentialsError::Generate(e.to_string()))?
        );
        crate::credentials::write_private(path, text.as_bytes())
    }

    /// Adds or replaces the endpoint `name`, and makes it the default if there is none.
    pub fn set(&mut self, name: &str, endpoint: Endpoint) {
        self.endpoints.insert(name.to_string(), endpoint);
        if self.default.as_ref().is_none_or(|d| !self.endpoints.contains_key(d)) {
            self.default = Some(name.to_string());
        }
    }

    /// The endpoint `which` names: an endpoint's name, or a URL (then the credentials of the
    /// endpoint with that URL, else of the default endpoint). `None`: the default.
    pub fn resolve(&self, which: Option<&str>) -> Result<(String, Endpoint), String> {
        let names = || {
            if self.endpoints.is_empty() {
                "the config has no endpoints".to_string()
            } else {
                format!(
                    "the config has {}",
                    self.endpoints.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            }
        };
        match which {
            None => {
                let name = self
                    .default
                    .clone()
                    .or_else(|| {
                        (self.endpoints.len() == 1)
                            .then(|| self.endpoints.keys().next().cloned())
                            .flatten()
                    })
                    .ok_or_else(|| {
                        format!(
                            "no endpoint given and no default: pass --endpoint NAME|URL ({})",
                            names()
                        )
                    })?;
                let e = self
                    .endpoints
                    .get(&name)
                    .ok_or_else(|| format!("the default endpoint `{name}` is not in the config ({})", names()))?;
                Ok((name, e.clone()))
            }
            Some(w) if w.starts_with("http://") || w.starts_with("https://") => {
                let url = w.trim_end_matches('/');
                if let Some((n, e)) = self.endpoints.iter().find(|(_, e)| e.url.trim_end_matches('/') == url) {
                    return Ok((n.clone(), e.clone()));
                }
                let (_, base) = self
                    .resolve(None)
                    .map_err(|_| format!("no credentials for {url}: no endpoint in the config has that URL, and there is no default to take them from"))?;
                Ok((
                    url.to_string(),
                    Endpoint {
                        url: url.to_string(),
                        ..base
                    },
                ))
            }
            Some(name) => self
                .endpoints
                .get(name)
                .map(|e| (name.to_string(), e.clone()))
                .ok_or_else(|| {
                    format!(
                        "no endpoint named `{name}` ({}); pass a name or an http(s):// URL",
                        names()
                    )
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(url: &str, token: &str) -> Endpoint {
        Endpoint {
            url: url.into(),
            token: token.into(),
            ca: None,
        }
    }

    #[test]
    fn saves_loads_and_resolves() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("sub/client.toml");
        assert_eq!(ClientConfig::load(&path).unwrap(), ClientConfig::default());
        let mut c = ClientConfig::default();
        c.set("local", ep("http://127.0.0.1:7420", "vyoma_a"));
        c.set("kiosk", ep("https://10.0.0.5:7443", "vyoma_b"));
        assert_eq!(c.default.as_deref(), Some("local"));
        c.save(&path).unwrap();
        let back = ClientConfig::load(&path).unwrap();
        assert_eq!(back, c);
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

        assert_eq!(back.resolve(None).unwrap().0, "local");
        assert_eq!(back.resolve(Some("kiosk")).unwrap().1.token, "vyoma_b");
        // A URL finds its endpoint, or borrows the default's credentials.
        assert_eq!(back.resolve(Some("https://10.0.0.5:7443/")).unwrap().0, "kiosk");
        let (name, e) = back.resolve(Some("http://127.0.0.1:9999")).unwrap();
        assert_eq!((name.as_str(), e.token.as_str()), ("http://127.0.0.1:9999", "vyoma_a"));
        let e = back.resolve(Some("nope")).unwrap_err();
        assert_eq!(
            e,
            "no endpoint named `nope` (the config has kiosk, local); pass a name or an http(s):// URL"
        );
        let e = ClientConfig::default().resolve(None).unwrap_err();
        assert!(e.contains("no endpoint given and no default"), "{e}");
    }

    #[test]
    fn a_broken_file_names_itself() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("client.toml");
        std::fs::write(&path, "[endpoints.x]\nurl = 1\n").unwrap();
        let e = ClientConfig::load(&path).unwrap_err().to_string();
        assert!(e.contains("client.toml") && e.contains("invalid type"), "{e}");
    }
}
