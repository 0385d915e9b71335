//! The one shared Wasmtime engine: its configuration, the pooling-allocator probe with a
//! clean fallback, and the epoch ticker thread that drives preemption.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::RuntimeError;

/// Largest linear memory any app may have: all of wasm32's 4 GiB. Each pooled memory slot
/// reserves this much address space (not RAM) so bounds checks can be elided.
pub const MAX_APP_MEMORY: u64 = 4 << 30;
/// Largest table any app may have, in elements.
pub const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Which instance allocator the engine ended up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocator {
    /// Pre-reserved pool of this many component instances.
    Pooling {
        /// Slots in the pool.
        capacity: u32,
    },
    /// Memory mapped per instance on demand.
    OnDemand,
}

impl std::fmt::Display for Allocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Allocator::Pooling { capacity } => write!(f, "pooling ({capacity} instance slots)"),
            Allocator::OnDemand => f.write_str("on-demand"),
        }
    }
}

/// Whether to use the pooling allocator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PoolingChoice {
    /// Use it if the address space allows, else fall back to on-demand.
    #[default]
    Auto,
    /// Never use it.
    Off,
}

/// The settings every engine shares, pooled or not. The image builder must use exactly
/// these so precompiled artifacts match (`Engine::precompile_compatibility_hash`).
fn base_config(memory_init_cow: bool) -> Config {
    let mut c = Config::new();
    c.memory_init_cow(memory_init_cow);
    c.epoch_interruption(true);
    // Tables are filled when an instance is made, not entry by entry on first use: the
    // lazy path reads a fresh table page (mapping the zero page) and then writes it, and
    // that copy-on-write fault flushes the other CPUs' TLBs. Measured: 200 apps start in
    // 16-18 ms instead of 20-21 ms (docs/PERFORMANCE.md, "Start-up in hosted mode").
    // Part of the compiled code, so the image's artifacts follow it.
    c.table_lazy_init(false);
    // Set here, not only for the pool, so pooled and on-demand engines compile the same
    // code and share artifacts.
    c.memory_reservation(MAX_APP_MEMORY);
    // The wasm stack must stay well below the fiber stack that also hosts WASI calls.
    c.max_wasm_stack(512 << 10);
    c.async_stack_size(2 << 20);
    c
}

fn pooling_config(capacity: u32, memory_init_cow: bool) -> Config {
    let mut pool = PoolingAllocationConfig::new();
    // A Rust wasip2 command has a handful of core instances (program, shims, fixups) and
    // one memory; leave room for richer components.
    pool.total_component_instances(capacity)
        .total_core_instances(capacity.saturating_mul(8))
        .total_memories(capacity.saturating_mul(2))
        .total_tables(capacity.saturating_mul(4))
        .total_stacks(capacity)
        .max_memories_per_component(2)
        .max_tables_per_component(4)
        .max_core_instances_per_component(16)
        .max_memory_size(MAX_APP_MEMORY as usize)
        .table_elements(MAX_TABLE_ELEMENTS);
    // No `*_keep_resident`: keeping part of a freed slot resident means zeroing it with
    // memset, which faults in pages the app never touched (measured: ~22 extra faults per
    // app), so a stopped app would hold more memory than a running one.
    let mut c = base_config(memory_init_cow);
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    c
}

/// An engine that compiles for the image's supervisor ([`crate::IMAGE_TARGET`]) with the
/// same settings [`build`] gives the supervisor's own engine. It only precompiles.
#[cfg(feature = "compiler")]
pub(crate) fn image_engine() -> Result<Engine, RuntimeError> {
    let mut c = base_config(false);
    c.target(crate::IMAGE_TARGET)
        .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
    Engine::new(&c).map_err(|e| RuntimeError::Engine(format!("{e:#}")))
}

/// An engine that compiles for a supervisor on this machine with the settings [`build`]
/// gives it (copy-on-write memory images if `cow`): what the compiler helper uses, in the
/// image, next to the supervisor that loads what it makes. It only precompiles.
#[cfg(feature = "compiler")]
pub(crate) fn native_engine(cow: bool) -> Result<Engine, RuntimeError> {
    Engine::new(&base_config(cow)).map_err(|e| RuntimeError::Engine(format!("{e:#}")))
}

/// Builds the engine. With [`PoolingChoice::Auto`] a pool of `capacity` slots is tried
/// first; if the address space cannot hold it, an on-demand engine is used instead.
pub(crate) fn build(
    choice: PoolingChoice,
    capacity: u32,
    memory_init_cow: bool,
) -> Result<(Engine, Allocator), RuntimeError> {
    if choice == PoolingChoice::Auto {
        match Engine::new(&pooling_config(capacity, memory_init_cow)) {
            Ok(e) => return Ok((e, Allocator::Pooling { capacity })),
            Err(e) => tracing::warn!(
                capacity,
                error = %format!("{e:#}"),
                "pooling allocator unavailable, falling back to on-demand allocation"
            ),
        }
    }
    let e = Engine::new(&base_config(memory_init_cow)).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
    Ok((e, Allocator::OnDemand))
}

/// Increments the engine's epoch every `tick` on its own OS thread, so a guest that never
/// yields is still interrupted even if every async worker is busy. Stops when dropped.
#[derive(Debug)]
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(engine: Engine, tick: Duration) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("vyoma-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        EpochTicker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
