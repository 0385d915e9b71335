//! The Wasmtime layer of VyomaOS: one shared engine, the compile cache, and running one
//! instance of an app in a sandbox built only from its manifest.
//!
//! What it is for: turning a `.wasm` component into something cheap to instantiate many
//! times ([`Runtime::load`]), and running one instance to its end ([`Runtime::run`]),
//! reporting a precise [`ExitReason`]. Apps are preempted by epoch interruption and yield
//! to the async scheduler, so a busy loop cannot starve anything; an app that uses whole
//! slices runs in a lower-priority lane ([`Lanes`]), so apps that wake and wait briefly
//! are never queued behind it. Every wait inside a
//! WASI or IPC call is an async wait that costs no OS thread and can be cancelled by
//! dropping the future (that is how the supervisor kills an app). It also holds the host
//! side of `vyoma:app/ipc` (over `vyoma-ipc`'s broker) and, with the `compiler` feature,
//! compiles apps for the image ([`precompile_for_image`]); without it (the image's
//! supervisor) it only loads those artifacts.
//!
//! What it is not for: deciding when apps start, stop or restart (`vyoma-supervisor` with
//! `vyoma-lifecycle`), or parsing manifests (`vyoma-manifest`).

#[cfg(feature = "adapt")]
mod adapt;
mod bindings;
mod budget;
mod cache;
mod capacity;
mod display;
mod engine;
mod exit;
mod helper;
mod host;
mod http;
mod ipc;
mod lifecycle;
mod pace;
mod place;
mod sandbox;
mod sched;
mod stdio;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use vyoma_ipc::Endpoint;
use vyoma_lifecycle::ExitReason;
use vyoma_manifest::Manifest;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

pub use budget::{BudgetExceeded, MemoryBudget};
pub use cache::{CacheOutcome, CompileCache, IMAGE_ARTIFACTS, IMAGE_TARGET, image_artifact_name, sha256_hex};
#[cfg(feature = "compiler")]
pub use cache::{engine_fingerprint, precompile_for_image, precompile_native};
pub use capacity::{Capacity, MachineFacts, maps_per_instance};
pub use display::{DISPLAY_INTERFACE, DisplayView};
pub use engine::{Allocator, MAX_APP_MEMORY, MAX_TABLE_ELEMENTS, PoolingChoice};
pub use helper::{CompilerHelper, helper_file_name, write_framed};
pub use host::{FdLimit, raise_fd_limit};
pub use http::{BoxError, ChainError, HandleError, HttpApp, HttpBody, HttpChain, INCOMING_HANDLER, RequestEnd};
pub use ipc::{IPC_INTERFACE, IpcView};
pub use lifecycle::{LIFECYCLE_INTERFACE, LifecycleView, StopRequest, StopSignal};
pub use pace::{Lane, Pace, PacePolicy};
pub use sandbox::{InstanceState, MAX_STDIN, MemoryLimitExceeded};
pub use sched::{Lanes, Pacer, Seat, supervisor_runtime};
pub use stdio::AppLog;

