//! The system calls PID 1 makes, behind a trait so the logic around them (what to mount,
//! what to do on shutdown or panic, reaping) is testable without root or a VM.

use std::io;

/// A file system to mount early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mount {
    /// The source (`proc`, `sysfs`, ...).
    pub source: &'static str,
    /// Where.
    pub target: &'static str,
    /// The file system type.
    pub fstype: &'static str,
    /// Mount options, if any.
    pub data: Option<&'static str>,
}

/// How the machine ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    /// Power off (QEMU exits 0).
    PowerOff,
    /// Reboot (with QEMU `-no-reboot`, QEMU exits too).
    Reboot,
}

/// The system calls of PID 1.
pub trait Sys: Send + Sync {
    /// Whether this process is PID 1.
    fn is_pid1(&self) -> bool;
    /// Creates a directory (succeeds if it exists).
    fn mkdir(&self, path: &str) -> io::Result<()>;
    /// Mounts `m`.
    fn mount(&self, m: &Mount) -> io::Result<()>;
    /// Whether `path` exists (a device node).
    fn exists(&self, path: &str) -> bool;
    /// Mounts the ext4 file system on `device` at `target` (no set-uid, no device files).
    fn mount_disk(&self, device: &str, target: &str) -> io::Result<()>;
    /// Flushes file system buffers.
    fn sync(&self);
    /// Powers off or reboots; returns only if that failed.
    fn power(&self, how: PowerAction) -> io::Error;
    /// Makes Ctrl-Alt-Del send SIGINT to PID 1 instead of rebooting at once.
    fn ctrl_alt_del_to_sigint(&self) -> io::Result<()>;
    /// Adopts orphans when not PID 1 (hosted mode).
    fn become_subreaper(&self) -> io::Result<()>;
    /// Collects one exited child without waiting: its pid, or `None` if no child has
    /// exited (or there are no children).
    fn reap_one(&self) -> io::Result<Option<u32>>;
    /// Reads a kernel setting, `name` as sysctl writes it (`vm.max_map_count`).
    fn sysctl(&self, name: &str) -> io::Result<u64>;
    /// Sets a kernel setting.
    fn set_sysctl(&self, name: &str, value: u64) -> io::Result<()>;
    /// Sets both the soft and hard limit on open files.
    fn set_open_files(&self, limit: u64) -> io::Result<()>;
}

/// The file under /proc/sys of a sysctl name.
fn sysctl_path(name: &str) -> String {
    format!("/proc/sys/{}", name.replace('.', "/"))
}

/// The real system.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxSys;

impl Sys for LinuxSys {
    fn is_pid1(&self) -> bool {
        rustix::process::getpid().is_init()
    }

    fn mkdir(&self, path: &str) -> io::Result<()> {
        match rustix::fs::mkdir(path, rustix::fs::Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn mount(&self, m: &Mount) -> io::Result<()> {
        let data = m
            .data
            .map(|d| std::ffi::CString::new(d).expect("mount options have no NUL"));
        rustix::mount::mount(
            m.source,
            m.target,
            m.fstype,
            rustix::mount::MountFlags::NOSUID,
            data.as_deref(),
        )
        .map_err(Into::into)
    }

    fn exists(&self, path: &str) -> bool {
        std::path::Path::new(path).exists()
    }

    fn mount_disk(&self, device: &str, target: &str) -> io::Result<()> {
        use rustix::mount::MountFlags;
        rustix::mount::mount(device, target, "ext4", MountFlags::NOSUID | MountFlags::NODEV, None).map_err(Into::into)
    }

    fn sync(&self) {
        rustix::fs::sync();
    }

    fn power(&self, how: PowerAction) -> io::Error {
        let cmd = match how {
            PowerAction::PowerOff => rustix::system::RebootCommand::PowerOff,
            PowerAction::Reboot => rustix::system::RebootCommand::Restart,
        };
        match rustix::system::reboot(cmd) {
            Ok(()) => io::Error::other("reboot(2) returned"),
            Err(e) => e.into(),
        }
    }

    fn ctrl_alt_del_to_sigint(&self) -> io::Result<()> {
        rustix::system::reboot(rustix::system::RebootCommand::CadOff).map_err(Into::into)
    }

    fn become_subreaper(&self) -> io::Result<()> {
        rustix::process::set_child_subreaper(Some(rustix::process::getpid())).map_err(Into::into)
    }

    fn sysctl(&self, name: &str) -> io::Result<u64> {
        let text = std::fs::read_to_string(sysctl_path(name))?;
        text.trim()
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{name} = {text:?}: {e}")))
    }

    fn set_sysctl(&self, name: &str, value: u64) -> io::Result<()> {
        std::fs::write(sysctl_path(name), value.to_string())
    }

    fn set_open_files(&self, limit: u64) -> io::Result<()> {
        use rustix::process::{Resource, Rlimit, setrlimit};
        let l = Some(limit);
        setrlimit(Resource::Nofile, Rlimit { current: l, maximum: l }).map_err(Into::into)
    }

    fn reap_one(&self) -> io::Result<Option<u32>> {
        match rustix::process::wait(rustix::process::WaitOptions::NOHANG) {
            Ok(Some((pid, _))) => Ok(Some(pid.as_raw_nonzero().get() as u32)),
            Ok(None) | Err(rustix::io::Errno::CHILD) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
