//! The management API: every VyomaOS instance, hosted or booted, managed over the network
//! by people and scripts.
//!
//! What it is for: the server ([`Api`]: HTTP/1.1 over TCP, TLS with rustls on any address
//! but loopback, a bearer token on every endpoint but the probes, on a thread of its own),
//! `/metrics` ([`metrics`], Prometheus text), the credentials the server loads and
//! `vyoma image build` / `vyoma run` make ([`credentials`], [`token`]), the operator's
//! client config ([`config`]) and, with the `client` feature, the remote client
//! ([`client`]) behind `vyoma --endpoint`.
//!
//! What it is not for: what a request means (`vyoma_control::http` routes requests to
//! commands, purely) or how a command is carried out (the supervisor's
//! `console::execute`, shared with the console). Replies are the console's typed
//! [`vyoma_control::Reply`] as JSON, so a remote `ps` prints what the local one prints.

#[cfg(feature = "client")]
pub mod client;
pub mod config;
pub mod credentials;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
mod server;
pub mod token;

pub use config::{ClientConfig, Endpoint};
pub use credentials::{ServerCredentials, files};
#[cfg(feature = "server")]
pub use server::{Api, ApiConfig, HEADER_TIMEOUT, MAX_CONNECTIONS, REPLY_GRACE, ServeError, api_error, bind};
pub use token::{Token, TokenDigest};

use std::path::PathBuf;

/// Problems with credentials and config files, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file's contents are wrong.
    #[error("{}: {why}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The system's random generator failed.
    #[error("cannot make a token: the system's random generator failed: {0}")]
    Random(String),
    /// rcgen could not make a certificate.
    #[error("cannot make the API's certificates: {0}")]
    Generate(String),
}