/// Errors loading components or building the engine. Running an instance never errors:
/// every way it can end is an [`ExitReason`].
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine could not be created.
    #[error("cannot create the wasmtime engine: {0}")]
    Engine(String),
    /// The component file could not be read.
    #[error("cannot read component {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is a core wasm module, and this supervisor does not adapt modules (the
    /// image's: `vyoma deploy` and `vyoma image build` adapt preview-1 commands for it).
    #[error("{} is a core wasm module, not a component, and this supervisor runs components only: deploy it with `vyoma deploy` or build the image with `vyoma image build` (both adapt WASI preview-1 command modules), or build it with `--target wasm32-wasip2`", path.display())]
    CoreModule {
        /// The file.
        path: PathBuf,
    },
    /// The file is a core wasm module that is not a WASI preview-1 command.
    #[error("{} is a core wasm module VyomaOS cannot run: {why}. VyomaOS runs components (`--target wasm32-wasip2`) and WASI preview-1 command modules (`--target wasm32-wasip1`: `_start`, imports only from `wasi_snapshot_preview1`)", path.display())]
    NotPreview1 {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The file is not wasm at all, or not valid.
    #[error("cannot compile {}: {message}", path.display())]
    Compile {
        /// The file.
        path: PathBuf,
        /// Wasmtime's explanation.
        message: String,
    },
    /// The component imports something VyomaOS does not provide.
    #[error("cannot link {}: {message}", path.display())]
    Link {
        /// The file.
        path: PathBuf,
        /// Wasmtime's explanation, naming the import.
        message: String,
    },
    /// This supervisor has no compiler (an image's without its compiler helper) and the
    /// file is not precompiled.
    #[error("{} is not precompiled, and this supervisor has no compiler: an image's apps are precompiled by `vyoma image build`, and it compiles apps deployed later with its compiler (/lib/vyoma/vyoma-compile-*.zst, which `./dev image` builds and `vyoma image build` adds)", path.display())]
    NoCompiler {
        /// The file.
        path: PathBuf,
    },
    /// A precompiled artifact where only components are trusted.
    #[error("{} is a precompiled artifact (machine code); they are only loaded by a VyomaOS image's supervisor from its own /lib/vyoma: give the app's .wasm component instead", path.display())]
    Untrusted {
        /// The file.
        path: PathBuf,
    },
    /// An image artifact whose bytes are not the ones the image builder recorded.
    #[error("{} is damaged: its {digest} is {actual}, but the image builder recorded {expected}; rebuild the image with `vyoma image build`", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Which hash was checked: `XXH3-128` or `SHA-256`.
        digest: &'static str,
        /// The hash in its name.
        expected: String,
        /// The hash of its bytes.
        actual: String,
    },
    /// A precompiled artifact made for another engine (other Wasmtime, settings or target).
    #[error("{} was precompiled for a different engine: {message}; rebuild the image with `vyoma image build`", path.display())]
    Incompatible {
        /// The file.
        path: PathBuf,
        /// Wasmtime's explanation.
        message: String,
    },
    /// The component exports neither `wasi:cli/run` nor `wasi:http/incoming-handler`.
    #[error("{} exports neither `wasi:cli/run` nor `wasi:http/incoming-handler` ({message}): build it as a command (a Rust `fn main` for wasm32-wasip2) or as an HTTP handler", path.display())]
    NotACommand {
        /// The file.
        path: PathBuf,
        /// Wasmtime's explanation.
        message: String,
    },
}

/// Settings for the runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// How many instances may exist at once (the pool size).
    pub capacity: u32,
    /// Pooling allocator choice.
    pub pooling: PoolingChoice,
    /// Folder of the on-disk compile cache; `None` disables it.
    pub cache_dir: Option<PathBuf>,
    /// How instances share the CPU.
    pub scheduling: Scheduling,
    /// The memory budget all apps share, in bytes (linear memory plus waiting IPC
    /// messages); `None`: the machine's memory less an eighth (at least 64 MiB) for the
    /// supervisor and kernel ([`MemoryBudget::default_limit`]).
    pub memory_budget: Option<u64>,
    /// Most instances at once, if the operator wants fewer than the machine can hold
    /// ([`Capacity`]).
    pub max_instances: Option<u64>,
    /// How linear memories get their initial data: copied from the data segments into
    /// each instance, or mapped from a copy-on-write image of them ([`MemoryImages`]).
    pub memory_images: MemoryImages,
    /// Load precompiled artifacts (`.cwasm`) named by manifests, only from this folder,
    /// and only when their bytes hash to what their name records. Only the image's
    /// supervisor, as PID 1, sets it (to its initramfs's `/lib/vyoma`): artifacts are
    /// machine code, trusted because the image builder made them. `None`: refuse them.
    pub trusted_artifacts: Option<PathBuf>,
    /// Compile with this helper (the image's `vyoma-compile`, in a process of its own)
    /// instead of in-process. Only the image's supervisor sets it, to the one in its
    /// `trusted_artifacts` folder.
    pub compiler_helper: Option<CompilerHelper>,
}

