//! `vyoma-bench boot`: image size, and boot time in QEMU from QEMU's start to the
//! supervisor's "boot complete" line on the serial console, for the bundled app set and
//! for 200 apps, side by side in the same run with the same kernel booting a trivial init
//! that prints one line (`vyoma-trivial-init`). The difference isolates the supervisor's
//! own cost. Figures are printed as Markdown for `docs/PERFORMANCE.md`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use vyoma_image::accel::AccelChoice;
use vyoma_image::initramfs::{Node, Tree};
use vyoma_image::qemu::{Accel, Serial, Vm};
use vyoma_image::{BuildOptions, ImageReport};

use crate::Exit;

#[derive(clap::Args, Debug)]
pub(crate) struct BenchBootArgs {
    /// Boots of each image (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Apps in the large image (each runs the bundled ticker).
    #[arg(long, default_value_t = 200)]
    apps: usize,
    /// How QEMU runs the guest: `kvm`, `tcg`, or `auto` [default: $VYOMA_ACCEL, else auto].
    #[arg(long, value_name = "auto|kvm|tcg")]
    accel: Option<AccelChoice>,
    /// Also boot the default set with this (older) static /init, side by side: a
    /// before/after comparison of the supervisor itself. Its image has no separate
    /// compiler (vyoma-compile), as images had before the compiler left /init.
    #[arg(long, value_name = "PATH")]
    before_init: Option<PathBuf>,
}

/// The line the trivial init prints.
const TRIVIAL_MARK: &str = "trivial init: up";

pub(crate) fn is_boot_mark(l: &str) -> bool {
    l.starts_with("vyoma: ") && l.contains("boot complete")
}

/// The supervisor's phases in its boot line (`... boot complete in N ms: PHASES)` or
/// `... boot complete in N ms (PHASES): ...`).
fn phases(line: &str) -> Option<&str> {
    let rest = line.split_once("boot complete in ")?.1;
    let rest = rest.split_once(" ms")?.1;
    let rest = rest.strip_prefix(": ").or_else(|| rest.strip_prefix(" ("))?;
    Some(rest.split_once(')')?.0)
}

/// One boot's figures.
struct Boot {
    /// QEMU start to the line, host clock.
    ms: f64,
    /// The supervisor's own count in that line, if any.
    guest: Option<u64>,
    /// The supervisor's phases in that line, if any.
    phases: Option<String>,
}

