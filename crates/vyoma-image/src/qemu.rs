//! Running an image in QEMU: choosing KVM or software emulation (TCG), the command line,
//! and, for tests and benchmarks, a driver for the serial console and a minimal QMP client.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{CMDLINE_FILE, INITRAMFS_FILE, ImageError, KERNEL_FILE};

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-x86_64";

/// How QEMU runs the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation.
    Kvm,
    /// Software emulation, with the reason KVM was not used.
    Tcg(String),
}

/// Uses KVM if QEMU can actually run a vCPU with it here, else TCG. `/dev/kvm` existing is
/// not enough: on some hosts (nested virtualisation) KVM opens but QEMU aborts setting up
/// the vCPU, so the probe creates one, paused, the same way a boot does.
pub fn detect_accel() -> Accel {
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        return Accel::Tcg(format!("/dev/kvm is not usable: {e}"));
    }
    // With KVM working, QEMU creates the paused vCPU, reaches its monitor and `quit`s;
    // without, it exits (or aborts) at once with an error.
    let probe = Command::new(QEMU)
        .args([
            "-accel", "kvm", "-cpu", "host", "-M", "q35", "-m", "64", "-smp", "1", "-S",
        ])
        .args(["-nodefaults", "-display", "none", "-monitor", "stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            if let Some(mut i) = c.stdin.take() {
                let _ = i.write_all(b"quit\n");
            }
            c.wait_with_output()
        });
    match probe {
        Ok(o) if o.status.success() => Accel::Kvm,
        Ok(o) => Accel::Tcg(format!(
            "QEMU cannot use KVM: {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .next()
                .unwrap_or("it stopped without saying why")
        )),
        Err(e) => Accel::Tcg(format!("cannot run {QEMU}: {e}")),
    }
}

/// A VM to start.
#[derive(Debug, Clone)]
pub struct Vm {
    /// The kernel.
    pub kernel: PathBuf,
    /// The initramfs.
    pub initrd: PathBuf,
    /// The kernel command line.
    pub cmdline: String,
    /// Guest memory.
    pub memory_mib: u32,
    /// Guest CPUs.
    pub cpus: u32,
    /// KVM or TCG.
    pub accel: Accel,
    /// A QMP socket to create (for sending keys in tests).
    pub qmp: Option<PathBuf>,
}

impl Vm {
    /// The VM for the image in `dir` (as written by `vyoma image build`), with `extra`
    /// appended to its kernel command line.
    pub fn from_image(dir: &Path, extra: &str) -> Result<Vm, ImageError> {
        let kernel = dir.join(KERNEL_FILE);
        let initrd = dir.join(INITRAMFS_FILE);
        for f in [&kernel, &initrd] {
            if !f.is_file() {
                return Err(ImageError::NoImage(dir.to_path_buf()));
            }
        }
        let base = std::fs::read_to_string(dir.join(CMDLINE_FILE)).unwrap_or_else(|_| crate::DEFAULT_CMDLINE.into());
        let cmdline = format!("{} {extra}", base.trim()).trim().to_string();
        Ok(Vm {
            kernel,
            initrd,
            cmdline,
            memory_mib: 512,
            cpus: 2,
            accel: detect_accel(),
            qmp: None,
        })
    }

    /// The QEMU command. The serial console is QEMU's standard input and output; with
    /// `interactive`, QEMU's monitor shares it (Ctrl-A c; Ctrl-A x quits). A guest reboot
    /// ends QEMU (`-no-reboot`), like a power-off, so nothing ever hangs in a reboot loop.
    pub fn command(&self, interactive: bool) -> Command {
        let mut c = Command::new(QEMU);
        match &self.accel {
            Accel::Kvm => c.args(["-accel", "kvm", "-cpu", "host"]),
            Accel::Tcg(_) => c.args(["-accel", "tcg", "-cpu", "max"]),
        };
        c.args(["-M", "q35", "-m"])
            .arg(self.memory_mib.to_string())
            .arg("-smp")
            .arg(self.cpus.to_string())
            .arg("-kernel")
            .arg(&self.kernel)
            .arg("-initrd")
            .arg(&self.initrd)
            .arg("-append")
            .arg(&self.cmdline)
            .args(["-display", "none", "-no-reboot", "-nodefaults"])
            // Entropy from the host, so the guest's RNG is ready at once.
            .args(["-device", "virtio-rng-pci"]);
        if interactive {
            c.args(["-serial", "mon:stdio"]);
        } else {
            c.args(["-serial", "stdio", "-monitor", "none"]);
        }
        if let Some(q) = &self.qmp {
            c.arg("-qmp").arg(format!("unix:{},server=on,wait=off", q.display()));
        }
        c
    }
}

