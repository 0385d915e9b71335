//! The bootable VyomaOS image: a minimal Linux kernel and an initramfs whose `/init` is the
//! supervisor (`vyoma-init`), with every app precompiled for it.
//!
//! What it is for: `vyoma image build` ([`build`]) and `vyoma boot` ([`qemu`]). The kernel is
//! built from Debian's Linux 6.1 source with `kernel.config` on top of `allnoconfig`, once
//! per configuration, and cached outside the work tree ([`kernel`]). The initramfs is a
//! deterministic, zstd-compressed newc archive ([`initramfs`]). Apps are validated as a set
//! and their components compiled here, with the exact engine settings of the image's
//! supervisor, so nothing is compiled at boot ([`stage`]).
//!
//! What it is not for: what runs inside the image (`vyoma-init`, `vyoma-supervisor`).

pub mod accel;
pub mod initramfs;
pub mod kernel;
pub mod oci;
pub mod qemu;
pub mod stage;

use std::fmt;
use std::path::{Path, PathBuf};

use vyoma_manifest::Diagnostics;

pub use stage::StagedApp;

/// Where the image keeps its precompiled apps: the only folder the image's supervisor
/// loads machine code from.
pub const ARTIFACTS: &str = vyoma_runtime::IMAGE_ARTIFACTS;

/// A path in this source tree (the `vyoma` and `vyoma-bench` binaries run from their
/// checkout).
pub fn source_tree(rel: &str) -> PathBuf {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    root.canonicalize().unwrap_or(root).join(rel)
}

/// A static musl binary `./dev image` builds with cargo profile `profile` (`image`; the
/// compiler's is `image-compiler`), in this source tree.
pub fn musl_build(profile: &str, name: &str) -> PathBuf {
    source_tree(&format!("target/x86_64-unknown-linux-musl/{profile}/{name}"))
}

/// The image's supervisor: `$VYOMA_INIT`, else the `vyoma-init` `./dev image` builds.
pub fn default_init() -> PathBuf {
    std::env::var_os("VYOMA_INIT")
        .map(PathBuf::from)
        .unwrap_or_else(|| musl_build("image", "vyoma-init"))
}