/// Boots `vm` once: milliseconds from QEMU's start to the line `mark` accepts, and the
/// in-guest figures that line carries (`... in N ms`, the phases), if any. Shuts the VM
/// down cleanly.
fn boot_once(vm: &Vm, mark: fn(&str) -> bool, shutdown: bool) -> anyhow::Result<Boot> {
    let mut s = Serial::start(vm)?;
    let (at, line) = s
        .wait_for(Duration::from_secs(300), mark)
        .map_err(|e| anyhow::anyhow!(e))?;
    let ms = at.duration_since(s.started).as_secs_f64() * 1e3;
    let guest = line
        .split(" in ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok());
    // The guest's console text, made safe for this terminal.
    let phases = phases(&line).map(|p| vyoma_supervisor::console::terminal_safe(p).into_owned());
    if shutdown {
        s.send("shutdown").map_err(|e| anyhow::anyhow!(e))?;
    }
    match s.wait_exit(Duration::from_secs(120)) {
        Some(st) if st.success() => Ok(Boot { ms, guest, phases }),
        Some(st) => bail!("QEMU exited with {st}:\n{}", s.transcript()),
        None => bail!("the VM did not power off within 120 s:\n{}", s.transcript()),
    }
}

/// The accelerator `--accel` asked for, else `$VYOMA_ACCEL`'s (else auto).
pub(crate) fn accel_choice(arg: Option<AccelChoice>) -> anyhow::Result<AccelChoice> {
    match arg {
        Some(c) => Ok(c),
        None => AccelChoice::from_env().map_err(anyhow::Error::msg),
    }
}

/// How QEMU ran the guest, for a report's header.
pub(crate) fn describe(accel: &Accel) -> String {
    match accel {
        Accel::Kvm => "with KVM".to_string(),
        Accel::Tcg(why) => format!("with TCG software emulation ({why})"),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// An image of `apps` with `init` as `/init`, and with `compiler` when given (an image
/// of an older `/init`, which had the compiler in it, is built without).
pub(crate) fn build(
    apps: &Path,
    out: &Path,
    cache: &Path,
    init: PathBuf,
    compiler: Option<PathBuf>,
) -> anyhow::Result<ImageReport> {
    Ok(vyoma_image::build(&BuildOptions {
        apps: apps.to_path_buf(),
        init,
        compiler,
        out: out.to_path_buf(),
        cache_root: cache.to_path_buf(),
        oci: false,
        api_names: Vec::new(),
        append: String::new(),
    })?)
}

fn kib(n: u64) -> String {
    format!("{:.0} KiB", n as f64 / 1024.0)
}

pub(crate) fn bench_boot(args: BenchBootArgs) -> anyhow::Result<Exit> {
    let cache = vyoma_runtime::default_cache_dir().context("no cache folder: set VYOMA_CACHE_DIR or HOME")?;
    let work = tempfile::tempdir()?;
    let default = build(
        &crate::default_apps(),
        &work.path().join("default"),
        &cache,
        vyoma_image::default_init(),
        Some(vyoma_image::default_compiler()),
    )?;
    let many_apps = work.path().join("many");
    crate::common::write_apps(&many_apps, args.apps, &crate::default_apps().join("ticker/ticker.wasm"))?;
    let many = build(
        &many_apps,
        &work.path().join("many-image"),
        &cache,
        vyoma_image::default_init(),
        Some(vyoma_image::default_compiler()),
    )?;
    let before = match &args.before_init {
        Some(init) => Some(build(
            &crate::default_apps(),
            &work.path().join("before"),
            &cache,
            init.clone(),
            None,
        )?),
        None => None,
    };

    // The baseline: the same kernel, an initramfs holding only the trivial init.
    let trivial_bin = vyoma_image::musl_build("image", "vyoma-trivial-init");
    let init = std::fs::read(&trivial_bin)
        .with_context(|| format!("{} is missing: build it with `./dev image`", trivial_bin.display()))?;
    let mut tree = Tree::base();
    tree.add(
        "init",
        Node::File {
            mode: 0o755,
            data: init,
        },
    );
    let trivial = work.path().join("trivial");
    std::fs::create_dir_all(&trivial)?;
    std::fs::copy(
        default.dir.join(vyoma_image::KERNEL_FILE),
        trivial.join(vyoma_image::KERNEL_FILE),
    )?;
    std::fs::write(
        trivial.join(vyoma_image::INITRAMFS_FILE),
        vyoma_image::initramfs::compress(&tree.to_cpio()?)?,
    )?;
    std::fs::write(trivial.join(vyoma_image::CMDLINE_FILE), vyoma_image::DEFAULT_CMDLINE)?;

    let choice = accel_choice(args.accel)?;
    let vm = |dir: &PathBuf| -> anyhow::Result<Vm> { Ok(Vm::from_image_with(dir, "", choice)?) };
    let (vt, vd, vm_many) = (vm(&trivial)?, vm(&default.dir)?, vm(&many.dir)?);
    // The default set as `vyoma boot` runs it: a virtio-net device, DHCP, the API forwarded.
    let vnet = vd.clone().with_network(vyoma_image::qemu::free_port(0)?);
    let vbefore = before.as_ref().map(|b| vm(&b.dir)).transpose()?;
    let accel = vt.accel.clone();
    let (mut t, mut d, mut m, mut dg, mut mg) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut n, mut ng, mut b, mut bg) = (vec![], vec![], vec![], vec![]);
    // The phases of each image's boots, by the supervisor's own count.
    let mut phased: Vec<(&str, Vec<(u64, String)>)> = vec![
        ("default set", vec![]),
        ("with the network", vec![]),
        ("many apps", vec![]),
    ];
    let mut record = |times: &mut Vec<f64>, guest: &mut Vec<f64>, which: usize, boot: Boot| {
        times.push(boot.ms);
        guest.extend(boot.guest.map(|g| g as f64));
        if let (Some(g), Some(p)) = (boot.guest, boot.phases) {
            phased[which].1.push((g, p));
        }
    };
    // Interleaved so drift on the machine affects every image alike, in an order that
    // rotates each round: with a fixed order, position effects on this kind of host
    // biased the comparison (the default set, always booted right after the trivial
    // init, came out slower than the older /init in every run; docs/PERFORMANCE.md).
    let kinds = if vbefore.is_some() { 5 } else { 4 };
    for round in 0..args.runs.max(1) {
        for slot in 0..kinds {
            match (round + slot) % kinds {
                0 => t.push(boot_once(&vt, |l| l.contains(TRIVIAL_MARK), false)?.ms),
                1 => record(&mut d, &mut dg, 0, boot_once(&vd, is_boot_mark, true)?),
                2 => record(&mut n, &mut ng, 1, boot_once(&vnet, is_boot_mark, true)?),
                3 => record(&mut m, &mut mg, 2, boot_once(&vm_many, is_boot_mark, true)?),
                _ => {
                    if let Some(vb) = &vbefore {
                        let boot = boot_once(vb, is_boot_mark, true)?;
                        b.push(boot.ms);
                        bg.extend(boot.guest.map(|g| g as f64));
                    }
                }
            }
        }
    }
    let (t, d, m, n) = (median(t), median(d), median(m), median(n));
    let in_guest = |v: Vec<f64>| {
        if v.is_empty() {
            "-".to_string()
        } else {
            format!("{:.0} ms", median(v))
        }
    };

    println!("# vyoma-bench boot\n");
    println!(
        "QEMU {}, {} vCPUs, {} MiB; median of {} boots per image, interleaved\n",
        describe(&accel),
        vt.cpus,
        vt.memory_mib,
        args.runs.max(1)
    );
    println!("| image | kernel | initramfs | total | of which /init | apps (precompiled) |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut sized = vec![("default set", &default), ("tickers", &many)];
    if let Some(b) = &before {
        sized.push(("default set, the older /init", b));
    }
    for (name, r) in sized {
        println!(
            "| {name} ({} apps) | {} | {} | {} | {} | {} |",
            r.apps.len(),
            kib(r.kernel_size),
            kib(r.initramfs_size),
            kib(r.total()),
            kib(r.init_size),
            kib(r.artifacts_size()),
        );
    }
    println!();
    println!(
        "| boot | QEMU start → line on the console | minus trivial init | supervisor's own count (init start → all started) |"
    );
    println!("|---|---:|---:|---:|");
    println!("| trivial init (`{TRIVIAL_MARK}`) | {t:.0} ms | - | - |");
    println!(
        "| default set ({} apps) | {d:.0} ms | {:.0} ms | {} |",
        default.apps.len(),
        d - t,
        in_guest(dg)
    );
    println!(
        "| default set with the network (virtio-net, DHCP) and the API forwarded | {n:.0} ms | {:.0} ms | {} |",
        n - t,
        in_guest(ng)
    );
    println!(
        "| {} apps | {m:.0} ms | {:.0} ms | {} |",
        args.apps,
        m - t,
        in_guest(mg)
    );
    if !b.is_empty() {
        let b = median(b);
        println!(
            "| default set, the older /init | {b:.0} ms | {:.0} ms | {} |",
            b - t,
            in_guest(bg)
        );
    }
    println!("\nThe supervisor's phases in its median boot of each image (guest clock):\n");
    for (name, mut boots) in phased {
        boots.sort_by_key(|(g, _)| *g);
        if let Some((g, p)) = boots.get(boots.len() / 2) {
            println!("- {name}: {g} ms = {p}");
        }
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phases_are_read_from_either_boot_line() {
        assert_eq!(
            phases("vyoma: all 200 apps running (boot complete in 678 ms: init 36 ms, manifests 80 ms, start 9 ms)"),
            Some("init 36 ms, manifests 80 ms, start 9 ms")
        );
        assert_eq!(
            phases("vyoma: boot complete in 12 ms (init 1 ms, start 2 ms): 3 apps started (2 running, 1 exited)"),
            Some("init 1 ms, start 2 ms")
        );
        assert_eq!(phases("trivial init: up"), None);
    }
}
