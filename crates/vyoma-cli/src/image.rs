//! `vyoma image build` and `vyoma boot`: the bootable image, from the apps in a folder,
//! and QEMU with the serial console on the user's terminal.

use std::path::PathBuf;

use anyhow::Context;
use vyoma_image::qemu::{Accel, AccelChoice, Vm};
use vyoma_image::{BuildOptions, ImageError};

use vyoma_supervisor::console::terminal_safe;

use crate::Exit;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum ImageCmd {
    /// Build a bootable image from the apps in DIR (default: the bundled example apps).
    Build(BuildArgs),
}

#[derive(clap::Args, Debug)]
pub(crate) struct BuildArgs {
    /// A folder of app folders.
    dir: Option<PathBuf>,
    /// Where to write the image [default: target/vyoma-image in the source tree].
    #[arg(long)]
    out: Option<PathBuf>,
    /// The static vyoma-init binary to use as /init [default: $VYOMA_INIT, else the
    /// `./dev image` build in the source tree].
    #[arg(long)]
    init: Option<PathBuf>,
    /// The static vyoma-compile binary the device compiles deployed apps with
    /// [default: $VYOMA_COMPILE, else the `./dev image` build in the source tree].
    #[arg(long)]
    compiler: Option<PathBuf>,
    /// Also write the image as an OCI image archive (vyoma-image.oci.tar: /boot/bzImage and
    /// /boot/initramfs, for KubeVirt's kernelBoot; see docs/fleet.md).
    #[arg(long)]
    oci: bool,
    /// A host name (wildcards allowed) or IP address clients reach the image's API under,
    /// added to its certificate; repeat for several. Changing them makes new credentials.
    #[arg(long = "api-name", value_name = "NAME")]
    api_names: Vec<String>,
    /// VyomaOS options baked into the image's kernel command line, e.g. `vyoma.layout=kiosk
    /// vyoma.bar=off` (docs/image.md lists them); checked as the image will read them.
    /// `vyoma boot --append` adds more for one boot.
    #[arg(long, value_name = "OPTIONS", default_value = "")]
    append: String,
}

#[derive(clap::Args, Debug)]
pub(crate) struct BootArgs {
    /// The image folder [default: target/vyoma-image in the source tree].
    image: Option<PathBuf>,
    /// Extra kernel command line, e.g. `vyoma.log=info vyoma.apps=echo`.
    #[arg(long, default_value = "")]
    append: String,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 512)]
    memory: u32,
    /// Guest CPUs.
    #[arg(long, default_value_t = 2)]
    cpus: u32,
    /// The host port (on 127.0.0.1) forwarded to the guest's management API [default:
    /// 7443, or a free one if that is taken].
    #[arg(long, value_name = "PORT")]
    api_port: Option<u16>,
    /// The host port forwarded to the guest's HTTP gateway [default: 8080, or a free one]
    #[arg(long, value_name = "PORT")]
    http_port: Option<u16>,
    /// No network device (the guest has only lo; no management API or HTTP from the host).
    #[arg(long, conflicts_with_all = ["api_port", "http_port"])]
    no_network: bool,
    /// The app store's disk (apps deployed over the API, their versions and data), made
    /// on first use: an ext4 file system in a sparse 1 GiB file [default: store.ext4 in
    /// the image folder].
    #[arg(long, value_name = "FILE")]
    disk: Option<PathBuf>,
    /// No disk: the image's apps run as built, and nothing can be deployed or updated.
    #[arg(long, conflicts_with = "disk")]
    no_disk: bool,
    /// The guest's screen: `window` (QEMU's window on your desktop; its keyboard and
    /// pointer are the apps'), `headless` (a virtio GPU shown nowhere: screenshots over the
    /// API), `none` (no display devices), or `auto`: a window if this host's QEMU can open
    /// one (Debian: qemu-system-gui) on a desktop, else headless
    #[arg(long, value_name = "MODE", default_value = "auto", value_parser = ["auto", "window", "headless", "none"])]
    display: String,
    /// The screen's size, WIDTHxHEIGHT
    #[arg(long, value_name = "WxH", default_value = "1280x800", value_parser = crate::run::parse_screen)]
    screen: vyoma_display::Size,
    #[command(flatten)]
    pub(crate) accel: AccelArg,
}

/// `--accel`, shared by the commands that boot an image.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct AccelArg {
    /// How QEMU runs the guest: `kvm`, `tcg` (software emulation), or `auto` (KVM if a
    /// short test boot works on this host, cached per host) [default: $VYOMA_ACCEL, else auto].
    #[arg(long, value_name = "auto|kvm|tcg")]
    accel: Option<AccelChoice>,
}

impl AccelArg {
    /// The flag, else `$VYOMA_ACCEL`, else auto.
    pub(crate) fn choice(&self) -> anyhow::Result<AccelChoice> {
        match self.accel {
            Some(c) => Ok(c),
            None => AccelChoice::from_env().map_err(anyhow::Error::msg),
        }
    }
}