/// The image's compiler: `$VYOMA_COMPILE`, else the `vyoma-compile` `./dev image` builds.
pub fn default_compiler() -> PathBuf {
    std::env::var_os("VYOMA_COMPILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| musl_build("image-compiler", "vyoma-compile"))
}

/// The app store's disk `vyoma boot` makes in the image folder.
pub const STORE_DISK_FILE: &str = "store.ext4";
/// The kernel's file in an image folder.
pub const KERNEL_FILE: &str = "bzImage";
/// The initramfs's file in an image folder.
pub const INITRAMFS_FILE: &str = "initramfs.cpio.zst";
/// The kernel command line's file in an image folder.
pub const CMDLINE_FILE: &str = "cmdline";
/// The kernel command line an image boots with: the serial console, no kernel chatter,
/// and a kernel panic reboots at once (which, under `vyoma boot`, ends QEMU).
pub const DEFAULT_CMDLINE: &str = "console=ttyS0 quiet panic=-1";

/// The folder next to the image holding its API credentials (the CA's key stays here; the
/// server's certificate, key and token digest also go into the initramfs).
pub const API_DIR: &str = "api";
/// The client config written next to the image (endpoint `image`).
pub const CLIENT_CONFIG: &str = "client.toml";
/// Where the image's supervisor finds its API credentials.
pub const IMAGE_API_DIR: &str = "etc/vyoma/api";
/// The guest port of the management API.
pub const API_PORT: u16 = 7443;
/// The host port `vyoma boot` forwards to it by default.
pub const HOST_API_PORT: u16 = 7443;
/// The guest port of the HTTP gateway (`vyoma.http=` in the image's supervisor).
pub const HTTP_PORT: u16 = 80;
/// The host port `vyoma boot` forwards to it by default.
pub const HOST_HTTP_PORT: u16 = 8080;

/// Why an image could not be built or started.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The apps are invalid; every problem with file, line and column.
    #[error("{0}")]
    Apps(Diagnostics),
    /// No Linux source to build the kernel from.
    #[error(
        "no Linux source found in /usr/src: install Debian's `linux-source` package (`apt-get install linux-source`), or set VYOMA_LINUX_SOURCE to a linux-source-*.tar.xz"
    )]
    NoKernelSource,
    /// Kconfig dropped symbols of `kernel.config` (a dependency is missing).
    #[error("the kernel configuration lost symbols of crates/vyoma-image/kernel.config (a dependency is not enabled): {}", .0.join(", "))]
    KernelConfig(Vec<String>),
    /// The supervisor binary for the image is missing.
    #[error("the image's init {} does not exist: build it with `./dev image` (a static x86_64-unknown-linux-musl build of vyoma-init)", .0.display())]
    NoInit(PathBuf),
    /// The compiler helper for the image is missing.
    #[error("the image's compiler {} does not exist: build it with `./dev image` (a static x86_64-unknown-linux-musl build of vyoma-compile)", .0.display())]
    NoCompiler(PathBuf),
    /// A symbolic link in an app folder that the image cannot carry.
    #[error("{}: {problem}; an image carries only the files inside each app's folder: copy the file in instead of linking to it", link.display())]
    Link {
        /// The link.
        link: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// An invalid accelerator choice.
    #[error("{0}")]
    Accel(String),
    /// No image in that folder.
    #[error("no image in {}: it needs bzImage and initramfs.cpio.zst; build one with `vyoma image build`", .0.display())]
    NoImage(PathBuf),
    /// An external tool failed.
    #[error("{what} failed: {detail}")]
    Tool {
        /// The tool.
        what: String,
        /// Its output or why it could not run.
        detail: String,
    },
    /// A file is larger than a cpio archive can hold (4 GiB).
    #[error("{0} is too large for the initramfs")]
    TooBig(String),
    /// Reading or writing a file failed.
    #[error("the API's credentials: {0}")]
    Credentials(#[from] vyoma_api::CredentialsError),
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

impl ImageError {
    pub(crate) fn io(what: String, source: std::io::Error) -> ImageError {
        ImageError::Io { what, source }
    }
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// A folder of app folders.
    pub apps: PathBuf,
    /// The static `vyoma-init` binary.
    pub init: PathBuf,
    /// The static `vyoma-compile` binary: the device's compiler for deployed apps, carried
    /// zstd-compressed and unpacked only to compile. `None`: an image that cannot compile
    /// what is deployed to it (the boot benchmark's image of an older `/init`).
    pub compiler: Option<PathBuf>,
    /// Where to write the image.
    pub out: PathBuf,
    /// The cache root (the kernel is kept under `kernel/`).
    pub cache_root: PathBuf,
    /// Also write the OCI image archive ([`oci::OCI_ARCHIVE`]).
    pub oci: bool,
    /// Names (or addresses) clients reach the API under, for its certificate.
    pub api_names: Vec<String>,
    /// Kernel command line options added to the image's ([`DEFAULT_CMDLINE`]), e.g.
    /// `vyoma.layout=kiosk`: the image's own settings.
    pub append: String,
}

/// What was built.
#[derive(Debug, Clone)]
pub struct ImageReport {
    /// The image folder.
    pub dir: PathBuf,
    /// The kernel's configuration hash.
    pub kernel_key: String,
    /// Whether the kernel was built now (else it came from the cache).
    pub kernel_built: bool,
    /// Kernel size in bytes.
    pub kernel_size: u64,
    /// Compressed initramfs size in bytes.
    pub initramfs_size: u64,
    /// Uncompressed initramfs size in bytes.
    pub initramfs_unpacked: u64,
    /// The init binary's size.
    pub init_size: u64,
    /// The compiler helper: its path in the image, its compressed and unpacked sizes.
    pub compiler: Option<(String, u64, u64)>,
    /// The apps.
    pub apps: Vec<StagedApp>,
    /// The OCI archive, when asked for.
    pub oci: Option<oci::OciReport>,
}

impl ImageReport {
    /// Kernel plus initramfs.
    pub fn total(&self) -> u64 {
        self.kernel_size + self.initramfs_size
    }

    /// Bytes of precompiled apps in the image (each shared artifact once).
    pub fn artifacts_size(&self) -> u64 {
        let distinct: std::collections::BTreeMap<&str, u64> = self
            .apps
            .iter()
            .map(|a| (a.artifact.as_str(), a.artifact_size))
            .collect();
        distinct.values().sum()
    }
}

fn size(n: u64) -> String {
    bytesize::ByteSize(n).display().iec().to_string()
}

impl fmt::Display for ImageReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let row = |f: &mut fmt::Formatter<'_>, name: &str, n: u64, what: &str| {
            writeln!(f, "  {name:<26}{:>10}  {what}", size(n))
        };
        writeln!(f, "image: {}", self.dir.display())?;
        row(
            f,
            KERNEL_FILE,
            self.kernel_size,
            &format!(
                "Linux 6.1, config {} ({})",
                self.kernel_key,
                if self.kernel_built { "built now" } else { "cached" }
            ),
        )?;
        row(
            f,
            INITRAMFS_FILE,
            self.initramfs_size,
            &format!("zstd; {} unpacked:", size(self.initramfs_unpacked)),
        )?;
        row(f, "  /init", self.init_size, "vyoma-init (static)")?;
        if let Some((path, packed, unpacked)) = &self.compiler {
            row(
                f,
                &format!("  {ARTIFACTS}/vyoma-compile"),
                *packed,
                &format!(
                    "the compiler for deployed apps, zstd ({} unpacked when one is compiled): {path}",
                    size(*unpacked)
                ),
            )?;
        }
        for a in &self.apps {
            let data = if a.data_size > 0 {
                format!(", {} of data", size(a.data_size))
            } else {
                String::new()
            };
            let sharing = self.apps.iter().filter(|b| b.artifact == a.artifact).count();
            let shared = if sharing > 1 {
                format!(", shared by {sharing} apps")
            } else {
                String::new()
            };
            row(
                f,
                &format!("  /apps/{}", a.name),
                a.artifact_size,
                &format!("{}{shared} (from {} .wasm){data}", a.artifact, size(a.wasm_size)),
            )?;
        }
        write!(
            f,
            "  {:<26}{:>10}  kernel + initramfs, {} apps",
            "total",
            size(self.total()),
            self.apps.len()
        )?;
        if let Some(o) = &self.oci {
            write!(
                f,
                "\n  {:<26}{:>10}  OCI image archive (owner 107:107, {} and {}), manifest {}",
                oci::OCI_ARCHIVE,
                size(o.size),
                oci::KERNEL_PATH,
                oci::INITRD_PATH,
                o.manifest_digest
            )?;
        }
        Ok(())
    }
}

