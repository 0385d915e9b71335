//! One app instance's sandbox: the WASI context built only from its manifest grants, the
//! resource limiter that enforces its manifest limits, and the views each host interface
//! gets of it (WASI, IPC, lifecycle).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use vyoma_display::Session;
use vyoma_ipc::Endpoint;
use vyoma_lifecycle::Stream;
use vyoma_manifest::{Limits, Manifest, NetworkGrant};
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::AppLog;
use crate::budget::MemoryBudget;
use crate::display::DisplayView;
use crate::http::{HttpChain, Outbound};
use crate::ipc::IpcView;
use crate::lifecycle::{LifecycleView, StopRequest};
use crate::stdio::LogOutput;

/// Most bytes of a granted stdin file fed to an app.
pub const MAX_STDIN: u64 = 16 << 20;
/// Per-store data: what host functions see of one instance. Each host interface sees only
/// its own part, through its view.
pub struct InstanceState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    /// The app's outgoing HTTP, checked against its grants.
    outbound: Outbound,
    table: ResourceTable,
    pub(crate) limiter: Limiter,
    /// The app's connection to the IPC broker.
    ipc: Endpoint,
    /// The app's log, for the supervisor's notes about it (refused messages).
    log: Arc<AppLog>,
    /// Whether the supervisor asks this instance to end.
    stop: StopRequest,
    /// The instance's connection to the display, if its app may draw.
    display: Option<Session>,
    /// Bytes of surface pixels charged to its limits.
    surface_bytes: u64,
}

impl std::fmt::Debug for InstanceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceState")
            .field("limits", &self.limiter.limits)
            .finish_non_exhaustive()
    }
}

impl InstanceState {
    /// What `vyoma:app/ipc` sees.
    pub(crate) fn ipc_view(&mut self) -> IpcView<'_> {
        IpcView {
            endpoint: &mut self.ipc,
            log: &self.log,
            table: &mut self.table,
        }
    }

    /// What `vyoma:app/display` and `vyoma:app/input` see.
    pub(crate) fn display_view(&mut self) -> DisplayView<'_> {
        DisplayView {
            session: self.display.as_ref(),
            charged: &mut self.surface_bytes,
            limiter: &mut self.limiter,
            table: &mut self.table,
        }
    }

    /// What `vyoma:app/lifecycle` sees.
    pub(crate) fn lifecycle_view(&mut self) -> LifecycleView<'_> {
        LifecycleView {
            request: &self.stop,
            table: &mut self.table,
        }
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

/// How an instance's linear memory in use is published for `ps`.
#[derive(Debug, Clone)]
pub(crate) enum Publish {
    /// The app's one instance: the count is this instance's.
    Alone(Arc<AtomicU64>),
    /// One of many at once (an HTTP app's requests): each adds its growth and takes its
    /// total back when it ends.
    Shared(Arc<AtomicU64>),
}

/// The error that stops an app which tries to grow past its memory limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("memory limit exceeded: asked for {requested} bytes, limit is {limit} bytes")]
pub struct MemoryLimitExceeded {
    /// The manifest limit.
    pub limit: u64,
    /// Total linear memory the growth would have reached.
    pub requested: u64,
}

/// Enforces [`Limits`], charges linear memory to the budget all apps share, and reports
/// linear memory in use to the supervisor.
pub(crate) struct Limiter {
    limits: Limits,
    /// Bytes of linear memory across this instance's memories, published for `ps`.
    pub(crate) in_use: Publish,
    total: u64,
    budget: Arc<MemoryBudget>,
}

impl Limiter {
    /// Charges `bytes` the app holds outside its linear memory (a surface's pixels) to its
    /// memory limit and the budget all apps share, as a memory grow would be; a refusal
    /// fails the call that needed them, not the instance.
    pub(crate) fn charge_extra(&mut self, bytes: u64) -> Result<(), String> {
        let requested = self.total + bytes;
        if requested > self.limits.memory {
            return Err(MemoryLimitExceeded {
                limit: self.limits.memory,
                requested,
            }
            .to_string());
        }
        self.budget.try_charge(bytes).map_err(|e| e.to_string())?;
        self.add(bytes);
        Ok(())
    }