/// The image folder `vyoma image build` writes by default.
pub(crate) fn default_image() -> PathBuf {
    vyoma_image::source_tree("target/vyoma-image")
}

pub(crate) fn image(cmd: ImageCmd) -> anyhow::Result<Exit> {
    match cmd {
        ImageCmd::Build(args) => {
            let opts = BuildOptions {
                apps: args.dir.unwrap_or_else(crate::default_apps),
                init: args.init.unwrap_or_else(vyoma_image::default_init),
                compiler: Some(args.compiler.unwrap_or_else(vyoma_image::default_compiler)),
                out: args.out.unwrap_or_else(default_image),
                cache_root: vyoma_runtime::default_cache_dir()
                    .context("no cache folder: set VYOMA_CACHE_DIR or HOME")?,
                oci: args.oci,
                api_names: args.api_names,
                append: args.append,
            };
            let (_, problems) = vyoma_init::cmdline::parse(&opts.append);
            if !problems.is_empty() {
                anyhow::bail!(
                    "--append: {}; no image was written",
                    terminal_safe(&problems.join("; "))
                );
            }
            match vyoma_image::build(&opts) {
                Ok(report) => {
                    println!("{}", terminal_safe(&report.to_string()));
                    Ok(Exit::Ok)
                }
                Err(ImageError::Apps(d)) => {
                    println!("{}", terminal_safe(&d.to_string()));
                    println!(
                        "{} problem(s) in {}: no image was written",
                        d.len(),
                        opts.apps.display()
                    );
                    Ok(Exit::InvalidApps)
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

pub(crate) fn boot(args: BootArgs) -> anyhow::Result<Exit> {
    let dir = args.image.unwrap_or_else(default_image);
    let mut vm = Vm::from_image_with(&dir, &args.append, args.accel.choice()?)?;
    vm.memory_mib = args.memory;
    vm.cpus = args.cpus;
    if !args.no_disk {
        let disk = args.disk.unwrap_or_else(|| dir.join(vyoma_image::STORE_DISK_FILE));
        if vyoma_image::qemu::make_store_disk(&disk, vyoma_image::qemu::STORE_DISK_SIZE)? {
            eprintln!(
                "made the app store's disk {} (ext4, 1 GiB sparse; --no-disk boots without one)",
                disk.display()
            );
        }
        vm.disk = Some(disk);
    }
    if !args.no_network {
        let port = match args.api_port {
            Some(p) => p,
            None => vyoma_image::qemu::free_port(vyoma_image::HOST_API_PORT)
                .context("finding a free host port for the management API")?,
        };
        let http = match args.http_port {
            Some(p) => p,
            None => vyoma_image::qemu::free_port(vyoma_image::HOST_HTTP_PORT)
                .context("finding a free host port for the HTTP gateway")?,
        };
        vm = vm.with_network(port).with_http(http);
    }
    let ui = vyoma_image::qemu::window_ui();
    let (w, h) = (args.screen.w, args.screen.h);
    vm.screen = match (args.display.as_str(), ui) {
        ("none", _) => None,
        ("window", None) => anyhow::bail!(
            "--display window: this host's QEMU cannot open a window here (it needs a desktop, $DISPLAY or $WAYLAND_DISPLAY, and QEMU's gtk or sdl ui: on Debian `apt install qemu-system-gui`); use --display headless"
        ),
        ("window" | "auto", Some(ui)) => Some(vyoma_image::qemu::Screen {
            width: w,
            height: h,
            window: Some(ui.to_string()),
            gpu: vyoma_image::qemu::VIRTIO_GPU,
        }),
        _ => Some(vyoma_image::qemu::Screen::headless(w, h)),
    };
    match &vm.screen {
        Some(s) if s.window.is_some() => {
            eprintln!("screen: {w}x{h} in a QEMU window (the window's keyboard and pointer are the apps')")
        }
        Some(_) => eprintln!(
            "screen: {w}x{h}, headless (`vyoma screenshot FILE.png` shows it; --display window opens a window)"
        ),
        None => {}
    }
    if let Accel::Tcg(why) = &vm.accel {
        eprintln!("note: {why}; using software emulation (TCG), which is slower");
    }
    if let Some(url) = vm.api_url() {
        let config = dir.join(vyoma_image::CLIENT_CONFIG);
        eprintln!(
            "management API: {url} (from another terminal: vyoma --config {} --endpoint {url} ps)",
            config.display()
        );
    }
    if let Some(url) = vm.http_url() {
        eprintln!("HTTP gateway: {url} (the image's HTTP apps, e.g. curl {url}/hello)");
    }
    eprintln!(
        "booting {} ({} MiB, {} CPUs); `shutdown` powers off, Ctrl-A x quits QEMU",
        dir.display(),
        vm.memory_mib,
        vm.cpus
    );
    let status = vyoma_image::qemu::run_interactive(&vm)?;
    if status.success() {
        Ok(Exit::Ok)
    } else {
        anyhow::bail!("QEMU exited with {status}")
    }
}