/// Builds the image: the (cached) kernel, and an initramfs with `/init` and the apps.
pub fn build(opts: &BuildOptions) -> Result<ImageReport, ImageError> {
    let init = std::fs::read(&opts.init).map_err(|_| ImageError::NoInit(opts.init.clone()))?;
    let mut tree = initramfs::Tree::base();
    let apps = stage::stage_apps(&opts.apps, &mut tree)?;
    let init_size = init.len() as u64;
    let compiler = match &opts.compiler {
        Some(path) => Some(add_compiler(&mut tree, path)?),
        None => None,
    };
    tree.add(
        "init",
        initramfs::Node::File {
            mode: 0o755,
            data: init,
        },
    );
    let api = credentials(&opts.out, &opts.api_names)?;
    for name in [
        vyoma_api::files::SERVER_CERT,
        vyoma_api::files::SERVER_KEY,
        vyoma_api::files::TOKEN_DIGEST,
    ] {
        let data = std::fs::read(api.join(name))
            .map_err(|e| ImageError::io(format!("reading {}", api.join(name).display()), e))?;
        tree.add(
            &format!("{IMAGE_API_DIR}/{name}"),
            initramfs::Node::File { mode: 0o600, data },
        );
    }
    tree.add(
        "etc/os-release",
        initramfs::Node::File {
            mode: 0o644,
            data: format!("NAME=VyomaOS\nID=vyomaos\nVERSION_ID={}\n", env!("CARGO_PKG_VERSION")).into_bytes(),
        },
    );
    let kernel = kernel::kernel(&opts.cache_root)?;
    let cpio = tree.to_cpio()?;
    let unpacked = cpio.len() as u64;
    let packed = initramfs::compress(&cpio)?;
    let cmdline = format!("{DEFAULT_CMDLINE} {}", opts.append.trim()).trim().to_string();
    write(&opts.out, &kernel.path, &packed, &cmdline)?;
    let oci = if opts.oci {
        let kernel_bytes =
            std::fs::read(&kernel.path).map_err(|e| ImageError::io(format!("reading {}", kernel.path.display()), e))?;
        Some(oci::write_archive(
            &opts.out.join(oci::OCI_ARCHIVE),
            &kernel_bytes,
            &packed,
            &cmdline,
        )?)
    } else {
        None
    };
    Ok(ImageReport {
        dir: opts.out.clone(),
        kernel_key: kernel.key,
        kernel_built: kernel.built,
        kernel_size: std::fs::metadata(&kernel.path).map(|m| m.len()).unwrap_or(0),
        initramfs_size: packed.len() as u64,
        initramfs_unpacked: unpacked,
        init_size,
        compiler,
        apps,
        oci,
    })
}

