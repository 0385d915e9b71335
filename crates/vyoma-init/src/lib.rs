//! PID 1 of the VyomaOS image: what Linux expects of init, around the supervisor.
//!
//! What it is for: the early mounts (`/proc`, `/sys`, `/dev`, `/tmp`, `/run`), reaping every
//! child the kernel hands to init, turning SIGTERM, SIGINT (which Ctrl-Alt-Del becomes) and
//! SIGPWR into an orderly shutdown, reading `vyoma.` options from the kernel command line,
//! and ending every way the system can end (shutdown, signal, supervisor panic) in a sync
//! and a power-off or reboot, never a hang. Outside PID 1 (hosted mode, tests) the same
//! binary skips the mounts and the power-off, adopts orphans as a subreaper, and exits.
//!
//! With the supervisor, it also sets up the network over netlink ([`net`], [`dhcp`]) and
//! the display on the machine's screen or headless ([`screen`]).
//!
//! What it is not for: running apps (`vyoma-supervisor`) or building the image
//! (`vyoma-image`). The system calls are behind [`Sys`], so everything here is tested with a
//! fake; the real calls go through rustix, with no `unsafe`.

pub mod cmdline;
#[cfg(feature = "supervisor")]
pub mod dhcp;
#[cfg(feature = "supervisor")]
pub mod net;
#[cfg(feature = "supervisor")]
pub mod screen;
pub mod sys;

use std::fmt;

pub use sys::{LinuxSys, Mount, PowerAction, Sys};

/// Where the app store's disk is mounted in the image: the store in `store/`, the compile
/// cache of deployed components in `cache/`.
pub const STATE_DIR: &str = "/var/lib/vyoma";
/// The disk `vyoma.store=auto` uses when it is there: the first virtio disk.
pub const STORE_DEVICE: &str = "/dev/vda";

/// Mounts the disk the app store lives on, as `vyoma.store` says: `Ok(None)` without one
/// (off, or auto and no disk), or why the disk named cannot be used.
pub fn mount_store_disk(sys: &dyn Sys, choice: &cmdline::StoreDisk) -> Result<Option<std::path::PathBuf>, String> {
    let device = match choice {
        cmdline::StoreDisk::Off => return Ok(None),
        cmdline::StoreDisk::Auto if !sys.exists(STORE_DEVICE) => return Ok(None),
        cmdline::StoreDisk::Auto => STORE_DEVICE,
        cmdline::StoreDisk::Device(d) => d.as_str(),
    };
    let fail = |e: std::io::Error| {
        format!(
            "cannot mount the app store's disk {device} (ext4) on {STATE_DIR}: {e}; `vyoma boot` makes one (docs/image.md), or boot with vyoma.store=off to run without a store"
        )
    };
    sys.mkdir("/var").map_err(fail)?;
    sys.mkdir("/var/lib").map_err(fail)?;
    sys.mkdir(STATE_DIR).map_err(fail)?;
    sys.mount_disk(device, STATE_DIR).map_err(fail)?;
    Ok(Some(std::path::PathBuf::from(STATE_DIR)))
}

/// What PID 1 mounts before anything else, in order.
pub const MOUNTS: &[Mount] = &[
    Mount {
        source: "proc",
        target: "/proc",
        fstype: "proc",
        data: None,
    },
    Mount {
        source: "sysfs",
        target: "/sys",
        fstype: "sysfs",
        data: None,
    },
    Mount {
        source: "devtmpfs",
        target: "/dev",
        fstype: "devtmpfs",
        data: Some("mode=0755"),
    },
    Mount {
        source: "tmpfs",
        target: "/tmp",
        fstype: "tmpfs",
        data: Some("mode=1777"),
    },
    Mount {
        source: "tmpfs",
        target: "/run",
        fstype: "tmpfs",
        data: Some("mode=0755"),
    },
];

/// Mounts [`MOUNTS`], creating the mount points. A file system that is already mounted
/// (the kernel may mount devtmpfs itself) is fine. Returns one message per failure; the
/// boot goes on without that file system.
pub fn early_mounts(sys: &dyn Sys) -> Vec<String> {
    let mut problems = Vec::new();
    for m in MOUNTS {
        let r = sys.mkdir(m.target).and_then(|()| sys.mount(m));
        match r {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) => {}
            Err(e) => problems.push(format!("cannot mount {} on {}: {e}", m.fstype, m.target)),
        }
    }
    problems
}