/// A running VM whose serial console is driven line by line (tests, benchmarks).
#[derive(Debug)]
pub struct Serial {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<(Instant, String)>,
    transcript: Arc<Mutex<String>>,
    /// When QEMU was started.
    pub started: Instant,
}

impl Serial {
    /// Starts `vm` with its console on pipes.
    pub fn start(vm: &Vm) -> Result<Serial, ImageError> {
        let mut cmd = vm.command(false);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|e| ImageError::Tool {
            what: QEMU.into(),
            detail: format!("cannot start it: {e} (`apt-get install qemu-system-x86`)"),
        })?;
        let stdin = child.stdin.take();
        let transcript = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        let t = transcript.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf)
                            .trim_end_matches(['\n', '\r'])
                            .replace('\r', "");
                        if let Ok(mut t) = t.lock() {
                            t.push_str(&line);
                            t.push('\n');
                        }
                        if tx.send((Instant::now(), line)).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let stderr = child.stderr.take().expect("piped");
        let t = transcript.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut s);
            if let Ok(mut t) = t.lock()
                && !s.is_empty()
            {
                t.push_str("[qemu stderr] ");
                t.push_str(&s);
            }
        });
        Ok(Serial {
            child,
            stdin,
            lines,
            transcript,
            started,
        })
    }

    /// Everything the console printed so far (and QEMU's errors).
    pub fn transcript(&self) -> String {
        self.transcript.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Waits for a console line for which `pred` holds; returns it and when it arrived.
    pub fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Result<(Instant, String), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, l)) if pred(&l) => return Ok((at, l)),
                Ok(_) => {}
                Err(_) => {
                    return Err(format!(
                        "no matching console line within {timeout:?}; console so far:\n{}",
                        self.transcript()
                    ));
                }
            }
        }
    }

    /// Collects the console lines that arrive until one satisfies `last` (included).
    pub fn collect_until(&mut self, timeout: Duration, last: impl Fn(&str) -> bool) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((_, l)) => {
                    let done = last(&l);
                    out.push(l);
                    if done {
                        return Ok(out);
                    }
                }
                Err(_) => return Err(format!("timed out; console so far:\n{}", self.transcript())),
            }
        }
    }

    /// Types `line` and Enter on the console.
    pub fn send(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("the console input is closed")?;
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("writing to the console: {e}"))
    }

    /// Waits for QEMU to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Serial {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Presses Ctrl-Alt-Del on the VM's keyboard through its QMP socket.
pub fn send_ctrl_alt_del(qmp: &Path) -> Result<(), String> {
    let mut s = UnixStream::connect(qmp).map_err(|e| format!("connecting to QMP at {}: {e}", qmp.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut r = BufReader::new(s.try_clone().map_err(|e| e.to_string())?);
    let mut line = String::new();
    let mut read = |what: &str| -> Result<String, String> {
        line.clear();
        r.read_line(&mut line).map_err(|e| format!("reading QMP {what}: {e}"))?;
        Ok(line.clone())
    };
    read("greeting")?;
    s.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")
        .map_err(|e| e.to_string())?;
    read("capabilities reply")?;
    s.write_all(
        b"{\"execute\":\"send-key\",\"arguments\":{\"keys\":[{\"type\":\"qcode\",\"data\":\"ctrl\"},{\"type\":\"qcode\",\"data\":\"alt\"},{\"type\":\"qcode\",\"data\":\"delete\"}]}}\n",
    )
    .map_err(|e| e.to_string())?;
    let reply = read("send-key reply")?;
    if reply.contains("\"return\"") {
        Ok(())
    } else {
        Err(format!("QMP refused send-key: {reply}"))
    }
}