    /// Gives back `bytes` charged by [`Limiter::charge_extra`].
    pub(crate) fn release_extra(&mut self, bytes: u64) {
        let bytes = bytes.min(self.total);
        self.budget.release(bytes);
        self.total -= bytes;
        match &self.in_use {
            Publish::Alone(n) => n.store(self.total, Ordering::Relaxed),
            Publish::Shared(n) => {
                let _ = n.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(bytes)));
            }
        }
    }

    /// Counts `grow` more bytes in use and publishes it.
    fn add(&mut self, grow: u64) {
        self.total += grow;
        match &self.in_use {
            Publish::Alone(n) => n.store(self.total, Ordering::Relaxed),
            Publish::Shared(n) => {
                n.fetch_add(grow, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn new(limits: Limits, in_use: Publish, budget: Arc<MemoryBudget>) -> Self {
        if let Publish::Alone(n) = &in_use {
            n.store(0, Ordering::Relaxed);
        }
        Limiter {
            limits,
            in_use,
            total: 0,
            budget,
        }
    }
}

impl Drop for Limiter {
    /// The instance's memories are freed with its store, which owns this.
    fn drop(&mut self) {
        self.budget.release(self.total);
        if let Publish::Shared(n) = &self.in_use {
            let total = self.total;
            let _ = n.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(total)));
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        let grow = (desired - current) as u64;
        let requested = self.total + grow;
        if requested > self.limits.memory {
            // An error (not `Ok(false)`) ends the instance at once with a precise reason,
            // instead of letting the guest see a failed `memory.grow` and abort vaguely.
            return Err(MemoryLimitExceeded {
                limit: self.limits.memory,
                requested,
            }
            .into());
        }
        // Then the budget all apps share: the same precise end if it cannot cover this.
        self.budget.try_charge(grow)?;
        self.add(grow);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= self.limits.table_elements)
    }

    fn instances(&self) -> usize {
        self.limits.instances
    }

    fn tables(&self) -> usize {
        self.limits.instances.saturating_mul(4)
    }

    fn memories(&self) -> usize {
        self.limits.instances
    }
}

/// Builds the store data for one instance of `m`. Grants that cannot be honoured (a missing
/// directory, an unreadable stdin file) are errors, never silently dropped.
#[allow(clippy::too_many_arguments, reason = "one instance's every input, each distinct")]
pub(crate) fn instance_state(
    m: &Manifest,
    log: &Arc<AppLog>,
    memory: Publish,
    ipc: Endpoint,
    stop: StopRequest,
    display: Option<Session>,
    protected: &[PathBuf],
    budget: &Arc<MemoryBudget>,
    chain: Option<Arc<dyn HttpChain>>,
) -> Result<InstanceState, String> {
    let mut b = WasiCtxBuilder::new();
    let mut argv = Vec::with_capacity(m.args.len() + 1);
    argv.push(m.name.as_str());
    argv.extend(m.args.iter().map(String::as_str));
    b.args(&argv);
    for (k, v) in &m.env {
        b.env(k, v);
    }
    for k in &m.capabilities.inherit_env {
        if let Ok(v) = std::env::var(k) {
            b.env(k, v);
        }
    }
    b.stdout(LogOutput {
        log: log.clone(),
        stream: Stream::Stdout,
    });
    b.stderr(LogOutput {
        log: log.clone(),
        stream: Stream::Stderr,
    });
    if let Some(s) = &m.capabilities.stdin {
        let data = read_capped(&s.value).map_err(|e| format!("cannot read stdin file {}: {e}", s.value.display()))?;
        b.stdin(wasmtime_wasi::p2::pipe::MemoryInputPipe::new(data));
    }
    if m.capabilities.data.is_some() && m.capabilities.data_dir().is_none() {
        return Err(
            "it asks for its own data folder (`[capabilities] data`), and this instance keeps no app store to keep it in (`vyoma run` keeps one unless started with `--no-store`)"
                .to_string(),
        );
    }
    for d in &m.capabilities.dirs {
        // Checked again at every start: the folder (or a link in its path) may have
        // changed since boot.
        if let Some(p) = protected_overlap(&d.host.value, protected) {
            return Err(format!(
                "granted directory {} overlaps {}, which holds machine code VyomaOS runs: refused",
                d.host.value.display(),
                p.display()
            ));
        }
        let perms = if d.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        b.preopened_dir(&d.host.value, &d.guest, perms)
            .map_err(|e| format!("cannot open granted directory {}: {e:#}", d.host.value.display()))?;
    }
    network(&mut b, m.capabilities.network.as_ref());
    let mut table = ResourceTable::new();
    // Every open file or socket is one of the supervisor's file descriptors: the app's
    // handle budget keeps one app from using up the ones every app shares.
    table.set_max_capacity(m.limits.handles);
    Ok(InstanceState {
        wasi: b.build(),
        http: WasiHttpCtx::new(),
        outbound: Outbound::new(m, log, chain),
        table,
        limiter: Limiter::new(m.limits, memory, budget.clone()),
        ipc,
        log: log.clone(),
        stop,
        display,
        surface_bytes: 0,
    })
}

/// The protected folder that `grant` contains or lies inside, if any (both resolved, so
/// `..` and symbolic links cannot hide an overlap). A grant that does not exist overlaps
/// nothing (it fails on its own when opened).
pub(crate) fn protected_overlap<'a>(grant: &Path, protected: &'a [PathBuf]) -> Option<&'a Path> {
    let g = grant.canonicalize().ok()?;
    protected
        .iter()
        .find(|p| g.starts_with(p) || p.starts_with(&g))
        .map(PathBuf::as_path)
}

fn read_capped(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut data = Vec::new();
    std::fs::File::open(path)?.take(MAX_STDIN).read_to_end(&mut data)?;
    Ok(data)
}

/// Deny by default: without a grant, no TCP, no UDP, no name lookup, and every address
/// refused. With one, only the listed address patterns.
fn network(b: &mut WasiCtxBuilder, grant: Option<&NetworkGrant>) {
    let Some(g) = grant.cloned() else {
        b.allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
        b.socket_addr_check(|_, _| Box::pin(async { false }));
        return;
    };
    let g = Arc::new(g);
    b.allow_tcp(true).allow_udp(true).allow_ip_name_lookup(g.dns);
    b.socket_addr_check(move |addr, usage| {
        // A connect (or a UDP send) first binds to an ephemeral port of the unspecified
        // address, and Wasmtime asks about that bind: allowed to an app that may connect
        // somewhere. Listening on it still needs a `bind` grant.
        let ephemeral = addr.ip().is_unspecified() && addr.port() == 0;
        let ok = match usage {
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind if ephemeral && !g.connect.is_empty() => true,
            SocketAddrUse::TcpBind | SocketAddrUse::TcpListen | SocketAddrUse::UdpBind => {
                g.bind.iter().any(|p| p.matches(&addr))
            }
            SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend => g.connect.iter().any(|p| p.matches(&addr)),
            // Peers reaching a socket the app was allowed to bind.
            SocketAddrUse::TcpAccept | SocketAddrUse::UdpReceive => true,
        };
        Box::pin(async move { ok })
    });
}
