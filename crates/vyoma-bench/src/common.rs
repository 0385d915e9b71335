//! What the benchmarks share: writing app folders, reading memory figures from /proc,
//! percentiles, and formatting.

use std::path::Path;
use std::time::Duration;

/// Resident set size of this process, from /proc.
pub(crate) fn rss_bytes() -> u64 {
    proc_kib("/proc/self/status", "VmRSS:")
}

pub(crate) fn proc_kib(file: &str, key: &str) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// Writes `n` app folders (`t0000`, ...) that run `component` as a ticker.
pub(crate) fn write_apps(root: &Path, n: usize, component: &Path) -> anyhow::Result<()> {
    write_app_set(
        root,
        "t",
        n,
        component,
        "args = [\"1000\"]\n[limits]\nmemory = \"4 MiB\"\nlog_buffer = \"4 KiB\"\n",
    )
}

/// Writes `n` app folders `PREFIX0000`.. into `root`, each running `component`, with `tail`
/// appended to its manifest.
pub(crate) fn write_app_set(root: &Path, prefix: &str, n: usize, component: &Path, tail: &str) -> anyhow::Result<()> {
    for i in 0..n {
        let name = format!("{prefix}{i:04}");
        let dir = root.join(&name);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("app.toml"),
            format!(
                "manifest_version = 1\n[app]\nname = \"{name}\"\nversion = \"0.1.0\"\ncomponent = \"{}\"\n{tail}",
                component.display()
            ),
        )?;
    }
    Ok(())
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// A Markdown row of sorted latencies: `| what | n | p50 | p99 | max |`.
pub(crate) fn latency_row(what: &str, sorted: &[Duration]) -> String {
    format!(
        "| {what} | {} | {} | {} | {} |",
        sorted.len(),
        ms(percentile(sorted, 0.5)),
        ms(percentile(sorted, 0.99)),
        ms(*sorted.last().unwrap_or(&Duration::ZERO))
    )
}

/// The nanoseconds after `key=` in a result line, in microseconds (`4.2 us`).
pub(crate) fn us_field(line: &str, key: &str) -> anyhow::Result<String> {
    Ok(format!("{:.1} us", field(line, key)? as f64 / 1e3))
}

pub(crate) fn kib(b: u64) -> String {
    format!("{:.0} KiB", b as f64 / 1024.0)
}

/// Resolves once `log` holds a line the app wrote to stdout (or the log is gone).
pub(crate) async fn first_stdout_line(log: &vyoma_runtime::AppLog) {
    let mut changed = log.subscribe();
    while log
        .since(0)
        .0
        .iter()
        .all(|l| l.stream != vyoma_lifecycle::Stream::Stdout)
    {
        if changed.changed().await.is_err() {
            return;
        }
    }
}

/// Kills every child process and reaps it.
pub(crate) fn end_all(children: &mut [std::process::Child]) {
    for c in children.iter_mut() {
        let _ = c.kill();
    }
    for c in children.iter_mut() {
        let _ = c.wait();
    }
}

/// The number after `key=` in a result line (`rtt n=100 median_ns=4200`).
pub(crate) fn field(line: &str, key: &str) -> anyhow::Result<u64> {
    use anyhow::Context;
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .with_context(|| format!("no `{key}` in `{line}`"))?
        .parse()
        .with_context(|| format!("`{key}` in `{line}` is not a number"))
}

/// The value at `q` (0..=1) of `sorted`, which must be sorted and not empty.
pub(crate) fn percentile<T: Copy>(sorted: &[T], q: f64) -> T {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A component built by `./dev apps` (`apps/target/wasm32-wasip2/release/NAME.wasm`).
pub(crate) fn built_app(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let p = vyoma_image::source_tree(&format!("apps/target/wasm32-wasip2/release/{name}.wasm"));
    anyhow::ensure!(
        p.is_file(),
        "{} is missing: build the apps with `./dev apps`",
        p.display()
    );
    Ok(p)
}

/// The supervisor over the app folders in `dir` (the user's compile cache), once every
/// app is running.
pub(crate) async fn boot_running(dir: &Path) -> anyhow::Result<vyoma_supervisor::Supervisor> {
    let config = vyoma_runtime::RuntimeConfig {
        cache_dir: vyoma_runtime::default_cache_dir(),
        ..vyoma_runtime::RuntimeConfig::default()
    };
    let clock = std::sync::Arc::new(vyoma_supervisor::RealClock::default());
    let sup = vyoma_supervisor::boot(dir, config, clock).await?.supervisor;
    anyhow::ensure!(
        sup.wait_for("all", vyoma_lifecycle::AppState::Running, Duration::from_secs(300))
            .await?,
        "not every app reached running"
    );
    Ok(sup)
}

/// CPU time (user + system) of process `pid`, from /proc.
pub(crate) fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at its closing paren.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state, ppid, pgrp, session, tty_nr, tpgid, flags, minflt, cminflt,
    // majflt, cmajflt, utime, stime.
    let field = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let ticks = field(11) + field(12);
    let hz = rustix::param::clock_ticks_per_second();
    Duration::from_secs_f64(ticks as f64 / hz as f64)
}

/// One line describing this machine, for the top of a report.
pub(crate) fn machine() -> String {
    format!(
        "machine: {} CPUs ({}), {}; kernel {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| s.lines().find_map(|l| l
                .strip_prefix("model name")?
                .split_once(':')
                .map(|(_, m)| m.trim().to_string())))
            .unwrap_or_else(|| "CPU model unknown".into()),
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| s
                .lines()
                .next()
                .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")))
            .unwrap_or_default(),
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_from_result_lines() {
        let l = "rtt n=100 size=16 median_ns=4200 p99_ns=9000 mean_ns=4500";
        assert_eq!(field(l, "median_ns").unwrap(), 4200);
        assert_eq!(field(l, "n").unwrap(), 100);
        assert!(field(l, "p50_ns").is_err());
        assert!(field("rtt median_ns=x", "median_ns").is_err());
    }

    #[test]
    fn percentiles_pick_by_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&v, 0.5), 51);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(percentile(&[7], 0.99), 7);
    }
}