/// How an instance's linear memory gets its initial data (`--memory-images`).
///
/// Measured (docs/PERFORMANCE.md, "Apps per language"): for small apps, copying starts
/// as fast or faster at no cost in memory, since breaking copy-on-write pages costs
/// cross-CPU TLB shootdowns; for components that carry an interpreter and its heap
/// (Python, JavaScript: 10-18 MiB), images start 100 Python copies 1.7x faster in 2.6x
/// less memory. The setting is the engine's, one for every app of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemoryImages {
    /// Copy the data segments into each new instance.
    Copy,
    /// Map a copy-on-write image of them.
    Cow,
    /// Chosen from the app set when the supervisor starts ([`MemoryImages::for_components`]);
    /// a runtime created with `Auto` copies.
    #[default]
    Auto,
}

impl MemoryImages {
    /// Components this large (a file of at least 4 MiB: an interpreter and its heap)
    /// make `Auto` choose images.
    pub const LARGE_COMPONENT: u64 = 4 << 20;

    /// What `Auto` becomes for an app set whose component files have these sizes:
    /// images if one of them is [`MemoryImages::LARGE_COMPONENT`] or more.
    pub fn for_components(self, sizes: impl IntoIterator<Item = u64>) -> MemoryImages {
        match self {
            MemoryImages::Auto if sizes.into_iter().any(|s| s >= Self::LARGE_COMPONENT) => MemoryImages::Cow,
            MemoryImages::Auto => MemoryImages::Copy,
            other => other,
        }
    }
}

impl std::str::FromStr for MemoryImages {
    type Err = String;
    fn from_str(s: &str) -> Result<MemoryImages, String> {
        match s {
            "auto" => Ok(MemoryImages::Auto),
            "copy" => Ok(MemoryImages::Copy),
            "cow" => Ok(MemoryImages::Cow),
            _ => Err(format!("`{}`: use auto, copy or cow", s.escape_debug())),
        }
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            capacity: 1024,
            pooling: PoolingChoice::Auto,
            cache_dir: default_cache_dir(),
            scheduling: Scheduling::default(),
            memory_budget: None,
            max_instances: None,
            memory_images: MemoryImages::Auto,
            trusted_artifacts: None,
            compiler_helper: None,
        }
    }
}

/// How instances share the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduling {
    /// Many apps in one process: an epoch thread preempts a running app every `slice`;
    /// apps run on `shards` single-threaded interactive runtimes, those that message each
    /// other on the same one (0: every app where the supervisor polls it, on any of its
    /// workers), and apps that use whole slices run in the batch lane, on `batch_threads`
    /// threads of the lowest OS priority (0: no batch lane).
    Shared {
        /// The preemption tick, and how long an app may run before it yields.
        slice: Duration,
        /// Interactive shards (a thread each).
        shards: usize,
        /// Threads of the batch lane.
        batch_threads: usize,
    },
    /// One app alone in its process (the process-per-app baseline): no epoch thread, no
    /// batch lane, as `wasmtime run` would run it.
    Alone,
}

impl Default for Scheduling {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Scheduling::Shared {
            slice: Duration::from_millis(10),
            shards: cores,
            batch_threads: cores,
        }
    }
}

/// `$VYOMA_CACHE_DIR`, else `$XDG_CACHE_HOME/vyoma`, else `~/.cache/vyoma`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("VYOMA_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("vyoma"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/vyoma"))
}

/// What a component imports and exports, for `inspect`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComponentInfo {
    /// Imported interface names.
    pub imports: Vec<String>,
    /// Exported interface names.
    pub exports: Vec<String>,
}

/// A component ready to instantiate: compiled, linked against WASI, checked to be a command.
pub struct Loaded {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// Size of the file in bytes.
    pub size: u64,
    /// The file is a WASI preview-1 command module, run through the preview-1 adapter.
    pub adapted: bool,
    /// Whether it came from the disk cache or was compiled.
    pub outcome: CacheOutcome,
    /// Its imports and exports.
    pub info: ComponentInfo,
    kind: Kind,
}

/// What a component is for, pre-instantiated.
#[derive(Clone)]
enum Kind {
    /// A command: `wasi:cli/run` runs once per instance.
    Command(CommandPre<InstanceState>),
    /// An HTTP handler: one instance per request, served by the gateway.
    Http(ProxyPre<InstanceState>),
}

impl Loaded {
    /// Whether the component is an HTTP handler (exports `wasi:http/incoming-handler`):
    /// the gateway serves it, one instance per request.
    pub fn is_http(&self) -> bool {
        matches!(self.kind, Kind::Http(_))
    }

