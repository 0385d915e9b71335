//! `GET /metrics`: a snapshot of the supervisor in the Prometheus text format, encoded by
//! `prometheus-client` at scrape time (nothing is kept between scrapes).
//!
//! Per app (label `app`): `vyoma_app_state` (1, with the state as a label),
//! `vyoma_app_running`, `vyoma_app_restarts_total`, `vyoma_app_uptime_seconds`,
//! `vyoma_app_memory_bytes`, `vyoma_app_cpu_seconds_total`, `vyoma_app_ipc_sent_total`,
//! `..._received_total`, `..._refused_total`, `vyoma_app_ipc_queued`,
//! `vyoma_app_log_dropped_lines_total`; for HTTP apps `vyoma_app_http_requests_total`,
//! `..._errors_total`, `..._rejected_total`, `vyoma_app_http_in_flight`. Supervisor-wide: `vyoma_apps` (by state),
//! `vyoma_ready`, `vyoma_instances`, `vyoma_instance_capacity`,
//! `vyoma_memory_budget_bytes`, `vyoma_memory_budget_used_bytes`,
//! `vyoma_supervisor_resident_bytes`, `vyoma_supervisor_uptime_seconds`.

use std::fmt;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use vyoma_lifecycle::AppState;
use vyoma_supervisor::{AppStatus, Supervisor};

/// Everything one scrape reports.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// One row per app.
    pub rows: Vec<AppStatus>,
    /// Log lines each app's log dropped, in the order of `rows`.
    pub log_dropped: Vec<u64>,
    /// Whether the instance is ready.
    pub ready: bool,
    /// Live instances.
    pub instances: u64,
    /// The most instances the machine can hold.
    pub capacity: u64,
    /// The apps' shared memory budget.
    pub budget: u64,
    /// Bytes of it in use.
    pub budget_used: u64,
    /// The supervisor's resident memory, if known.
    pub resident: Option<u64>,
    /// Time since the API started.
    pub uptime: Duration,
}

impl Snapshot {
    /// The supervisor's figures now.
    pub fn take(sup: &Supervisor, ready: bool, uptime: Duration) -> Snapshot {
        let rows = sup.status();
        let log_dropped = rows
            .iter()
            .map(|r| sup.log(&r.name).map(|l| l.usage().0).unwrap_or(0))
            .collect();
        let rt = sup.runtime();
        Snapshot {
            rows,
            log_dropped,
            ready,
            instances: rt.live_instances() as u64,
            capacity: rt.capacity().instances as u64,
            budget: rt.memory_budget().limit(),
            budget_used: rt.memory_budget().used(),
            resident: resident_bytes(),
            uptime,
        }
    }

