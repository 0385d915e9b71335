//! Running instances in two lanes (see `pace` for who goes where). The interactive lane
//! is whatever runtime polls the instance's task (the supervisor's, on normal-priority
//! threads); the batch lane is a runtime of its own whose threads run at the lowest OS
//! priority (nice 19). A woken interactive app's thread therefore preempts a hog's thread
//! at once, in the kernel, instead of waiting for the hog's slice to end.
//!
//! An instance moves between lanes only between polls, and only while it is not running:
//! [`Lanes::run`] hands its future from one runtime to the other and polls it once there,
//! so the new task's waker is the one registered.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::pace::{Lane, Pace, PacePolicy};

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// `poll_start` while the instance is not being polled.
const IDLE: u64 = u64::MAX;

/// One instance's scheduling state, shared by its task (which times each poll) and its
/// store's preemption callback (which asks whether to yield).
#[derive(Debug)]
pub struct Pacer {
    pace: Mutex<Pace>,
    base: Instant,
    /// Nanoseconds after `base` at which the current poll began, or [`IDLE`].
    poll_start: AtomicU64,
    /// Set by the preemption callback when it yields, cleared when the poll ends.
    yielded: AtomicBool,
    cpu: Arc<AtomicU64>,
}

impl Pacer {
    /// A pacer for a new instance, adding the time spent polling it to `cpu` (ns).
    pub fn new(policy: PacePolicy, cpu: Arc<AtomicU64>) -> Arc<Pacer> {
        Arc::new(Pacer {
            pace: Mutex::new(Pace::new(policy)),
            base: Instant::now(),
            poll_start: AtomicU64::new(IDLE),
            yielded: AtomicBool::new(false),
            cpu,
        })
    }

    /// The lane the instance runs in now.
    pub fn lane(&self) -> Lane {
        self.lock().lane()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pace> {
        // Only the instance's own poll and its callback take it, never at once; a panic
        // cannot leave a `Pace` half-updated in a way that matters.
        self.pace.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn since_base(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.base)
    }

    /// At a preemption tick (the store's epoch callback): whether the instance yields now.
    /// Outside [`Lanes::run`] (no poll timing) it always yields, as plain epoch
    /// preemption would.
    pub(crate) fn at_tick(&self) -> bool {
        let start = self.poll_start.load(Ordering::Relaxed);
        let yields = start == IDLE || {
            let ran = self
                .since_base(Instant::now())
                .saturating_sub(Duration::from_nanos(start));
            self.lock().at_tick(ran)
        };
        if yields {
            self.yielded.store(true, Ordering::Relaxed);
        }
        yields
    }

    fn begin_poll(&self) -> Instant {
        let now = Instant::now();
        let ns = u64::try_from(self.since_base(now).as_nanos()).unwrap_or(IDLE - 1);
        self.poll_start.store(ns, Ordering::Relaxed);
        now
    }

    /// Ends a poll that began at `started`; `pending` if the instance has not ended.
    /// Returns the lane it runs in next.
    fn end_poll(&self, started: Instant, pending: bool) -> Lane {
        let now = Instant::now();
        let spent = now.saturating_duration_since(started);
        self.cpu
            .fetch_add(u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.poll_start.store(IDLE, Ordering::Relaxed);
        let yielded = self.yielded.swap(false, Ordering::Relaxed);
        self.lock().after_poll(self.since_base(now), spent, pending && !yielded)
    }
}

/// How many tasks a worker runs between looks at the runtime's shared queue. Tasks woken
/// from outside the workers wait there: an app woken by input from a device's thread, a
/// desktop window or the operator. tokio's default lets a worker run up to its tuned
/// interval of its own queue first, so a key could wait behind a whole tick's worth of
/// apps' frame work (p99 up to 2 ms with 16 full-screen animations; every other task: 0.2
/// to 0.6 ms, docs/PERFORMANCE.md, the display). Looking is one atomic load while the
/// shared queue is empty: IPC throughput does not move.
pub const SHARED_QUEUE_INTERVAL: u32 = 2;

/// The multi-threaded runtime the supervisor and its apps run on (a worker per core; the
/// batch lane is [`Lanes`]'s own).
pub fn supervisor_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .global_queue_interval(SHARED_QUEUE_INTERVAL)
        .enable_all()
        .build()
}

/// The batch lane's runtime, or none (every instance runs where its task is polled).
#[derive(Debug)]
pub struct Lanes {
    batch: Option<tokio::runtime::Runtime>,
}

/// The OS priority of the batch lane's threads: the lowest (Linux's CFS weight 15 against
/// 1024 for normal threads, so a hog is never starved outright and cannot hold a lock
/// forever, but yields the CPU to any interactive thread that wakes).
const BATCH_NICE: i32 = 19;

impl Lanes {
    /// No batch lane: what a process running one app needs.
    pub fn single() -> Lanes {
        Lanes { batch: None }
    }