/// The memory mappings PID 1 allows itself: enough that the instance count is bounded by
/// the address space and the memory budget, not by mappings (about 5 per instance; the
/// kernel's default of 65,530 stops at about 11,700 instances).
pub const MAX_MAP_COUNT: u64 = 1 << 20;

/// Raises the limits every app draws on, as only PID 1 may: the kernel's memory-mapping
/// limit to [`MAX_MAP_COUNT`], and the open-file limit to the most the kernel allows
/// (`fs.nr_open`). Returns one message per failure; the boot goes on with the old limit.
pub fn raise_limits(sys: &dyn Sys) -> Vec<String> {
    let mut problems = Vec::new();
    match sys.sysctl("vm.max_map_count") {
        Ok(n) if n >= MAX_MAP_COUNT => {}
        Ok(_) => {
            if let Err(e) = sys.set_sysctl("vm.max_map_count", MAX_MAP_COUNT) {
                problems.push(format!("cannot raise vm.max_map_count to {MAX_MAP_COUNT}: {e}"));
            }
        }
        Err(e) => problems.push(format!("cannot read vm.max_map_count: {e}")),
    }
    match sys.sysctl("fs.nr_open") {
        Ok(n) => {
            if let Err(e) = sys.set_open_files(n) {
                problems.push(format!("cannot raise the open-file limit to {n}: {e}"));
            }
        }
        Err(e) => problems.push(format!("cannot read fs.nr_open: {e}")),
    }
    problems
}

/// Collects every child that has exited; returns how many. Called on SIGCHLD: one signal
/// may stand for many exits, so it loops until none is left.
pub fn reap_all(sys: &dyn Sys) -> usize {
    let mut n = 0;
    while let Ok(Some(_)) = sys.reap_one() {
        n += 1;
    }
    n
}

/// A signal that asks for an orderly shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownSignal {
    /// SIGTERM.
    Term,
    /// SIGINT: Ctrl-Alt-Del on the machine (once [`Sys::ctrl_alt_del_to_sigint`]), or
    /// Ctrl-C in hosted mode.
    Int,
    /// SIGPWR: power failing (a UPS daemon, a hypervisor).
    Pwr,
}

/// Why the system is going down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// `shutdown` on the console.
    Console,
    /// The console's input ended.
    EndOfInput,
    /// A signal.
    Signal(ShutdownSignal),
    /// `POST /v1/shutdown` on the management API.
    Api,
}

impl fmt::Display for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Shutdown::Console => "shutdown requested on the console",
            Shutdown::EndOfInput => "console input ended",
            Shutdown::Signal(ShutdownSignal::Term) => "SIGTERM",
            Shutdown::Signal(ShutdownSignal::Int) => "SIGINT (Ctrl-Alt-Del)",
            Shutdown::Signal(ShutdownSignal::Pwr) => "SIGPWR (power failing)",
            Shutdown::Api => "shutdown requested through the management API",
        })
    }
}

/// The last step of PID 1: flush file systems, then power off or reboot. Returns only if
/// the kernel refused; the caller then aborts, and the kernel's `panic=` option reboots.
pub fn power_down(sys: &dyn Sys, how: PowerAction) -> std::io::Error {
    sys.sync();
    sys.power(how)
}

/// What a panic means for the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanicResponse {
    /// Inside an app instance: only that instance ends (the supervisor reports it as the
    /// app's exit reason); the system runs on.
    AppOnly,
    /// In the supervisor itself: log it, then end the machine this way.
    Fatal(PowerAction),
    /// In the supervisor, hosted: log it and exit the process.
    Exit,
}

/// Decides what a panic leads to.
pub fn panic_response(in_app_instance: bool, pid1: bool, on_panic: PowerAction) -> PanicResponse {
    match (in_app_instance, pid1) {
        (true, _) => PanicResponse::AppOnly,
        (false, true) => PanicResponse::Fatal(on_panic),
        (false, false) => PanicResponse::Exit,
    }
}

#[cfg(test)]
mod tests;
