//! Running an image in QEMU: the command line, and, for tests and benchmarks, a driver for
//! the serial console and a minimal QMP client. Which accelerator to use is [`crate::accel`]'s.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use crate::accel::{Accel, AccelChoice};
use crate::{CMDLINE_FILE, INITRAMFS_FILE, ImageError, KERNEL_FILE, accel};

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-x86_64";

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
    /// The network: a virtio-net device on QEMU's user network, with this host port
    /// (on 127.0.0.1) forwarded to the guest's management API. `None`: no network device.
    pub api_forward: Option<u16>,
    /// With the network, this host port (on 127.0.0.1) forwarded to the guest's HTTP
    /// gateway (port [`crate::HTTP_PORT`]).
    pub http_forward: Option<u16>,
    /// The app store's disk (a raw ext4 image, see [`make_store_disk`]): the guest's
    /// `/dev/vda`. `None`: no disk, and the guest keeps no store.
    pub disk: Option<PathBuf>,
    /// A screen: a virtio GPU with a virtio keyboard and tablet. `None`: no display
    /// devices (the guest composes headless, if at all).
    pub screen: Option<Screen>,
}

/// The VM's screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screen {
    /// Its size (the GPU's preferred mode).
    pub width: u32,
    /// Its height.
    pub height: u32,
    /// QEMU's window toolkit to show it in (`gtk`, `sdl`); `None`: shown nowhere, read
    /// through QMP's `screendump`.
    pub window: Option<String>,
    /// The display device: [`VIRTIO_GPU`] or [`BOCHS_DISPLAY`].
    pub gpu: &'static str,
}

/// QEMU's paravirtual GPU (the guest's virtio-gpu driver).
pub const VIRTIO_GPU: &str = "virtio-gpu-pci";
/// QEMU's VGA-less standard display (the guest's bochs driver, as for `-vga std`).
pub const BOCHS_DISPLAY: &str = "bochs-display";

impl Screen {
    /// A screen QEMU shows nowhere, of `width` x `height`.
    pub fn headless(width: u32, height: u32) -> Screen {
        Screen {
            width,
            height,
            window: None,
            gpu: VIRTIO_GPU,
        }
    }
}

/// The window toolkit this host's QEMU can open a window with, if it has one and there is a
/// desktop to open it on (`$DISPLAY` or `$WAYLAND_DISPLAY`). Debian ships QEMU's windows
/// in the `qemu-system-gui` package.
pub fn window_ui() -> Option<&'static str> {
    let desktop = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    if !desktop {
        return None;
    }
    let out = Command::new(QEMU).args(["-display", "help"]).output().ok()?;
    let listed = String::from_utf8_lossy(&out.stdout);
    ["gtk", "sdl"]
        .into_iter()
        .find(|ui| listed.lines().any(|l| l.trim() == *ui))
}

impl Vm {
    /// The VM for the image in `dir` (as written by `vyoma image build`), with `extra`
    /// appended to its kernel command line, and the accelerator `$VYOMA_ACCEL` asks for
    /// (default: KVM if a probe boot works on this host, else TCG).
    pub fn from_image(dir: &Path, extra: &str) -> Result<Vm, ImageError> {
        let choice = AccelChoice::from_env().map_err(ImageError::Accel)?;
        Vm::from_image_with(dir, extra, choice)
    }

    /// [`Vm::from_image`] with an explicit accelerator choice.
    pub fn from_image_with(dir: &Path, extra: &str, choice: AccelChoice) -> Result<Vm, ImageError> {
        let kernel = dir.join(KERNEL_FILE);
        let initrd = dir.join(INITRAMFS_FILE);
        for f in [&kernel, &initrd] {
            if !f.is_file() {
                return Err(ImageError::NoImage(dir.to_path_buf()));
            }
        }
        let base = std::fs::read_to_string(dir.join(CMDLINE_FILE)).unwrap_or_else(|_| crate::DEFAULT_CMDLINE.into());
        let cmdline = format!("{} {extra}", base.trim()).trim().to_string();
        let accel = accel::choose(choice, &kernel, accel::default_cache().as_deref());
        Ok(Vm {
            kernel,
            initrd,
            cmdline,
            memory_mib: 512,
            cpus: 2,
            accel,
            qmp: None,
            api_forward: None,
            http_forward: None,
            disk: None,
            screen: None,
        })
    }