    /// Both lanes; the batch lane gets `threads` low-priority threads.
    pub fn new(threads: usize) -> std::io::Result<Lanes> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("vyoma-batch")
            .on_thread_start(|| {
                // This thread only (on Linux, nice is per thread).
                let tid = rustix::thread::gettid();
                if let Err(e) = rustix::process::setpriority_process(Some(tid), BATCH_NICE) {
                    tracing::warn!(error = %e, "cannot lower the batch lane's thread priority");
                }
            })
            .enable_all()
            .build()?;
        Ok(Lanes { batch: Some(rt) })
    }

    /// Runs `fut` (one instance) to its end in the lane `pacer` says, moving it when that
    /// changes. `None` if the batch lane shut down under it (the supervisor is ending).
    /// Dropping the returned future drops `fut` too, wherever it runs.
    pub async fn run<T: Send + 'static>(
        &self,
        pacer: Arc<Pacer>,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let mut fut: Boxed<T> = Box::pin(fut);
        loop {
            let lane = pacer.lane();
            let batch = match (&self.batch, lane) {
                (Some(rt), Lane::Batch) => rt.handle(),
                _ => {
                    // Interactive, or no batch lane: poll it here.
                    let stint = Stint {
                        fut: Some(fut),
                        pacer: pacer.clone(),
                        lane: self.batch.as_ref().map(|_| lane),
                    };
                    match stint.await {
                        End::Done(t) => return Some(t),
                        End::Moved(f) => {
                            fut = f;
                            continue;
                        }
                    }
                }
            };
            let task = batch.spawn(Stint {
                fut: Some(fut),
                pacer: pacer.clone(),
                lane: Some(Lane::Batch),
            });
            let _abort = AbortOnDrop(task.abort_handle());
            match task.await {
                Ok(End::Done(t)) => return Some(t),
                Ok(End::Moved(f)) => fut = f,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => return None,
            }
        }
    }
}

impl Drop for Lanes {
    fn drop(&mut self) {
        // May be dropped inside an async context, where a blocking shutdown panics.
        if let Some(rt) = self.batch.take() {
            rt.shutdown_background();
        }
    }
}

/// How a stint in one lane ended.
enum End<T> {
    Done(T),
    /// The instance is to run in the other lane; here is its future.
    Moved(Boxed<T>),
}

/// Polls an instance in one lane (`None`: there is only one), timing each poll, until it
/// ends or belongs in the other lane.
struct Stint<T> {
    fut: Option<Boxed<T>>,
    pacer: Arc<Pacer>,
    lane: Option<Lane>,
}