    /// Whether this component can be the app `m` describes: routes in `[http]` need an
    /// HTTP handler (a command would never answer them).
    pub fn fits(&self, m: &Manifest) -> Result<(), String> {
        if !m.http.routes.is_empty() && !self.is_http() {
            return Err(format!(
                "app `{}` has [http] routes, but {} is a command, not an HTTP handler (it does not export `{INCOMING_HANDLER}`): build it as one (e.g. wstd's #[wstd::http_server]) or remove the routes",
                m.name,
                self.path.display()
            ));
        }
        Ok(())
    }

    /// The pieces every request of an HTTP app shares, if this is an HTTP handler.
    pub fn http_app(
        &self,
        manifest: Arc<Manifest>,
        log: Arc<AppLog>,
        memory: Arc<AtomicU64>,
        cpu: Arc<AtomicU64>,
    ) -> Option<HttpApp> {
        match &self.kind {
            Kind::Http(pre) => Some(HttpApp {
                manifest,
                pre: pre.clone(),
                log,
                memory,
                cpu,
            }),
            Kind::Command(_) => None,
        }
    }
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

/// The shared engine and everything built on it.
pub struct Runtime {
    engine: Engine,
    linker: Linker<InstanceState>,
    cache: CompileCache,
    allocator: Allocator,
    /// The image's artifact folder, resolved ([`RuntimeConfig::trusted_artifacts`]).
    trusted_artifacts: Option<PathBuf>,
    /// Folders no app may be granted: they hold what the supervisor executes.
    protected: Vec<PathBuf>,
    loaded: Mutex<HashMap<String, Weak<Loaded>>>,
    lanes: Lanes,
    policy: PacePolicy,
    budget: Arc<MemoryBudget>,
    instances: capacity::Instances,
    /// Where apps' requests to other apps by name go (set once by the supervisor).
    chain: OnceLock<Arc<dyn HttpChain>>,
    _ticker: Option<engine::EpochTicker>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("allocator", &self.allocator)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// The first bytes after `\0asm`: a core module is version 1 layer 0.
const CORE_MODULE_VERSION: [u8; 4] = [1, 0, 0, 0];

/// Whether `wasm` is a core module (not a component).
fn is_core_module(wasm: &[u8]) -> bool {
    wasm.len() >= 8 && wasm[..4] == *b"\0asm" && wasm[4..8] == CORE_MODULE_VERSION
}

/// `wasm` as a component: a WASI preview-1 command module is adapted (with the `adapt`
/// feature; refused without it), anything else is borrowed as it is. The flag says whether
/// it was adapted.
pub fn as_component<'a>(wasm: &'a [u8], origin: &Path) -> Result<(std::borrow::Cow<'a, [u8]>, bool), RuntimeError> {
    if !is_core_module(wasm) {
        return Ok((std::borrow::Cow::Borrowed(wasm), false));
    }
    #[cfg(feature = "adapt")]
    return adapt::preview1_command(wasm, origin).map(|c| (std::borrow::Cow::Owned(c), true));
    #[cfg(not(feature = "adapt"))]
    Err(RuntimeError::CoreModule {
        path: origin.to_path_buf(),
    })
}

impl Runtime {
    /// Creates the engine (pooling if possible), the WASI linker and the epoch ticker.
    pub fn new(config: &RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let (engine, allocator) = engine::build(
            config.pooling,
            config.capacity,
            config.memory_images == MemoryImages::Cow,
        )?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        bindings::vyoma::app::ipc::add_to_linker::<InstanceState, ipc::HasIpc>(&mut linker, InstanceState::ipc_view)
            .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        bindings::vyoma::app::display::add_to_linker::<InstanceState, display::HasDisplay>(
            &mut linker,
            InstanceState::display_view,
        )
        .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        bindings::vyoma::app::input::add_to_linker::<InstanceState, display::HasDisplay>(
            &mut linker,
            InstanceState::display_view,
        )
        .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        bindings::vyoma::app::lifecycle::add_to_linker::<InstanceState, lifecycle::HasLifecycle>(
            &mut linker,
            InstanceState::lifecycle_view,
        )
        .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        // Every app links against wasi:http (toolchains import it whether or not the app
        // uses it); what its manifest does not grant is refused when called.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let cache = CompileCache::new(
            config.cache_dir.as_deref(),
            &engine,
            config.compiler_helper.clone(),
            config.memory_images == MemoryImages::Cow,
        );
        let (ticker, lanes, slice) = match config.scheduling {
            Scheduling::Shared {
                slice,
                shards,
                batch_threads,
            } => (
                Some(engine::EpochTicker::start(engine.clone(), slice)),
                Lanes::new(shards, batch_threads)
                    .map_err(|e| RuntimeError::Engine(format!("cannot start the scheduling lanes: {e}")))?,
                slice,
            ),
            Scheduling::Alone => (None, Lanes::single(), Duration::from_millis(10)),
        };
        let protected = [cache.root(), config.trusted_artifacts.as_deref()]
            .into_iter()
            .flatten()
            .map(|p| p.canonicalize().unwrap_or_else(|_| p.to_path_buf()))
            .collect();
        Ok(Runtime {
            engine,
            linker,
            cache,
            allocator,
            // Resolved once: each load resolves only its own path against it. A folder
            // that does not resolve holds nothing to trust.
            trusted_artifacts: config.trusted_artifacts.as_deref().and_then(|p| p.canonicalize().ok()),
            protected,
            loaded: Mutex::new(HashMap::new()),
            lanes,
            policy: PacePolicy::for_slice(slice),
            budget: Arc::new(MemoryBudget::new(
                config
                    .memory_budget
                    .or_else(MemoryBudget::default_limit)
                    .unwrap_or(u64::MAX),
            )),
            instances: capacity::Instances::new(Capacity::of_machine(
                match allocator {
                    Allocator::Pooling { capacity } => Some(u64::from(capacity)),
                    Allocator::OnDemand => None,
                },
                config.max_instances,
            )),
            chain: OnceLock::new(),
            _ticker: ticker,
        })
    }