    /// Gives the VM a network: a virtio-net device on QEMU's user network (the guest asks
    /// its DHCP server for an address: `vyoma.net=dhcp`, unless the command line already
    /// says otherwise), with `host_port` on the host's loopback forwarded to the guest's
    /// management API. The URL to use is [`Vm::api_url`].
    pub fn with_network(mut self, host_port: u16) -> Vm {
        if !self.cmdline.split_whitespace().any(|w| w.starts_with("vyoma.net=")) {
            self.cmdline.push_str(" vyoma.net=dhcp");
        }
        self.api_forward = Some(host_port);
        self
    }

    /// Forwards `host_port` on the host's loopback to the guest's HTTP gateway (the VM
    /// needs a network: [`Vm::with_network`]). The URL to use is [`Vm::http_url`].
    pub fn with_http(mut self, host_port: u16) -> Vm {
        self.http_forward = Some(host_port);
        self
    }

    /// The host-side URL of the guest's HTTP gateway, when forwarded.
    pub fn http_url(&self) -> Option<String> {
        self.api_forward
            .and(self.http_forward)
            .map(|p| format!("http://127.0.0.1:{p}"))
    }

    /// The host-side URL of the guest's management API, when the VM has a network.
    pub fn api_url(&self) -> Option<String> {
        self.api_forward.map(|p| format!("https://127.0.0.1:{p}"))
    }

    /// The same VM under TCG, after a boot under KVM failed as `failure` says; the host's
    /// cached verdict becomes TCG, so the next boot goes there directly.
    fn after_kvm_failure(&self, failure: &str) -> Vm {
        let why = format!("a boot under KVM failed: {failure}");
        accel::record_failure(accel::default_cache().as_deref(), &why);
        Vm {
            accel: Accel::Tcg(why),
            ..self.clone()
        }
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
            .args(["-no-reboot", "-nodefaults"])
            // Entropy from the host, so the guest's RNG is ready at once.
            .args(["-device", "virtio-rng-pci"]);
        if interactive {
            c.args(["-serial", "mon:stdio"]);
        } else {
            c.args(["-serial", "stdio", "-monitor", "none"]);
        }
        if let Some(port) = self.api_forward {
            let mut netdev = format!("user,id=net0,hostfwd=tcp:127.0.0.1:{port}-:{}", crate::API_PORT);
            if let Some(http) = self.http_forward {
                netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{http}-:{}", crate::HTTP_PORT));
            }
            c.arg("-netdev")
                .arg(netdev)
                .args(["-device", "virtio-net-pci,netdev=net0"]);
        }
        if let Some(d) = &self.disk {
            // Written through the host's page cache, flushed when the guest syncs: a
            // killed QEMU loses nothing the guest synced.
            let mut drive = std::ffi::OsString::from("file=");
            drive.push(d.as_os_str());
            drive.push(",if=virtio,format=raw,cache=writeback,discard=unmap");
            c.arg("-drive").arg(drive);
        }
        match &self.screen {
            None => {
                c.args(["-display", "none"]);
            }
            Some(s) => {
                c.arg("-display")
                    .arg(s.window.as_deref().unwrap_or("none"))
                    .arg("-device")
                    .arg(format!("{},xres={},yres={}", s.gpu, s.width, s.height))
                    .args(["-device", "virtio-keyboard-pci", "-device", "virtio-tablet-pci"]);
            }
        }
        if let Some(q) = &self.qmp {
            c.arg("-qmp").arg(format!("unix:{},server=on,wait=off", q.display()));
        }
        c
    }
}

/// The size of the app store's disk `vyoma boot` makes (sparse: it takes on the host only
/// what the guest writes).
pub const STORE_DISK_SIZE: u64 = 1 << 30;