/// Adds the compiler helper at `path` to the image, zstd-compressed under the name that
/// promises its hash (what the supervisor finds and checks, `vyoma_runtime::CompilerHelper`).
/// Returns its path in the image and its compressed and unpacked sizes. Compressed apart,
/// it passes through the boot's unpacking of the initramfs as stored bytes.
fn add_compiler(tree: &mut initramfs::Tree, path: &Path) -> Result<(String, u64, u64), ImageError> {
    let exe = std::fs::read(path).map_err(|_| ImageError::NoCompiler(path.to_path_buf()))?;
    let packed = initramfs::compress(&exe)?;
    let at = format!("{ARTIFACTS}/{}", vyoma_runtime::helper_file_name(&packed));
    let sizes = (packed.len() as u64, exe.len() as u64);
    tree.add(
        &at,
        initramfs::Node::File {
            mode: 0o644,
            data: packed,
        },
    );
    Ok((at, sizes.0, sizes.1))
}

/// The image's API credentials in `out/api`: kept from an earlier build when the client
/// config next to them still holds the matching token and the certificate was made for
/// `names`, else made afresh (and the client config rewritten). Returns the folder.
fn credentials(out: &Path, names: &[String]) -> Result<PathBuf, ImageError> {
    let dir = out.join(API_DIR);
    let config_path = out.join(CLIENT_CONFIG);
    let config = vyoma_api::ClientConfig::load(&config_path)?;
    // The names the certificate was made for, one per line.
    let names_file = dir.join("names");
    let wanted = names.join("\n");
    let kept = vyoma_api::ServerCredentials::load(&dir, true)
        .ok()
        .is_some_and(|c| config.endpoints.get("image").is_some_and(|e| c.token.matches(&e.token)))
        && std::fs::read_to_string(&names_file).unwrap_or_default() == wanted;
    if !kept {
        let made = vyoma_api::credentials::generate(&dir, names)?;
        std::fs::write(&names_file, &wanted)
            .map_err(|e| ImageError::io(format!("writing {}", names_file.display()), e))?;
        let mut config = vyoma_api::ClientConfig::default();
        config.set(
            "image",
            vyoma_api::Endpoint {
                url: format!("https://127.0.0.1:{HOST_API_PORT}"),
                token: made.token.as_str().to_string(),
                ca: Some(made.ca_pem),
            },
        );
        config.save(&config_path)?;
    }
    Ok(dir)
}

fn write(out: &Path, kernel: &Path, initramfs: &[u8], cmdline: &str) -> Result<(), ImageError> {
    std::fs::create_dir_all(out).map_err(|e| ImageError::io(format!("creating {}", out.display()), e))?;
    std::fs::copy(kernel, out.join(KERNEL_FILE)).map_err(|e| ImageError::io("copying the kernel".into(), e))?;
    std::fs::write(out.join(INITRAMFS_FILE), initramfs)
        .map_err(|e| ImageError::io("writing the initramfs".into(), e))?;
    std::fs::write(out.join(CMDLINE_FILE), format!("{cmdline}\n"))
        .map_err(|e| ImageError::io("writing the kernel command line".into(), e))?;
    Ok(())
}
