use std::io;
use std::sync::Mutex;

use super::*;

/// Records every call; fails the mounts it is told to.
#[derive(Default)]
struct FakeSys {
    calls: Mutex<Vec<String>>,
    /// Kernel settings it reports; a missing one cannot be read.
    sysctls: Vec<(&'static str, u64)>,
    /// Whether setting limits fails (not root).
    refuse_limits: bool,
    busy: Vec<&'static str>,
    broken: Vec<&'static str>,
    /// Device nodes that exist.
    devices: Vec<&'static str>,
    exited_children: Mutex<u32>,
}

impl FakeSys {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    fn record(&self, s: String) {
        self.calls.lock().unwrap().push(s);
    }
}

impl Sys for FakeSys {
    fn is_pid1(&self) -> bool {
        true
    }
    fn mkdir(&self, path: &str) -> io::Result<()> {
        self.record(format!("mkdir {path}"));
        Ok(())
    }
    fn mount(&self, m: &Mount) -> io::Result<()> {
        self.record(format!("mount {} {}", m.fstype, m.target));
        if self.busy.contains(&m.target) {
            return Err(io::Error::from_raw_os_error(rustix::io::Errno::BUSY.raw_os_error()));
        }
        if self.broken.contains(&m.target) {
            return Err(io::Error::from_raw_os_error(rustix::io::Errno::NODEV.raw_os_error()));
        }
        Ok(())
    }
    fn exists(&self, path: &str) -> bool {
        self.devices.contains(&path)
    }
    fn mount_disk(&self, device: &str, target: &str) -> io::Result<()> {
        self.record(format!("mount ext4 {device} {target}"));
        if self.broken.contains(&device) {
            return Err(io::Error::from_raw_os_error(rustix::io::Errno::INVAL.raw_os_error()));
        }
        Ok(())
    }
    fn sync(&self) {
        self.record("sync".into());
    }
    fn power(&self, how: PowerAction) -> io::Error {
        self.record(format!("power {how:?}"));
        io::Error::other("fake")
    }
    fn ctrl_alt_del_to_sigint(&self) -> io::Result<()> {
        self.record("cad off".into());
        Ok(())
    }
    fn become_subreaper(&self) -> io::Result<()> {
        self.record("subreaper".into());
        Ok(())
    }
    fn sysctl(&self, name: &str) -> io::Result<u64> {
        self.sysctls
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
    fn set_sysctl(&self, name: &str, value: u64) -> io::Result<()> {
        self.record(format!("sysctl {name}={value}"));
        if self.refuse_limits {
            return Err(io::Error::from(io::ErrorKind::PermissionDenied));
        }
        Ok(())
    }
    fn set_open_files(&self, limit: u64) -> io::Result<()> {
        self.record(format!("nofile {limit}"));
        if self.refuse_limits {
            return Err(io::Error::from(io::ErrorKind::PermissionDenied));
        }
        Ok(())
    }
    fn reap_one(&self) -> io::Result<Option<u32>> {
        let mut n = self.exited_children.lock().unwrap();
        if *n == 0 {
            return Ok(None);
        }
        *n -= 1;
        Ok(Some(100 + *n))
    }
}

#[test]
fn mounts_in_order_and_tolerates_what_is_already_mounted() {
    let sys = FakeSys {
        busy: vec!["/dev"],
        broken: vec!["/run"],
        ..FakeSys::default()
    };
    let problems = early_mounts(&sys);
    let mounts: Vec<String> = sys.calls().into_iter().filter(|c| c.starts_with("mount")).collect();
    assert_eq!(
        mounts,
        [
            "mount proc /proc",
            "mount sysfs /sys",
            "mount devtmpfs /dev",
            "mount tmpfs /tmp",
            "mount tmpfs /run"
        ]
    );
    assert!(sys.calls().contains(&"mkdir /tmp".to_string()));
    // /dev was already mounted (fine); /run failed and is reported, the rest went on.
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("cannot mount tmpfs on /run:"),
        "{}",
        problems[0]
    );
}

#[test]
fn reaping_collects_every_exited_child() {
    let sys = FakeSys {
        exited_children: Mutex::new(5),
        ..FakeSys::default()
    };
    assert_eq!(reap_all(&sys), 5);
    assert_eq!(reap_all(&sys), 0);
}

#[test]
fn reaping_real_zombies() {
    // Children that exited and were never waited for are zombies until reaped.
    let mut pids = Vec::new();
    for _ in 0..4 {
        let child = std::process::Command::new("true").spawn().unwrap();
        pids.push(child.id());
        std::mem::forget(child);
    }
    let zombie = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
            .unwrap_or(false)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !pids.iter().all(|p| zombie(*p)) {
        assert!(std::time::Instant::now() < deadline, "children never exited");
        std::thread::yield_now();
    }
    assert_eq!(reap_all(&LinuxSys), 4);
    assert!(
        pids.iter()
            .all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
    );
}

#[test]
fn power_down_syncs_first() {
    let sys = FakeSys::default();
    let _ = power_down(&sys, PowerAction::PowerOff);
    assert_eq!(sys.calls(), ["sync", "power PowerOff"]);
}

#[test]
fn panics_end_the_machine_only_outside_apps() {
    use PanicResponse::*;
    assert_eq!(panic_response(true, true, PowerAction::Reboot), AppOnly);
    assert_eq!(panic_response(true, false, PowerAction::Reboot), AppOnly);
    assert_eq!(
        panic_response(false, true, PowerAction::Reboot),
        Fatal(PowerAction::Reboot)
    );
    assert_eq!(
        panic_response(false, true, PowerAction::PowerOff),
        Fatal(PowerAction::PowerOff)
    );
    assert_eq!(panic_response(false, false, PowerAction::Reboot), Exit);
}

#[test]
fn shutdown_causes_read_well() {
    assert_eq!(
        Shutdown::Signal(ShutdownSignal::Int).to_string(),
        "SIGINT (Ctrl-Alt-Del)"
    );
    assert_eq!(Shutdown::Console.to_string(), "shutdown requested on the console");
}

#[test]
fn pid1_raises_the_mapping_and_open_file_limits_apps_draw_on() {
    let sys = FakeSys {
        sysctls: vec![("vm.max_map_count", 65_530), ("fs.nr_open", 1_048_576)],
        ..FakeSys::default()
    };
    assert!(raise_limits(&sys).is_empty());
    assert_eq!(sys.calls(), ["sysctl vm.max_map_count=1048576", "nofile 1048576"]);
    // Already high enough: left alone.
    let sys = FakeSys {
        sysctls: vec![("vm.max_map_count", 4_000_000), ("fs.nr_open", 50_000)],
        ..FakeSys::default()
    };
    assert!(raise_limits(&sys).is_empty());
    assert_eq!(sys.calls(), ["nofile 50000"]);
}

#[test]
fn limits_that_cannot_be_raised_are_reported_and_the_boot_goes_on() {
    let sys = FakeSys {
        sysctls: vec![("vm.max_map_count", 65_530)],
        refuse_limits: true,
        ..FakeSys::default()
    };
    let problems = raise_limits(&sys);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].starts_with("cannot raise vm.max_map_count to 1048576: "),
        "{problems:?}"
    );
    assert!(problems[1].starts_with("cannot read fs.nr_open: "), "{problems:?}");
}