    /// The Prometheus text.
    pub fn encode(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

/// This process's resident set size, from /proc/self/statm.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// One per-app metric: `value` of each row.
fn per_app<F>(
    enc: &mut DescriptorEncoder<'_>,
    s: &Snapshot,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    counter: bool,
    value: F,
) -> fmt::Result
where
    F: Fn(usize, &AppStatus) -> f64,
{
    let ty = if counter {
        MetricType::Counter
    } else {
        MetricType::Gauge
    };
    let mut m = enc.encode_descriptor(name, help, unit, ty)?;
    for (i, r) in s.rows.iter().enumerate() {
        let labels = [("app", r.name.as_str())];
        let v = value(i, r);
        if counter {
            ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
        } else {
            ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// One per-app metric for the HTTP apps only (the rows with request counts).
fn per_http_app(
    enc: &mut DescriptorEncoder<'_>,
    s: &Snapshot,
    name: &str,
    help: &str,
    counter: bool,
    value: impl Fn(&vyoma_control::HttpStatus) -> u64,
) -> fmt::Result {
    let ty = if counter {
        MetricType::Counter
    } else {
        MetricType::Gauge
    };
    let mut m = enc.encode_descriptor(name, help, None, ty)?;
    for r in &s.rows {
        let Some(h) = &r.http else { continue };
        let labels = [("app", r.name.as_str())];
        let v = value(h) as f64;
        if counter {
            ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
        } else {
            ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

fn gauge(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, unit: Option<&Unit>, v: f64) -> fmt::Result {
    ConstGauge::new(v).encode(enc.encode_descriptor(name, help, unit, MetricType::Gauge)?)
}

impl Collector for Snapshot {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let s = self;
        {
            let mut m = enc.encode_descriptor(
                "vyoma_app_state",
                "The app's lifecycle state, as the `state` label (value 1).",
                None,
                MetricType::Gauge,
            )?;
            for r in &s.rows {
                let state = r.state.to_string();
                let labels = [("app", r.name.as_str()), ("state", state.as_str())];
                ConstGauge::new(1i64).encode(m.encode_family(&labels)?)?;
            }
        }
        per_app(
            &mut enc,
            s,
            "vyoma_app_running",
            "1 while the app runs.",
            None,
            false,
            |_, r| f64::from(u8::from(r.state == AppState::Running)),
        )?;
        per_app(
            &mut enc,
            s,
            "vyoma_app_restarts",
            "Restarts since boot.",
            None,
            true,
            |_, r| f64::from(r.restarts),
        )?;
        per_app(
            &mut enc,
            s,
            "vyoma_app_uptime",
            "Time in the running state (0 when not running).",
            Some(&Unit::Seconds),
            false,
            |_, r| r.uptime.map_or(0.0, secs),
        )?;
        per_app(
            &mut enc,
            s,
            "vyoma_app_memory",
            "Linear memory in use (0 without an instance).",
            Some(&Unit::Bytes),
            false,
            |_, r| r.memory.unwrap_or(0) as f64,
        )?;
        per_app(
            &mut enc,
            s,
            "vyoma_app_cpu",
            "CPU time the app's instances used since boot.",
            Some(&Unit::Seconds),
            true,
            |_, r| secs(r.cpu),
        )?;
        per_app(
            &mut enc,
            s,
            "vyoma_app_ipc_sent",
            "IPC messages sent and delivered.",
            None,
            true,
            |_, r| r.ipc.sent as f64,
        )?;
        per_app(
            &mut enc,
            s,
            "vyoma_app_ipc_received",
            "IPC messages taken from the inbox.",
            None,
            true,
            |_, r| r.ipc.received as f64,
        )?;
        per_app(
            &mut enc,
            s,
            "vyoma_app_ipc_refused",
            "IPC sends refused.",
            None,
            true,
            |_, r| r.ipc.refused as f64,
        )?;
        per_app(
            &mut enc,
            s,
            "vyoma_app_ipc_queued",
            "IPC messages waiting in the inbox.",
            None,
            false,
            |_, r| r.ipc.queued as f64,
        )?;
        per_app(
            &mut enc,
            s,
            "vyoma_app_log_dropped_lines",
            "Log lines dropped (oldest first) to keep the log within its buffer.",
            None,
            true,
            |i, _| s.log_dropped.get(i).copied().unwrap_or(0) as f64,
        )?;
        per_http_app(
            &mut enc,
            s,
            "vyoma_app_http_requests",
            "HTTP requests handed to the app.",
            true,
            |h| h.requests,
        )?;
        per_http_app(
            &mut enc,
            s,
            "vyoma_app_http_errors",
            "HTTP requests that ended in a server error (trap, timeout, 5xx).",
            true,
            |h| h.errors,
        )?;
        per_http_app(
            &mut enc,
            s,
            "vyoma_app_http_rejected",
            "HTTP requests refused before reaching the app (too large, overloaded, not running).",
            true,
            |h| h.rejected,
        )?;
        per_http_app(
            &mut enc,
            s,
            "vyoma_app_http_in_flight",
            "HTTP requests running now.",
            false,
            |h| h.in_flight,
        )?;
        {
            let mut m = enc.encode_descriptor("vyoma_apps", "Apps in each state.", None, MetricType::Gauge)?;
            for state in AppState::ALL {
                let n = s.rows.iter().filter(|r| r.state == state).count();
                let name = state.to_string();
                ConstGauge::new(n as i64).encode(m.encode_family(&[("state", name.as_str())])?)?;
            }
        }
        gauge(
            &mut enc,
            "vyoma_ready",
            "1 when start-up is over and every required app runs (or is done).",
            None,
            f64::from(u8::from(s.ready)),
        )?;
        gauge(
            &mut enc,
            "vyoma_instances",
            "Live app instances.",
            None,
            s.instances as f64,
        )?;
        gauge(
            &mut enc,
            "vyoma_instance_capacity",
            "The most app instances this machine can hold.",
            None,
            s.capacity as f64,
        )?;
        gauge(
            &mut enc,
            "vyoma_memory_budget",
            "Memory all apps together may hold.",
            Some(&Unit::Bytes),
            s.budget as f64,
        )?;
        gauge(
            &mut enc,
            "vyoma_memory_budget_used",
            "Memory the apps hold now (linear memory and waiting IPC messages).",
            Some(&Unit::Bytes),
            s.budget_used as f64,
        )?;
        if let Some(r) = s.resident {
            gauge(
                &mut enc,
                "vyoma_supervisor_resident",
                "The supervisor process's resident memory (apps included).",
                Some(&Unit::Bytes),
                r as f64,
            )?;
        }
        gauge(
            &mut enc,
            "vyoma_supervisor_uptime",
            "Time since the management API started.",
            Some(&Unit::Seconds),
            secs(s.uptime),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vyoma_lifecycle::ExitReason;

    #[test]
    fn prometheus_text_snapshot() {
        let row = |name: &str, state, restarts| AppStatus {
            name: name.into(),
            state,
            restarts,
            uptime: (state == AppState::Running).then(|| Duration::from_millis(1500)),
            memory: (state == AppState::Running).then_some(65536),
            cpu: Duration::from_millis(250),
            last_exit: Some(ExitReason::Code(1)),
            ipc: vyoma_ipc_counters(),
            http: None,
        };
        let web = AppStatus {
            http: Some(vyoma_control::HttpStatus {
                requests: 120,
                errors: 2,
                rejected: 5,
                in_flight: 3,
            }),
            ..row("web", AppState::Running, 0)
        };
        let s = Snapshot {
            rows: vec![
                row("echo", AppState::Running, 0),
                row("crasher", AppState::Backoff, 3),
                web,
            ],
            log_dropped: vec![0, 7, 0],
            ready: false,
            instances: 1,
            capacity: 11_000,
            budget: 1 << 30,
            budget_used: 65536,
            resident: None,
            uptime: Duration::from_secs(42),
        };
        let text = s.encode();
        for want in [
            "# HELP vyoma_app_state The app's lifecycle state, as the `state` label (value 1).\n# TYPE vyoma_app_state gauge\nvyoma_app_state{app=\"echo\",state=\"running\"} 1\nvyoma_app_state{app=\"crasher\",state=\"backoff\"} 1\n",
            "vyoma_app_running{app=\"echo\"} 1.0\nvyoma_app_running{app=\"crasher\"} 0.0\n",
            "# TYPE vyoma_app_restarts counter\nvyoma_app_restarts_total{app=\"echo\"} 0.0\nvyoma_app_restarts_total{app=\"crasher\"} 3.0\n",
            "vyoma_app_uptime_seconds{app=\"echo\"} 1.5\n",
            "vyoma_app_memory_bytes{app=\"echo\"} 65536.0\n",
            "vyoma_app_cpu_seconds_total{app=\"crasher\"} 0.25\n",
            "vyoma_app_ipc_sent_total{app=\"echo\"} 4.0\n",
            "vyoma_app_ipc_queued{app=\"echo\"} 1.0\n",
            "vyoma_app_log_dropped_lines_total{app=\"crasher\"} 7.0\n",
            // Only HTTP apps have request counts.
            "# TYPE vyoma_app_http_requests counter\nvyoma_app_http_requests_total{app=\"web\"} 120.0\n# HELP",
            "vyoma_app_http_errors_total{app=\"web\"} 2.0\n",
            "vyoma_app_http_rejected_total{app=\"web\"} 5.0\n",
            "vyoma_app_http_in_flight{app=\"web\"} 3.0\n",
            "vyoma_apps{state=\"running\"} 2\nvyoma_apps{state=\"stopping\"} 0\n",
            "vyoma_ready 0.0\n",
            "vyoma_instance_capacity 11000.0\n",
            "vyoma_memory_budget_bytes 1073741824.0\n",
            "vyoma_supervisor_uptime_seconds 42.0\n",
            "# EOF\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }

    fn vyoma_ipc_counters() -> vyoma_ipc::Counters {
        vyoma_ipc::Counters {
            sent: 4,
            received: 2,
            refused: 0,
            queued: 1,
        }
    }
}
