//! Running instances in lanes (see `pace` for who goes where). The interactive lane is
//! one single-threaded runtime per core (a shard), each on a normal-priority thread of its
//! own; `place` says which shard an app runs on, so apps that message each other hand over
//! on one thread. The batch lane is a runtime of its own whose threads run at the lowest OS
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
use crate::place::Placement;

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

/// The interactive shards and the batch lane's runtime; with neither, every instance
/// runs where its task is polled.
#[derive(Debug)]
pub struct Lanes {
    shards: Vec<Shard>,
    placement: Arc<Mutex<Placement>>,
    batch: Option<tokio::runtime::Runtime>,
}

/// One interactive shard: a single-threaded runtime driven by a thread of its own until
/// `stop` is sent or dropped.
#[derive(Debug)]
struct Shard {
    handle: tokio::runtime::Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Shard {
    fn start(index: usize) -> std::io::Result<Shard> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .global_queue_interval(SHARED_QUEUE_INTERVAL)
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("vyoma-shard-{index}"))
            .spawn(move || {
                // Runs the shard's tasks until the lanes are dropped; dropping the runtime
                // here then drops the instances still on it.
                let _ = rt.block_on(stopped);
            })?;
        Ok(Shard { handle, _stop: stop })
    }
}

/// Where one instance runs in the interactive lane: a shard held while it runs (see
/// [`Lanes::place`]; dropping it frees the place), or wherever its task is polled.
#[derive(Debug)]
pub struct Seat(Option<Held>);

/// A shard's place held for one instance of `app`.
#[derive(Debug)]
struct Held {
    shard: usize,
    app: String,
    placement: Arc<Mutex<Placement>>,
}

impl Seat {
    /// No shard: the instance runs where the task awaiting [`Lanes::run`] is polled. For
    /// instances that serve a task already running there (an HTTP request's handler
    /// beside its connection).
    pub fn where_polled() -> Seat {
        Seat(None)
    }

    /// The shard's index, if it has one.
    pub fn shard(&self) -> Option<usize> {
        self.0.as_ref().map(|h| h.shard)
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            lock(&h.placement).release(&h.app);
        }
    }
}

fn lock(p: &Mutex<Placement>) -> std::sync::MutexGuard<'_, Placement> {
    // Placement is bookkeeping updated in one step; a panic cannot leave it half-done.
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// The OS priority of the batch lane's threads: the lowest (Linux's CFS weight 15 against
/// 1024 for normal threads, so a hog is never starved outright and cannot hold a lock
/// forever, but yields the CPU to any interactive thread that wakes).
const BATCH_NICE: i32 = 19;

impl Lanes {
    /// No shards and no batch lane: what a process running one app needs.
    pub fn single() -> Lanes {
        Lanes {
            shards: Vec::new(),
            placement: Arc::new(Mutex::new(Placement::new(1))),
            batch: None,
        }
    }

