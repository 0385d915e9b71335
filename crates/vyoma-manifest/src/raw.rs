//! The manifest as written: serde structs mirroring the TOML, with spans, before validation.
//! Unknown keys are errors everywhere.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawManifest {
    pub manifest_version: Option<Spanned<i64>>,
    pub app: Option<Spanned<RawApp>>,
    #[serde(default)]
    pub env: BTreeMap<Spanned<String>, Spanned<String>>,
    pub restart: Option<RawRestart>,
    pub lifecycle: Option<RawLifecycle>,
    pub limits: Option<RawLimits>,
    pub capabilities: Option<RawCapabilities>,
    pub http: Option<RawHttp>,
    pub update: Option<RawUpdate>,
    pub build: Option<Spanned<RawBuild>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBuild {
    pub command: Option<Spanned<String>>,
    pub workdir: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpdate {
    pub probation: Option<Spanned<String>>,
    pub health: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttp {
    #[serde(default)]
    pub routes: Vec<Spanned<RawRoute>>,
    pub max_in_flight: Option<Spanned<i64>>,
    pub max_body: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub path: Option<Spanned<String>>,
    pub host: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttpGrant {
    #[serde(default)]
    pub outbound: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApp {
    pub name: Option<Spanned<String>>,
    pub version: Option<Spanned<String>>,
    #[serde(default)]
    pub description: String,
    pub component: Option<Spanned<String>>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub depends_on: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRestart {
    pub policy: Option<Spanned<String>>,
    pub backoff: Option<Spanned<String>>,
    pub max_backoff: Option<Spanned<String>>,
    pub intensity: Option<Spanned<i64>>,
    pub period: Option<Spanned<String>>,
    pub retry_after: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLifecycle {
    pub start_timeout: Option<Spanned<String>>,
    pub stop_timeout: Option<Spanned<String>>,
    pub required: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub memory: Option<Spanned<String>>,
    pub table_elements: Option<Spanned<i64>>,
    pub instances: Option<Spanned<i64>>,
    pub log_buffer: Option<Spanned<String>>,
    pub inbox: Option<Spanned<i64>>,
    pub inbox_bytes: Option<Spanned<String>>,
    pub message_size: Option<Spanned<String>>,
    pub handles: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCapabilities {
    #[serde(default)]
    pub dirs: Vec<Spanned<RawDir>>,
    #[serde(default)]
    pub inherit_env: Vec<Spanned<String>>,
    pub stdin: Option<Spanned<String>>,
    pub data: Option<Spanned<bool>>,
    pub network: Option<RawNetwork>,
    pub ipc: Option<RawIpc>,
    pub http: Option<RawHttpGrant>,
    pub display: Option<Spanned<RawDisplay>>,
    pub input: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDisplay {
    pub max: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDir {
    pub host: Option<Spanned<String>>,
    pub guest: Option<Spanned<String>>,
    pub mode: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNetwork {
    #[serde(default)]
    pub connect: Vec<Spanned<String>>,
    #[serde(default)]
    pub bind: Vec<Spanned<String>>,
    #[serde(default)]
    pub dns: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIpc {
    #[serde(default)]
    pub send: Vec<Spanned<String>>,
    #[serde(default)]
    pub accept: Vec<Spanned<String>>,
}