    /// Where apps' requests to other apps (`http://NAME.vyoma.internal`) go. Set once, by
    /// the supervisor; before it is set (or without one) such requests find no app.
    pub fn set_http_chain(&self, chain: Arc<dyn HttpChain>) {
        let _ = self.chain.set(chain);
    }

    /// The engine (shared by every app).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Which allocator is in use.
    pub fn allocator(&self) -> Allocator {
        self.allocator
    }

    /// The compile cache.
    pub fn cache(&self) -> &CompileCache {
        &self.cache
    }

    /// The memory budget all apps share.
    pub fn memory_budget(&self) -> &Arc<MemoryBudget> {
        &self.budget
    }

    /// How many instances this machine can hold at once, and why.
    pub fn capacity(&self) -> &Capacity {
        &self.instances.capacity
    }

    /// Instances alive now.
    pub fn live_instances(&self) -> usize {
        self.instances.live()
    }

    /// The lanes instances run in: wrap each instance's future in [`Lanes::run`].
    pub fn lanes(&self) -> &Lanes {
        &self.lanes
    }

    /// Scheduling state for a new instance, adding its CPU time to `cpu` (ns). Pass it to
    /// both [`Runtime::run`] and [`Lanes::run`].
    pub fn pacer(&self, cpu: Arc<AtomicU64>) -> Arc<Pacer> {
        Pacer::new(self.policy, cpu)
    }