    /// `shards` interactive shards (0: instances run where their task is polled) and,
    /// with `batch_threads` above 0, the batch lane on that many low-priority threads.
    pub fn new(shards: usize, batch_threads: usize) -> std::io::Result<Lanes> {
        let batch = if batch_threads == 0 {
            None
        } else {
            Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(batch_threads)
                    .thread_name("vyoma-batch")
                    .on_thread_start(|| {
                        // This thread only (on Linux, nice is per thread).
                        let tid = rustix::thread::gettid();
                        if let Err(e) = rustix::process::setpriority_process(Some(tid), BATCH_NICE) {
                            tracing::warn!(error = %e, "cannot lower the batch lane's thread priority");
                        }
                    })
                    .enable_all()
                    .build()?,
            )
        };
        let shards = (0..shards).map(Shard::start).collect::<std::io::Result<Vec<_>>>()?;
        Ok(Lanes {
            placement: Arc::new(Mutex::new(Placement::new(shards.len()))),
            shards,
            batch,
        })
    }

    /// Places an instance of `app`, which messages `peers`, on an interactive shard (see
    /// `place`): beside its peers, unless that would load one shard too much.
    /// Without shards the instance runs where its task is polled.
    pub fn place<'a>(&self, app: &str, peers: impl IntoIterator<Item = &'a str>) -> Seat {
        if self.shards.is_empty() {
            return Seat::where_polled();
        }
        let shard = lock(&self.placement).place(app, peers);
        Seat(Some(Held {
            shard,
            app: app.to_string(),
            placement: self.placement.clone(),
        }))
    }

    /// Live instances per interactive shard.
    pub fn loads(&self) -> Vec<usize> {
        lock(&self.placement).loads().to_vec()
    }

    /// Runs `fut` (one instance) to its end in the lane `pacer` says (the interactive
    /// one on `seat`'s shard), moving it when that changes. `None` if the runtime under
    /// it shut down (the supervisor is ending). Dropping the returned future drops `fut`
    /// too, wherever it runs.
    ///
    /// An instance with a shard starts where this future is polled and moves to its
    /// shard when it is first woken after a wait: instantiating is then spread over the
    /// supervisor's workers (at boot, every app at once) rather than queued on one
    /// shard's thread behind a wake-up per app, and an app that never wakes (an idle
    /// one) never moves.
    pub async fn run<T: Send + 'static>(
        &self,
        pacer: Arc<Pacer>,
        seat: &Seat,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let mut fut: Boxed<T> = Box::pin(fut);
        let shard = seat.shard().and_then(|i| self.shards.get(i));
        let mut starting = shard.is_some();
        loop {
            let lane = pacer.lane();
            let stint = Stint {
                fut: Some(fut),
                pacer: pacer.clone(),
                lane: self.batch.as_ref().map(|_| lane),
                start: std::mem::take(&mut starting).then_some(Start::Running),
            };
            let there = match (&self.batch, lane, shard) {
                (Some(rt), Lane::Batch, _) => Some(rt.handle()),
                (_, _, Some(s)) if stint.start.is_none() => Some(&s.handle),
                _ => None,
            };
            let Some(there) = there else {
                // Poll it here: no shards, or the instance's start.
                match stint.await {
                    End::Done(t) => return Some(t),
                    End::Moved(f) => {
                        fut = f;
                        continue;
                    }
                }
            };
            let task = there.spawn(stint);
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
/// ends, belongs in the other lane, or (at its start) is woken after its first wait.
struct Stint<T> {
    fut: Option<Boxed<T>>,
    pacer: Arc<Pacer>,
    lane: Option<Lane>,
    /// The instance's start, before it goes to its shard: the stint ends when it is
    /// woken after its first wait.
    start: Option<Start>,
}

/// Where an instance's start is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Not waited yet.
    Running,
    /// Waiting: the next poll (its wake) moves it, unpolled, to its shard.
    Waited,
}