#[test]
fn the_store_disk_is_mounted_when_there_is_one_and_named_when_it_cannot_be() {
    use crate::cmdline::StoreDisk;
    // No disk: no store, nothing mounted.
    let sys = FakeSys::default();
    assert_eq!(mount_store_disk(&sys, &StoreDisk::Auto), Ok(None));
    assert!(sys.calls().is_empty());
    // The first virtio disk.
    let sys = FakeSys {
        devices: vec![STORE_DEVICE],
        ..FakeSys::default()
    };
    assert_eq!(
        mount_store_disk(&sys, &StoreDisk::Auto),
        Ok(Some(std::path::PathBuf::from(STATE_DIR)))
    );
    assert_eq!(sys.calls().last().unwrap(), "mount ext4 /dev/vda /var/lib/vyoma");
    // Off: left alone even when there.
    assert_eq!(mount_store_disk(&sys, &StoreDisk::Off), Ok(None));
    // A disk that is not ext4 (or not there): why, and the way out.
    let sys = FakeSys {
        broken: vec!["/dev/vdb"],
        ..FakeSys::default()
    };
    let e = mount_store_disk(&sys, &StoreDisk::Device("/dev/vdb".into())).unwrap_err();
    assert!(
        e.starts_with("cannot mount the app store's disk /dev/vdb (ext4) on /var/lib/vyoma: "),
        "{e}"
    );
    assert!(e.contains("vyoma.store=off"), "{e}");
}