    /// Loads a component file. Components already loaded (same bytes) are shared, so
    /// starting many copies of one app compiles and links it once. This can take a while
    /// on a cold cache: call it from a blocking-friendly context.
    pub fn load(&self, path: &Path) -> Result<Arc<Loaded>, RuntimeError> {
        let began = std::time::Instant::now();
        // The image's own artifacts: checked as they are read, then mapped, never copied.
        if let Some(trusted) = &self.trusted_artifacts
            && cache::in_folder(path, trusted)
        {
            let (sha, size) = cache::check_image_artifact(path)?;
            let hashed = began.elapsed();
            if let Some(l) = self.lock_loaded().get(&sha).and_then(Weak::upgrade) {
                return Ok(l);
            }
            let component = cache::map_image_artifact(&self.engine, path)?;
            let steps = LoadSteps {
                read: Duration::ZERO,
                hash: hashed,
                code: began.elapsed() - hashed,
            };
            return self.link(path, sha, size, false, CacheOutcome::Image, component, steps);
        }
        let wasm = std::fs::read(path).map_err(|source| RuntimeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let read = began.elapsed();
        // The file's own hash names it, in memory and in the compile cache: a preview-1
        // module is adapted at each load from its file (milliseconds), compiled once.
        let sha = sha256_hex(&wasm);
        let hashed = began.elapsed();
        if let Some(l) = self.lock_loaded().get(&sha).and_then(Weak::upgrade) {
            return Ok(l);
        }
        let size = wasm.len() as u64;
        let (wasm, adapted) = as_component(&wasm, path)?;
        let (component, outcome) = match wasmtime::Engine::detect_precompiled(&wasm) {
            None => self.cache.load(&self.engine, &wasm, &sha, path)?,
            Some(wasmtime::Precompiled::Module) => {
                return Err(RuntimeError::CoreModule {
                    path: path.to_path_buf(),
                });
            }
            // Machine code is run only from the image's own artifact folder (above).
            Some(_) => {
                return Err(RuntimeError::Untrusted {
                    path: path.to_path_buf(),
                });
            }
        };
        let steps = LoadSteps {
            read,
            hash: hashed - read,
            code: began.elapsed() - hashed,
        };
        self.link(path, sha, size, adapted, outcome, component, steps)
    }

    /// Links a loaded component and records it under its SHA-256, so the next load of the
    /// same bytes shares it.
    #[allow(clippy::too_many_arguments, reason = "what one load found, each distinct")]
    fn link(
        &self,
        path: &Path,
        sha: String,
        size: u64,
        adapted: bool,
        outcome: CacheOutcome,
        component: Component,
        steps: LoadSteps,
    ) -> Result<Arc<Loaded>, RuntimeError> {
        let linking = std::time::Instant::now();
        let info = component_info(&self.engine, &component);
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| RuntimeError::Link {
                path: path.to_path_buf(),
                message: format!("{e:#}"),
            })?;
        // Where a slow start-up's load phase goes (`vyoma.log=vyoma_runtime=debug` in the
        // image): reading the file, hashing it (for the image's artifacts, as it is read),
        // getting its machine code, linking.
        tracing::debug!(
            component = %path.display(),
            bytes = size,
            read_us = steps.read.as_micros() as u64,
            hash_us = steps.hash.as_micros() as u64,
            code_us = steps.code.as_micros() as u64,
            link_us = linking.elapsed().as_micros() as u64,
            ?outcome,
            "component loaded"
        );
        // An HTTP handler first: toolchains that build one (wstd's `http_server`) also
        // export a `wasi:cli/run` that only says to call the handler instead.
        let kind = match ProxyPre::new(pre.clone()) {
            Ok(p) => Kind::Http(p),
            Err(_) => match CommandPre::new(pre) {
                Ok(c) => Kind::Command(c),
                Err(e) => {
                    return Err(RuntimeError::NotACommand {
                        path: path.to_path_buf(),
                        message: format!("{e:#}"),
                    });
                }
            },
        };
        let loaded = Arc::new(Loaded {
            path: path.to_path_buf(),
            sha256: sha.clone(),
            size,
            adapted,
            outcome,
            info,
            kind,
        });
        let mut map = self.lock_loaded();
        map.retain(|_, w| w.strong_count() > 0);
        map.insert(sha, Arc::downgrade(&loaded));
        Ok(loaded)
    }

    /// The app's directory grants this runtime refuses: any that contains, or lies inside,
    /// a folder holding what the supervisor executes (the compile cache, the image's
    /// artifacts). Through such a grant an app could plant machine code the supervisor
    /// would run. Each problem points at the grant in the manifest.
    pub fn grant_problems(&self, m: &Manifest) -> Vec<vyoma_manifest::Diagnostic> {
        m.capabilities
            .dirs
            .iter()
            .filter_map(|d| {
                let p = sandbox::protected_overlap(&d.host.value, &self.protected)?;
                Some(
                    m.source
                        .diagnostic(
                            d.host.span.clone(),
                            format!(
                                "granted directory `{}` overlaps {}, which holds machine code VyomaOS runs: no app may be granted it",
                                d.host.value.display(),
                                p.display()
                            ),
                        )
                        .with_help("grant a folder outside it, or move the compile cache elsewhere (VYOMA_CACHE_DIR)"),
                )
            })
            .collect()
    }