impl<T> Future for Stint<T> {
    type Output = End<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<End<T>> {
        let this = &mut *self;
        if this.start == Some(Start::Waited) {
            // Woken: its shard polls it next (its wakers are registered anew there).
            let fut = this.fut.take().expect("a stint is not polled after it ended");
            return Poll::Ready(End::Moved(fut));
        }
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
            Poll::Pending if self.start.is_some() => {
                self.start = Some(Start::Waited);
                Poll::Pending
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
        let lanes = Lanes::new(0, 1).unwrap();
        let seat = lanes.place("app", []);
        let cpu = Arc::new(AtomicU64::new(0));
        let pacer = Pacer::new(policy(), cpu.clone());
        let seen = Arc::new(Mutex::new(Vec::new()));
        // Busy for 100 ms at a time (so it is batch), three times.
        let n = lanes
            .run(
                pacer.clone(),
                &seat,
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
                &seat,
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
        let lanes = Lanes::new(0, 1).unwrap();
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
        let lanes = Lanes::new(0, 1).unwrap();
        let seat = lanes.place("app", []);
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
        let run = lanes.run(pacer.clone(), &seat, async move {
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
        let seat = lanes.place("app", []);
        let pacer = Pacer::new(policy(), Arc::new(AtomicU64::new(0)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let n = lanes
            .run(
                pacer.clone(),
                &seat,
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

    fn this_thread() -> String {
        std::thread::current().name().unwrap_or("").to_string()
    }

    /// The name of the thread an instance on `lanes` with `seat` runs on after its first
    /// wait; it starts where `run` is polled.
    async fn thread_of(lanes: &Lanes, seat: &Seat) -> String {
        let pacer = Pacer::new(policy(), Arc::new(AtomicU64::new(0)));
        let caller = this_thread();
        let (start, after) = lanes
            .run(pacer, seat, async {
                let start = this_thread();
                tokio::task::yield_now().await;
                (start, this_thread())
            })
            .await
            .expect("the shard is running");
        assert_eq!(start, caller, "an instance starts where `run` is polled");
        after
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn peers_run_on_one_shard_thread_and_others_on_the_next() {
        let lanes = Lanes::new(2, 0).unwrap();
        let ping = lanes.place("ping", ["pong"]);
        let pong = lanes.place("pong", ["ping"]);
        let other = lanes.place("other", []);
        assert_eq!(ping.shard(), pong.shard());
        assert_ne!(ping.shard(), other.shard());
        let (a, b, c) = (
            thread_of(&lanes, &ping).await,
            thread_of(&lanes, &pong).await,
            thread_of(&lanes, &other).await,
        );
        assert_eq!(a, format!("vyoma-shard-{}", ping.shard().unwrap()));
        assert_eq!(a, b);
        assert_eq!(c, format!("vyoma-shard-{}", other.shard().unwrap()));
        assert_eq!(lanes.loads(), vec![2, 1]);
        drop((ping, pong));
        assert_eq!(lanes.loads(), vec![0, 1], "a dropped seat frees its place");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_peers_hand_over_on_their_shard_without_leaving_it() {
        let lanes = Lanes::new(2, 0).unwrap();
        let (a, b) = (lanes.place("a", ["b"]), lanes.place("b", ["a"]));
        let to_b = Arc::new(tokio::sync::Notify::new());
        let to_a = Arc::new(tokio::sync::Notify::new());
        let threads = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
        let side = |me: Arc<tokio::sync::Notify>, other: Arc<tokio::sync::Notify>, first: bool| {
            let threads = threads.clone();
            async move {
                // The first wait: from here on, on the shard.
                tokio::task::yield_now().await;
                for _ in 0..1000 {
                    if first {
                        other.notify_one();
                        me.notified().await;
                    } else {
                        me.notified().await;
                        other.notify_one();
                    }
                    threads.lock().unwrap().insert(this_thread());
                }
            }
        };
        let pa = Pacer::new(policy(), Arc::new(AtomicU64::new(0)));
        let pb = Pacer::new(policy(), Arc::new(AtomicU64::new(0)));
        let (ra, rb) = tokio::join!(
            lanes.run(pa, &a, side(to_a.clone(), to_b.clone(), true)),
            lanes.run(pb, &b, side(to_b, to_a, false)),
        );
        assert_eq!((ra, rb), (Some(()), Some(())));
        let threads = threads.lock().unwrap();
        assert_eq!(
            threads.iter().cloned().collect::<Vec<_>>(),
            vec![format!("vyoma-shard-{}", a.shard().unwrap())],
            "every turn of both ran on their one shard"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_instance_on_a_shard_goes_to_the_batch_lane_and_comes_back_to_its_shard() {
        let lanes = Lanes::new(2, 1).unwrap();
        let seat = lanes.place("hog", []);
        let pacer = Pacer::new(policy(), Arc::new(AtomicU64::new(0)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let busy = worker(
            pacer.clone(),
            Duration::from_millis(100),
            Duration::from_millis(1),
            3,
            seen.clone(),
        );
        assert_eq!(lanes.run(pacer.clone(), &seat, busy).await, Some(3));
        assert!(seen.lock().unwrap().iter().any(|t| t == "vyoma-batch"), "{seen:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        seen.lock().unwrap().clear();
        let quiet = worker(pacer.clone(), Duration::ZERO, Duration::from_millis(5), 3, seen.clone());
        assert_eq!(lanes.run(pacer.clone(), &seat, quiet).await, Some(3));
        assert_eq!(pacer.lane(), Lane::Interactive);
        let last = seen.lock().unwrap().last().cloned();
        assert_eq!(last, Some(format!("vyoma-shard-{}", seat.shard().unwrap())));
    }
}
