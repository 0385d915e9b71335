//! Choosing how QEMU runs the guest: KVM when it really works on this host, software
//! emulation (TCG) otherwise, or what the user forces (`--accel`, `VYOMA_ACCEL`).
//!
//! `/dev/kvm` opening is not enough, and neither is QEMU starting a paused vCPU: on some
//! hosts (nested virtualisation) the guest then dies at its first real instruction with
//! "KVM internal error" while QEMU sits there. So the decision is a real, short boot of the
//! image's own kernel under KVM, with a deadline: the kernel, given no initramfs and no
//! init, prints on the serial console and panics, and with `panic=-1 -no-reboot` QEMU exits.
//! A boot that prints and exits in time means KVM works. The verdict is cached per host
//! kernel, CPU and QEMU version, so the probe runs once per host.
//!
//! The judging of a probe's outcome ([`judge_probe`]) is pure and unit-tested; running
//! QEMU is the thin part around it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::qemu::QEMU;

/// How QEMU runs the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation.
    Kvm,
    /// Software emulation, with the reason KVM was not used.
    Tcg(String),
}

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccelChoice {
    /// KVM if a probe boot works here (cached), else TCG.
    #[default]
    Auto,
    /// KVM, without probing (fails if it does not work).
    Kvm,
    /// Software emulation.
    Tcg,
}

/// The environment variable that forces a choice: `kvm`, `tcg` or `auto`.
pub const ACCEL_ENV: &str = "VYOMA_ACCEL";

impl std::str::FromStr for AccelChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(AccelChoice::Auto),
            "kvm" => Ok(AccelChoice::Kvm),
            "tcg" => Ok(AccelChoice::Tcg),
            other => Err(format!("unknown accelerator `{other}`: use auto, kvm or tcg")),
        }
    }
}

impl AccelChoice {
    /// `$VYOMA_ACCEL`, or `auto` when unset. An invalid value is an error naming it.
    pub fn from_env() -> Result<AccelChoice, String> {
        match std::env::var(ACCEL_ENV) {
            Ok(v) => v.parse().map_err(|e| format!("{ACCEL_ENV}={v}: {e}")),
            Err(_) => Ok(AccelChoice::Auto),
        }
    }
}

/// How long a probe boot may take under KVM. A working KVM boots this kernel to its panic
/// in well under a second; TCG would take several.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(10);

/// What a probe boot did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    /// QEMU exited by itself before the deadline (with its status success).
    pub exited: Option<bool>,
    /// What the guest printed on its serial console.
    pub console: String,
    /// What QEMU printed on its standard error.
    pub stderr: String,
}

/// The verdict on a probe boot: KVM works only if the guest printed on its console and
/// QEMU ended by itself in time without a KVM error.
pub fn judge_probe(o: &ProbeOutcome) -> Accel {
    if let Some(line) = o.stderr.lines().find(|l| l.contains("KVM internal error")) {
        return Accel::Tcg(format!("a test boot under KVM failed: {}", line.trim()));
    }
    if o.console.trim().is_empty() {
        return Accel::Tcg(match o.exited {
            None => format!(
                "a test boot under KVM printed nothing within {}s",
                PROBE_DEADLINE.as_secs()
            ),
            Some(_) => format!(
                "a test boot under KVM ended without any console output{}",
                first_line(&o.stderr).map(|l| format!(" ({l})")).unwrap_or_default()
            ),
        });
    }
    if o.exited.is_none() {
        return Accel::Tcg(format!(
            "a test boot under KVM did not finish within {}s",
            PROBE_DEADLINE.as_secs()
        ));
    }
    Accel::Kvm
}

fn first_line(s: &str) -> Option<&str> {
    s.lines().map(str::trim).find(|l| !l.is_empty())
}

/// Decides the accelerator for booting `kernel`, as `choice` asks. `cache` is where the
/// verdict of a probe is kept (per host; `None`: probe every time).
pub fn choose(choice: AccelChoice, kernel: &Path, cache: Option<&Path>) -> Accel {
    match choice {
        AccelChoice::Kvm => Accel::Kvm,
        AccelChoice::Tcg => Accel::Tcg(format!("software emulation was asked for ({ACCEL_ENV} or --accel)")),
        AccelChoice::Auto => {
            if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
                return Accel::Tcg(format!("/dev/kvm is not usable: {e}"));
            }
            let file = cache.and_then(|c| host_key().map(|k| c.join(format!("accel-{k}"))));
            if let Some(a) = file.as_deref().and_then(read_verdict) {
                return a;
            }
            let verdict = match probe(kernel) {
                Ok(o) => judge_probe(&o),
                Err(e) => Accel::Tcg(e),
            };
            if let Some(f) = &file {
                record(f, &verdict);
            }
            verdict
        }
    }
}

/// Records that KVM failed on this host after all (a boot under KVM died), so the next
/// boot goes straight to TCG.
pub fn record_failure(cache: Option<&Path>, why: &str) {
    if let Some(f) = cache.and_then(|c| host_key().map(|k| c.join(format!("accel-{k}")))) {
        record(&f, &Accel::Tcg(why.to_string()));
    }
}

fn read_verdict(file: &Path) -> Option<Accel> {
    let text = std::fs::read_to_string(file).ok()?;
    let text = text.trim();
    if text == "kvm" {
        Some(Accel::Kvm)
    } else {
        text.strip_prefix("tcg ")
            .map(|why| Accel::Tcg(format!("{why} (cached verdict in {})", file.display())))
    }
}