/// Makes the app store's disk at `path` if there is none: a sparse file of `size` bytes
/// with an ext4 file system (`mkfs.ext4`, from e2fsprogs). Returns whether it made one.
pub fn make_store_disk(path: &Path, size: u64) -> Result<bool, ImageError> {
    if path.exists() {
        return Ok(false);
    }
    let io = |what: String| move |source| ImageError::Io { what, source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    }
    // Made beside its final name and renamed once whole: an interrupted run leaves no
    // half-made disk to boot from.
    let tmp = path.with_extension("making");
    let file = std::fs::File::create(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
    file.set_len(size).map_err(io(format!("sizing {}", tmp.display())))?;
    drop(file);
    let mkfs = ["mkfs.ext4", "/sbin/mkfs.ext4", "/usr/sbin/mkfs.ext4"]
        .into_iter()
        .find(|p| Command::new(p).arg("-V").output().is_ok())
        .ok_or_else(|| ImageError::Tool {
            what: "mkfs.ext4".into(),
            detail: "not found: install e2fsprogs (Debian: apt-get install e2fsprogs), or boot with --no-disk".into(),
        })?;
    let out = Command::new(mkfs)
        .args([
            "-q",
            "-F",
            "-L",
            "vyoma-store",
            "-E",
            "lazy_itable_init=1,lazy_journal_init=1",
        ])
        .arg(&tmp)
        .output()
        .map_err(io(format!("running {mkfs}")))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(ImageError::Tool {
            what: format!("{mkfs} {}", tmp.display()),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    std::fs::rename(&tmp, path).map_err(io(format!("renaming {}", tmp.display())))?;
    Ok(true)
}

/// Runs `vm` with its serial console (and QEMU's monitor, Ctrl-A c) on this terminal until
/// QEMU exits. QEMU's errors are passed through; under KVM, a "KVM internal error" (the
/// guest died, and QEMU would sit there) ends QEMU, records the host's verdict as TCG, and
/// boots again under TCG.
pub fn run_interactive(vm: &Vm) -> Result<ExitStatus, ImageError> {
    let spawn = |vm: &Vm| {
        vm.command(true)
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ImageError::Tool {
                what: QEMU.into(),
                detail: format!("cannot start it: {e} (`apt-get install qemu-system-x86`)"),
            })
    };
    let mut child = spawn(vm)?;
    let mut kvm_failed = watch_stderr(&mut child);
    let mut under_kvm = vm.accel == Accel::Kvm;
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| ImageError::io("waiting for QEMU".into(), e))?
        {
            return Ok(status);
        }
        if under_kvm && let Ok(line) = kvm_failed.try_recv() {
            // SIGTERM, not SIGKILL: QEMU puts the terminal back the way it found it.
            let _ =
                rustix::process::kill_process(rustix::process::Pid::from_child(&child), rustix::process::Signal::TERM);
            let _ = child.wait();
            let tcg = vm.after_kvm_failure(&line);
            if let Accel::Tcg(why) = &tcg.accel {
                eprintln!("\nnote: {why}; booting again with software emulation (TCG)");
            }
            child = spawn(&tcg)?;
            kvm_failed = watch_stderr(&mut child);
            under_kvm = false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Passes QEMU's standard error through to ours, line by line, and reports the lines that
/// say KVM failed.
fn watch_stderr(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                eprintln!("{line}");
                if line.contains("KVM internal error") {
                    let _ = tx.send(line);
                }
            }
        });
    }
    rx
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

/// How long a boot under KVM may stay silent before it is taken for a KVM failure and the
/// VM is started again under TCG.
pub const KVM_FIRST_OUTPUT: Duration = Duration::from_secs(30);