impl<T> Future for Stint<T> {
    type Output = End<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<End<T>> {
        let this = &mut *self;
        let Some(fut) = this.fut.as_mut() else {
            panic!("a stint was polled after it ended");
        };
        let started = this.pacer.begin_poll();
        let r = fut.as_mut().poll(cx);
        let next = this.pacer.end_poll(started, r.is_pending());
        match r {
            Poll::Ready(t) => Poll::Ready(End::Done(t)),
            Poll::Pending if self.lane.is_some_and(|l| l != next) => {
                let fut = self.fut.take().expect("checked above");
                Poll::Ready(End::Moved(fut))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Aborts a task when dropped: the instance's future lives in the batch lane's task, so
/// killing the instance (dropping [`Lanes::run`]'s future) must end that task too.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PacePolicy {
        PacePolicy::for_slice(Duration::from_millis(10))
    }

    /// Spins (in host code, with the preemption callback called the way Wasmtime would)
    /// for `busy`, then waits `idle` on a timer, `times` times; records the thread names it
    /// ran on.
    async fn worker(
        pacer: Arc<Pacer>,
        busy: Duration,
        idle: Duration,
        times: u32,
        seen: Arc<Mutex<Vec<String>>>,
    ) -> u32 {
        for _ in 0..times {
            let end = Instant::now() + busy;
            let mut next_tick = Instant::now() + Duration::from_millis(10);
            while Instant::now() < end {
                if Instant::now() >= next_tick {
                    next_tick += Duration::from_millis(10);
                    if pacer.at_tick() {
                        tokio::task::yield_now().await;
                    }
                }
                std::hint::spin_loop();
            }
            let name = std::thread::current().name().unwrap_or("").to_string();
            seen.lock().unwrap().push(name);
            tokio::time::sleep(idle).await;
        }
        times
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_instance_moves_to_the_batch_lane_and_back_when_it_quiets_down() {
        let lanes = Lanes::new(1).unwrap();
        let cpu = Arc::new(AtomicU64::new(0));
        let pacer = Pacer::new(policy(), cpu.clone());
        let seen = Arc::new(Mutex::new(Vec::new()));
        // Busy for 100 ms at a time (so it is batch), three times.
        let n = lanes
            .run(
                pacer.clone(),
                worker(
                    pacer.clone(),
                    Duration::from_millis(100),
                    Duration::from_millis(1),
                    3,
                    seen.clone(),
                ),
            )
            .await;
        assert_eq!(n, Some(3));
        assert_eq!(pacer.lane(), Lane::Batch);
        assert!(seen.lock().unwrap().iter().any(|t| t == "vyoma-batch"), "{seen:?}");
        // Its polls are timed: most of the 300 ms it spun (the rest it spent queued after
        // yields, or moving between lanes).
        let cpu = cpu.load(Ordering::Relaxed);
        assert!(cpu >= 150_000_000, "{cpu} ns");
        // Then it goes quiet (its share decays) and wakes briefly: interactive again, and
        // polled where `run` is awaited.
        tokio::time::sleep(Duration::from_millis(500)).await;
        seen.lock().unwrap().clear();
        let n = lanes
            .run(
                pacer.clone(),
                worker(pacer.clone(), Duration::ZERO, Duration::from_millis(5), 3, seen.clone()),
            )
            .await;
        assert_eq!(n, Some(3));
        assert_eq!(pacer.lane(), Lane::Interactive);
        let seen = seen.lock().unwrap();
        assert_ne!(seen.last().map(String::as_str), Some("vyoma-batch"), "{seen:?}");
    }

    #[test]
    fn the_batch_lane_runs_at_the_lowest_priority() {
        let mine = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let lanes = Lanes::new(1).unwrap();
        let nice = lanes.batch.as_ref().unwrap().block_on(async {
            tokio::spawn(async { rustix::process::getpriority_process(Some(rustix::thread::gettid())) })
                .await
                .unwrap()
        });
        assert_eq!(nice.unwrap(), BATCH_NICE);
        // The thread that made the lane keeps its own.
        assert_eq!(
            rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap(),
            mine
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killing_an_instance_in_the_batch_lane_ends_it_there() {
        let lanes = Lanes::new(1).unwrap();
        let pacer = Pacer::new(policy(), Arc::new(AtomicU64::new(0)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let dropped = Arc::new(AtomicBool::new(false));
        struct Flag(Arc<AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let flag = Flag(dropped.clone());
        let p = pacer.clone();
        let s = seen.clone();
        let run = lanes.run(pacer.clone(), async move {
            let _flag = flag;
            worker(p, Duration::from_secs(3600), Duration::ZERO, 1, s).await
        });
        // Let it become batch, then kill it.
        let killed = tokio::time::timeout(Duration::from_millis(200), run).await;
        assert!(killed.is_err());
        assert_eq!(pacer.lane(), Lane::Batch);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !dropped.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "the instance kept running in the batch lane");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn with_one_lane_nothing_moves() {
        let lanes = Lanes::single();
        let pacer = Pacer::new(policy(), Arc::new(AtomicU64::new(0)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let n = lanes
            .run(
                pacer.clone(),
                worker(
                    pacer.clone(),
                    Duration::from_millis(50),
                    Duration::ZERO,
                    1,
                    seen.clone(),
                ),
            )
            .await;
        assert_eq!(n, Some(1));
        assert!(seen.lock().unwrap().iter().all(|t| t != "vyoma-batch"));
    }
}