    /// A store for one instance: its limiter, and preemption as `pacer` says. At each
    /// epoch tick the instance yields to the scheduler if it has run a whole slice;
    /// `yield_now` (not `Yield`) so tokio's LIFO slot cannot resume this same task
    /// immediately (wasmtime#10667).
    pub(crate) fn store(&self, state: InstanceState, pacer: Arc<Pacer>) -> Store<InstanceState> {
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if pacer.at_tick() {
                UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))
            } else {
                UpdateDeadline::Continue(1)
            })
        });
        store
    }

    fn lock_loaded(&self) -> std::sync::MutexGuard<'_, HashMap<String, Weak<Loaded>>> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs one instance of `manifest`'s app from `component` until it ends, and says why
    /// it ended. The instance talks to other apps through `ipc`, learns through `stop`
    /// that it is asked to end, and yields at preemption ticks as `pacer` says. `on_running` is called once the instance exists and
    /// `wasi:cli/run` is about to be called. Dropping the returned future kills the
    /// instance wherever it is, including inside a WASI or IPC call.
    #[allow(clippy::too_many_arguments, reason = "one instance's every input, each distinct")]
    pub async fn run(
        &self,
        manifest: &Manifest,
        component: &Loaded,
        log: &Arc<AppLog>,
        memory: Arc<AtomicU64>,
        ipc: Endpoint,
        stop: StopRequest,
        display: Option<vyoma_display::Session>,
        pacer: &Arc<Pacer>,
        on_running: impl FnOnce(),
    ) -> ExitReason {
        // Past the machine's capacity a start is refused, never attempted.
        let _place = match self.instances.take() {
            Ok(p) => p,
            Err(why) => return ExitReason::Error(why),
        };
        let Kind::Command(pre) = &component.kind else {
            return ExitReason::Error(format!(
                "{} is an HTTP handler: it is served by the HTTP gateway, one instance per request",
                component.path.display()
            ));
        };
        let state = match sandbox::instance_state(
            manifest,
            log,
            sandbox::Publish::Alone(memory),
            ipc,
            stop,
            display,
            &self.protected,
            &self.budget,
            self.chain.get().cloned(),
        ) {
            Ok(s) => s,
            Err(e) => return ExitReason::Error(e),
        };
        let mut store = self.store(state, pacer.clone());
        let command = match pre.instantiate_async(&mut store).await {
            Ok(c) => c,
            Err(e) => return exit::classify(&e),
        };
        on_running();
        let reason = match command.wasi_cli_run().call_run(&mut store).await {
            Ok(Ok(())) => ExitReason::Code(0),
            Ok(Err(())) => ExitReason::Code(1),
            Err(e) => exit::classify(&e),
        };
        log.flush();
        reason
    }
}

/// How long each step of one component's load took, for its debug record.
struct LoadSteps {
    read: Duration,
    hash: Duration,
    code: Duration,
}

fn component_info(engine: &Engine, c: &Component) -> ComponentInfo {
    let ty = c.component_type();
    let mut imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let mut exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    imports.sort();
    exports.sort();
    ComponentInfo { imports, exports }
}

#[cfg(test)]
mod memory_images_tests {
    use super::MemoryImages;

    #[test]
    fn auto_chooses_images_for_a_large_component_only() {
        let small = [100 << 10, 2 << 20];
        assert_eq!(MemoryImages::Auto.for_components(small), MemoryImages::Copy);
        assert_eq!(MemoryImages::Auto.for_components([]), MemoryImages::Copy);
        let with_python = [100 << 10, 17 << 20];
        assert_eq!(MemoryImages::Auto.for_components(with_python), MemoryImages::Cow);
        // What the operator chose stands.
        assert_eq!(MemoryImages::Copy.for_components(with_python), MemoryImages::Copy);
        assert_eq!(MemoryImages::Cow.for_components(small), MemoryImages::Cow);
        assert_eq!("cow".parse(), Ok(MemoryImages::Cow));
        assert!(
            "sometimes"
                .parse::<MemoryImages>()
                .unwrap_err()
                .contains("auto, copy or cow")
        );
    }
}