impl Serial {
    /// Starts `vm` with its console on pipes. Under KVM, a boot that dies with a KVM error
    /// or prints nothing within [`KVM_FIRST_OUTPUT`] is ended and started again under TCG
    /// (and the host's cached verdict becomes TCG), so a host where KVM opens but does not
    /// run guests still boots.
    pub fn start(vm: &Vm) -> Result<Serial, ImageError> {
        let mut s = Serial::start_once(vm)?;
        if vm.accel != Accel::Kvm {
            return Ok(s);
        }
        let deadline = Instant::now() + KVM_FIRST_OUTPUT;
        let failure = loop {
            let t = s.transcript();
            if let Some(l) = t.lines().find(|l| l.contains("KVM internal error")) {
                break l.trim_start_matches("[qemu stderr] ").to_string();
            }
            if t.lines().any(|l| !l.starts_with("[qemu stderr]")) {
                return Ok(s);
            }
            if let Ok(Some(status)) = s.child.try_wait() {
                break format!("QEMU exited ({status}) before the guest printed anything");
            }
            if Instant::now() >= deadline {
                break format!("the guest printed nothing within {}s", KVM_FIRST_OUTPUT.as_secs());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        drop(s);
        let tcg = vm.after_kvm_failure(&failure);
        tracing::warn!(accel = ?tcg.accel, "starting the VM again under TCG");
        Serial::start_once(&tcg)
    }

    fn start_once(vm: &Vm) -> Result<Serial, ImageError> {
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
        // Line by line, as it comes: a KVM failure is printed while QEMU keeps running.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if let Ok(mut t) = t.lock() {
                    t.push_str("[qemu stderr] ");
                    t.push_str(&line);
                    t.push('\n');
                }
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

/// A connection to a VM's QMP socket (QEMU's machine protocol: JSON lines).
#[derive(Debug)]
pub struct Qmp {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Qmp {
    /// Connects to the socket at `path` and enters command mode.
    pub fn connect(path: &Path) -> Result<Qmp, String> {
        let stream = UnixStream::connect(path).map_err(|e| format!("connecting to QMP at {}: {e}", path.display()))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
        let mut q = Qmp { stream, reader };
        q.line("greeting")?;
        q.execute("qmp_capabilities", serde_json::json!({}))?;
        Ok(q)
    }

    fn line(&mut self, what: &str) -> Result<serde_json::Value, String> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(|e| format!("reading QMP {what}: {e}"))?;
        if n == 0 {
            return Err(format!("QMP closed before its {what}"));
        }
        serde_json::from_str(&line).map_err(|e| format!("QMP {what} is not JSON ({e}): {line}"))
    }

    /// Runs `command` with `arguments`; its `return` value, or QMP's error.
    pub fn execute(&mut self, command: &str, arguments: serde_json::Value) -> Result<serde_json::Value, String> {
        let mut msg = serde_json::json!({ "execute": command, "arguments": arguments }).to_string();
        msg.push('\n');
        self.stream
            .write_all(msg.as_bytes())
            .map_err(|e| format!("sending QMP {command}: {e}"))?;
        loop {
            let mut v = self.line(&format!("reply to {command}"))?;
            if let Some(r) = v.get_mut("return") {
                return Ok(r.take());
            }
            if let Some(e) = v.get("error") {
                return Err(format!("QMP refused {command}: {e}"));
            }
            // An asynchronous event (e.g. a device's): not the reply.
        }
    }

    /// Presses and releases `keys` (QEMU key names: `ctrl`, `alt`, `tab`, `a`...) together.
    pub fn send_keys(&mut self, keys: &[&str]) -> Result<(), String> {
        let keys: Vec<_> = keys
            .iter()
            .map(|k| serde_json::json!({"type": "qcode", "data": k}))
            .collect();
        self.execute("send-key", serde_json::json!({ "keys": keys })).map(drop)
    }

    /// Moves the tablet to (`x`, `y`) of a `width` x `height` screen and clicks its left
    /// button there.
    pub fn click(&mut self, x: u32, y: u32, width: u32, height: u32) -> Result<(), String> {
        // The tablet's axes run 0..=0x7fff over the screen.
        let abs = |v: u32, len: u32| (u64::from(v) * 0x7fff / u64::from(len.max(2) - 1)) as u32;
        let at = serde_json::json!([
            {"type": "abs", "data": {"axis": "x", "value": abs(x, width)}},
            {"type": "abs", "data": {"axis": "y", "value": abs(y, height)}},
        ]);
        self.execute("input-send-event", serde_json::json!({ "events": at }))?;
        for down in [true, false] {
            let e = serde_json::json!([{"type": "btn", "data": {"down": down, "button": "left"}}]);
            self.execute("input-send-event", serde_json::json!({ "events": e }))?;
        }
        Ok(())
    }

    /// Writes the VM's screen to `file` as PNG (QEMU 7.1 or later).
    pub fn screendump(&mut self, file: &Path) -> Result<(), String> {
        let file = file.to_str().ok_or("the screendump's path is not UTF-8")?;
        self.execute("screendump", serde_json::json!({ "filename": file, "format": "png" }))
            .map(drop)
    }
}

/// Presses Ctrl-Alt-Del on the VM's keyboard through its QMP socket.
pub fn send_ctrl_alt_del(qmp: &Path) -> Result<(), String> {
    Qmp::connect(qmp)?.send_keys(&["ctrl", "alt", "delete"])
}

/// A free TCP port on the host's loopback: `preferred` if it is free, else one the kernel
/// picks.
pub fn free_port(preferred: u16) -> std::io::Result<u16> {
    match std::net::TcpListener::bind(("127.0.0.1", preferred)) {
        Ok(l) => Ok(l.local_addr()?.port()),
        Err(_) => Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port()),
    }
}