fn record(file: &Path, a: &Accel) {
    let text = match a {
        Accel::Kvm => "kvm\n".to_string(),
        Accel::Tcg(why) => format!("tcg {}\n", why.replace('\n', " ")),
    };
    let written = file
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(file, text));
    if let Err(e) = written {
        tracing::debug!(file = %file.display(), error = %e, "cannot cache the accelerator verdict");
    }
}

/// What makes a verdict valid: the host kernel, the CPU model and QEMU's version. Worked
/// out once per process (it runs `qemu --version`), since none of them changes under it.
fn host_key() -> Option<String> {
    static KEY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    KEY.get_or_init(read_host_key).clone()
}

fn read_host_key() -> Option<String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .unwrap_or_default()
        .to_string();
    let qemu = Command::new(QEMU).arg("--version").output().ok()?;
    let qemu = String::from_utf8_lossy(&qemu.stdout);
    Some(vyoma_runtime::sha256_hex(format!("{release}\n{cpu}\n{qemu}").as_bytes())[..16].to_string())
}

/// Boots `kernel` under KVM with no initramfs and no init, so it prints and panics, and
/// QEMU exits. Returns what happened, or why QEMU could not be run at all.
fn probe(kernel: &Path) -> Result<ProbeOutcome, String> {
    let mut child = Command::new(QEMU)
        .args(["-accel", "kvm", "-cpu", "host", "-M", "q35", "-m", "128", "-smp", "1"])
        .arg("-kernel")
        .arg(kernel)
        .args([
            "-append",
            "console=ttyS0 panic=-1 rdinit=/vyoma-accel-probe init=/vyoma-accel-probe",
        ])
        .args([
            "-display",
            "none",
            "-no-reboot",
            "-nodefaults",
            "-serial",
            "stdio",
            "-monitor",
            "none",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {QEMU}: {e}"))?;
    let out = child.stdout.take().map(drain);
    let err = child.stderr.take().map(drain);
    let deadline = Instant::now() + PROBE_DEADLINE;
    let exited = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status.success()),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let join = |h: Option<std::thread::JoinHandle<String>>| h.and_then(|h| h.join().ok()).unwrap_or_default();
    Ok(ProbeOutcome {
        exited,
        console: join(out),
        stderr: join(err),
    })
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        // Bounded: a probe prints a few KiB.
        let _ = r.by_ref().take(1 << 20).read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Where verdicts are cached: `accel/` under VyomaOS's cache folder.
pub fn default_cache() -> Option<PathBuf> {
    vyoma_runtime::default_cache_dir().map(|d| d.join("accel"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(exited: Option<bool>, console: &str, stderr: &str) -> ProbeOutcome {
        ProbeOutcome {
            exited,
            console: console.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn a_boot_that_prints_and_exits_means_kvm() {
        let o = outcome(Some(true), "Linux version 6.1\nKernel panic - not syncing", "");
        assert_eq!(judge_probe(&o), Accel::Kvm);
    }

    #[test]
    fn a_kvm_internal_error_means_tcg_even_with_output() {
        // What the fresh machine showed: QEMU starts, the guest dies at once.
        let o = outcome(
            None,
            "",
            "KVM internal error. Suberror: 1\nextra data[0]: 0x0000000000000000\nemulation failure\n",
        );
        match judge_probe(&o) {
            Accel::Tcg(why) => assert!(why.contains("KVM internal error"), "{why}"),
            a => panic!("{a:?}"),
        }
        let o = outcome(Some(false), "Linux version", "KVM internal error. Suberror: 1");
        assert!(matches!(judge_probe(&o), Accel::Tcg(_)));
    }

    #[test]
    fn silence_or_a_hang_means_tcg() {
        match judge_probe(&outcome(None, "", "")) {
            Accel::Tcg(why) => assert!(why.contains("printed nothing"), "{why}"),
            a => panic!("{a:?}"),
        }
        match judge_probe(&outcome(
            Some(false),
            "",
            "qemu-system-x86_64: failed to initialize kvm: No such file",
        )) {
            Accel::Tcg(why) => assert!(why.contains("failed to initialize kvm"), "{why}"),
            a => panic!("{a:?}"),
        }
        match judge_probe(&outcome(None, "Linux version 6.1", "")) {
            Accel::Tcg(why) => assert!(why.contains("did not finish"), "{why}"),
            a => panic!("{a:?}"),
        }
    }

    #[test]
    fn choices_parse_and_forced_ones_skip_the_probe() {
        assert_eq!("KVM".parse::<AccelChoice>(), Ok(AccelChoice::Kvm));
        assert_eq!("tcg".parse::<AccelChoice>(), Ok(AccelChoice::Tcg));
        assert_eq!("auto".parse::<AccelChoice>(), Ok(AccelChoice::Auto));
        assert!("hvf".parse::<AccelChoice>().unwrap_err().contains("auto, kvm or tcg"));
        let nowhere = Path::new("/nonexistent/bzImage");
        assert_eq!(choose(AccelChoice::Kvm, nowhere, None), Accel::Kvm);
        assert!(matches!(choose(AccelChoice::Tcg, nowhere, None), Accel::Tcg(_)));
    }

    #[test]
    fn verdicts_round_trip_through_the_cache() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("accel-x");
        record(&f, &Accel::Kvm);
        assert_eq!(read_verdict(&f), Some(Accel::Kvm));
        record(
            &f,
            &Accel::Tcg("a test boot under KVM failed: KVM internal error".into()),
        );
        match read_verdict(&f) {
            Some(Accel::Tcg(why)) => assert!(why.starts_with("a test boot under KVM failed"), "{why}"),
            a => panic!("{a:?}"),
        }
        std::fs::write(&f, "garbage").unwrap();
        assert_eq!(read_verdict(&f), None);
    }
}
