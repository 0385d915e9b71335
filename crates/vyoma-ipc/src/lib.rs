//! The IPC broker of VyomaOS: every app's inbox, the grant checks between apps, and
//! request/reply.
//!
//! What it is for: carrying messages between apps addressed by name. The broker owns one
//! bounded [`Mailbox`] per app (count and bytes), created at boot and kept for the life of
//! the supervisor, so messages waiting for an app survive its restarts. An app instance
//! talks to the broker through its [`Endpoint`], which stamps every message with the app's
//! own name: a sender cannot forge who it is. A message is delivered only if the sender's
//! `send` grant names the receiver and the receiver's `accept` grant names the sender;
//! the operator console ([`CONSOLE`]) may message any app, and apps may message it if
//! their `send` grant says so. One queue per receiver keeps each sender's messages in
//! order; no sender may hold more than its fair share of an inbox (half of it for a lone
//! sender, a third with two senders waiting, and so on), so one flooding app never locks
//! out the others.
//!
//! Delivery is at most once: a message is taken out of the inbox when `recv` (or
//! `try-recv`) returns it to an instance, and an instance that ends before handling it
//! loses it. Messages still in the inbox survive the receiver's restarts. Each
//! [`Broker::endpoint`] for an app supersedes the previous one: an instance being replaced
//! (which may still run for up to one preemption tick after it was aborted) can no longer
//! take messages meant for its successor.
//!
//! An update hands the inbox over without losing a message ([`Broker::hand_over`]): the
//! running instance's endpoint is superseded (it takes no more), and the hand-over waits
//! until that instance is done with the message it took, which is when it asks for the
//! next one. Every other message waits in the inbox, in order, for the new instance. A
//! message still held at the hand-over's deadline is reported ([`Settled::Holding`]) and,
//! if it was a request, its sender is told at once ([`Handover::abandon`]).
//!
//! Messages waiting in inboxes are host memory the apps caused: each is charged to a
//! [`HostMemory`] account (the supervisor's shared memory budget) while it waits, and a
//! send the account cannot cover is refused as `full`.
//!
//! What it is not for: the WIT bindings and the Wasmtime side (`vyoma-runtime`), parsing
//! grants out of manifests (`vyoma-manifest`), or printing console messages
//! (`vyoma-supervisor`). Time only enters as `tokio::time` timeouts, so tests run on a
//! paused clock.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};

/// The hasher of the maps touched per message (a sender's waiting counts, a sender's
/// route cache): seeded per process, several times faster than the default SipHash on
/// short app names.
type Fast = foldhash::fast::RandomState;

/// The operator console's address.
pub const CONSOLE: &str = "console";

/// How many console messages may wait for a reply at once; older ones stop being
/// answerable (their replies are refused) so an app that never replies cannot grow the
/// table without bound.
const CONSOLE_PENDING: usize = 1024;
/// How many ended requests are remembered, so late answers to them are told apart from
/// answers to requests that never were.
const GONE_TOKENS: usize = 1024;
/// Route look-ups an endpoint remembers (emptied when any app's grants change, see
/// [`Broker::reconfigure`]); the cache is emptied when full so a guest probing random
/// names stays bounded.
const ROUTE_CACHE: usize = 256;

/// Which apps a grant covers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Peers {
    /// Every app (`*`).
    Any,
    /// Exactly these apps; empty means none.
    Only(BTreeSet<String>),
    /// No app. The default: IPC is deny-by-default like every capability.
    #[default]
    None,
}

impl Peers {
    /// Whether `name` is covered.
    pub fn allows(&self, name: &str) -> bool {
        match self {
            Peers::Any => true,
            Peers::Only(s) => s.contains(name),
            Peers::None => false,
        }
    }
}

/// An app's IPC grants, from its manifest's `[capabilities.ipc]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grants {
    /// Apps this app may send to (and make requests of); may include [`CONSOLE`].
    pub send: Peers,
    /// Apps this app accepts messages from. The console is always accepted.
    pub accept: Peers,
}

/// The bounds of one inbox, from the receiver's manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxLimits {
    /// Most messages waiting at once.
    pub messages: usize,
    /// Most bytes of message bodies waiting at once.
    pub bytes: usize,
    /// Largest single message body.
    pub message: usize,
}

impl Default for InboxLimits {
    fn default() -> Self {
        InboxLimits {
            messages: 256,
            bytes: 1 << 20,
            message: 64 << 10,
        }
    }
}

/// One app as the broker knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    /// Its name (address).
    pub name: String,
    /// What it may send to and accept from.
    pub grants: Grants,
    /// Its inbox bounds.
    pub limits: InboxLimits,
}

/// A message in an inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Who sent it, stamped by the broker.
    pub sender: Arc<str>,
    /// The contents.
    pub body: Vec<u8>,
    /// Present when the sender waits for an answer; pass to [`Endpoint::reply`].
    pub reply_token: Option<u64>,
}

/// Why a message was not delivered. Mirrors the WIT `error` variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpcError {
    /// No app of this name exists.
    #[error("no app named `{0}` on this instance")]
    UnknownApp(String),
    /// A grant is missing; the text names it and says how to add it.
    #[error("not permitted: {0}")]
    NotPermitted(String),
    /// The receiver's inbox has no room.
    #[error("the receiver's inbox is full")]
    Full,
    /// No room came free, or no reply arrived, in time.
    #[error("timed out")]
    Timeout,
    /// The body is larger than the receiver accepts.
    #[error("message of {size} bytes is larger than the receiver's limit of {limit} bytes")]
    TooLarge {
        /// The body's size.
        size: usize,
        /// The receiver's limit.
        limit: usize,
    },
}

/// One app's IPC counters, for `ps` and `inspect`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    /// Messages (and replies) this app sent that were delivered.
    pub sent: u64,
    /// Messages this app took out of its inbox.
    pub received: u64,
    /// Sends by this app that were refused: not permitted, unknown app, full, too large.
    pub refused: u64,
    /// Messages waiting in its inbox now.
    pub queued: u64,
}

/// One inbox, owned by the broker.
#[derive(Debug)]
struct Mailbox {
    /// Where waiting messages' bytes are charged.
    memory: Arc<dyn HostMemory>,
    name: Arc<str>,
    /// Changed only by [`Broker::reconfigure`] (an update).
    grants: std::sync::RwLock<Grants>,
    limits: std::sync::RwLock<InboxLimits>,
    queue: Mutex<Queue>,
    /// Bumped by each new endpoint of this app; only the newest may take messages.
    generation: AtomicU64,
    /// Signalled when a message is queued.
    readable: Notify,
    /// Signalled when a message is taken (room may have come free), if a sender waits.
    writable: Notify,
    /// Senders waiting for room: a `recv` skips `writable` (a lock) when there are none.
    /// Each counts itself before it last looks at the queue, so a taker that frees room
    /// after that look sees it (the queue's lock orders the two).
    writers_waiting: AtomicUsize,
    /// Signalled when an instance comes back for its next message, if a hand-over waits.
    done_with: Notify,
    /// Hand-overs waiting on `done_with`, counted the same way as `writers_waiting`.
    handovers_waiting: AtomicUsize,
    sent: AtomicU64,
    received: AtomicU64,
    refused: AtomicU64,
}

/// Counts a waiter on one of a mailbox's notifications for as long as it lives (so a
/// timed-out or cancelled wait uncounts itself).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn on(counter: &'a AtomicUsize) -> Waiting<'a> {
        counter.fetch_add(1, Ordering::SeqCst);
        Waiting(counter)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Where the bytes of waiting messages are charged: the memory budget all apps share.
pub trait HostMemory: Send + Sync + std::fmt::Debug {
    /// Takes `bytes` from the account, or says there is no room.
    fn try_charge(&self, bytes: u64) -> bool;
    /// Gives back `bytes` taken earlier.
    fn release(&self, bytes: u64);
}

/// An account with no limit (tests, and a lone app in its own process).
#[derive(Debug, Clone, Copy, Default)]
pub struct Unlimited;

impl HostMemory for Unlimited {
    fn try_charge(&self, _bytes: u64) -> bool {
        true
    }

    fn release(&self, _bytes: u64) {}
}

#[derive(Debug, Default)]
struct Queue {
    messages: VecDeque<Message>,
    bytes: usize,
    /// What each sender has waiting: (messages, bytes).
    by_sender: HashMap<Arc<str>, (usize, usize), Fast>,
    /// The messages an instance took (one, or a batch) and has not finished with: it is
    /// done with them when it asks for more (any receive call). All of one generation.
    holding: Vec<Held>,
    /// The app was removed ([`Broker::remove`]): nothing is queued any more.
    closed: bool,
}

/// A sender's standing in one inbox: what it has waiting, and its fair share.
struct Standing {
    held: usize,
    held_bytes: usize,
    share: usize,
    share_bytes: usize,
}

impl Standing {
    /// One more message of `len` bytes queued.
    fn add(&mut self, len: usize) {
        self.held += 1;
        self.held_bytes += len;
    }
}

impl Queue {
    /// `sender`'s standing: its share counts it among the senders with messages waiting.
    fn standing(&self, limits: &InboxLimits, sender: &Arc<str>) -> Standing {
        let (held, held_bytes) = self.by_sender.get(sender).copied().unwrap_or_default();
        let senders = self.by_sender.len() + usize::from(held == 0);
        let (share, share_bytes) = Mailbox::fair_share(limits, senders);
        Standing {
            held,
            held_bytes,
            share,
            share_bytes,
        }
    }

    /// Whether one more message of `len` bytes from a sender at `at` fits: the app is not
    /// removed, the inbox has room, and the sender stays within its share.
    fn admits(&self, limits: &InboxLimits, at: &Standing, len: usize) -> bool {
        !self.closed
            && self.messages.len() < limits.messages
            && self.bytes + len <= limits.bytes
            && at.held < at.share
            && at.held_bytes + len <= at.share_bytes
    }
}

/// A message an instance took, as a hand-over sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The endpoint that took it.
    generation: u64,
    /// Who sent it.
    pub sender: Arc<str>,
    /// Its reply token, if its sender waits for an answer.
    pub reply_token: Option<u64>,
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        let bytes = self.queue().bytes;
        self.memory.release(bytes as u64);
    }
}

impl Mailbox {
    fn new(spec: AppSpec, memory: Arc<dyn HostMemory>) -> Mailbox {
        Mailbox {
            memory,
            name: spec.name.into(),
            grants: std::sync::RwLock::new(spec.grants),
            limits: std::sync::RwLock::new(spec.limits),
            queue: Mutex::new(Queue::default()),
            generation: AtomicU64::new(0),
            readable: Notify::new(),
            writable: Notify::new(),
            writers_waiting: AtomicUsize::new(0),
            done_with: Notify::new(),
            handovers_waiting: AtomicUsize::new(0),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        // Every critical section is a push or pop that cannot panic halfway.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn limits(&self) -> InboxLimits {
        *self.limits.read().unwrap_or_else(|p| p.into_inner())
    }

    fn grants(&self) -> std::sync::RwLockReadGuard<'_, Grants> {
        self.grants.read().unwrap_or_else(|p| p.into_inner())
    }

    fn check_size(&self, size: usize) -> Result<(), IpcError> {
        let limit = self.limits().message;
        if size > limit {
            return Err(IpcError::TooLarge { size, limit });
        }
        Ok(())
    }

    /// The most one sender may have waiting, in messages and bytes, when `senders` senders
    /// (counting it) have messages waiting: an equal share with room kept for one more
    /// sender (half the inbox for a lone sender, a third for two, ...), so a newcomer finds
    /// room; at least one message of the largest accepted size.
    fn fair_share(limits: &InboxLimits, senders: usize) -> (usize, usize) {
        let n = senders + 1;
        (
            (limits.messages / n).max(1),
            (limits.bytes / n).max(limits.message.min(limits.bytes)),
        )
    }

    /// Queues `m` if there is room for it and its sender is within its fair share; gives
    /// it back otherwise.
    fn push(&self, m: Message) -> Result<(), Message> {
        let limits = self.limits();
        let mut q = self.queue();
        let len = m.body.len();
        let mut at = q.standing(&limits, &m.sender);
        if !q.admits(&limits, &at, len) || !self.memory.try_charge(len as u64) {
            return Err(m);
        }
        at.add(len);
        q.bytes += len;
        q.by_sender.insert(m.sender.clone(), (at.held, at.held_bytes));
        q.messages.push_back(m);
        drop(q);
        self.readable.notify_one();
        Ok(())
    }

    /// Queues `bodies` from `sender`, in order and under one lock, until one does not fit
    /// (as for [`Mailbox::push`]); returns how many were queued. Bodies must be within the
    /// message size limit already.
    fn push_many(&self, sender: &Arc<str>, bodies: impl IntoIterator<Item = Vec<u8>>) -> usize {
        let limits = self.limits();
        let mut q = self.queue();
        let mut at = q.standing(&limits, sender);
        let mut queued = 0;
        for body in bodies {
            let len = body.len();
            if !q.admits(&limits, &at, len) || !self.memory.try_charge(len as u64) {
                break;
            }
            at.add(len);
            q.bytes += len;
            q.messages.push_back(Message {
                sender: sender.clone(),
                body,
                reply_token: None,
            });
            queued += 1;
        }
        if queued > 0 {
            q.by_sender.insert(sender.clone(), (at.held, at.held_bytes));
            drop(q);
            self.readable.notify_one();
        }
        queued
    }

    /// Queues `m`, waiting for room until `deadline`.
    async fn push_until(&self, mut m: Message, deadline: tokio::time::Instant) -> Result<(), IpcError> {
        let _waiting = Waiting::on(&self.writers_waiting);
        loop {
            let room = self.writable.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.push(m) {
                Ok(()) => return Ok(()),
                Err(_) if self.is_closed() => return Err(self.gone()),
                Err(back) => m = back,
            }
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                return Err(IpcError::Timeout);
            }
        }
    }

    fn is_closed(&self) -> bool {
        self.queue().closed
    }

    /// Why a message to this removed app was refused.
    fn gone(&self) -> IpcError {
        IpcError::UnknownApp(self.name.to_string())
    }

    /// Why `push` gave a message back: the app is gone, or its inbox is full.
    fn refusal(&self) -> IpcError {
        if self.is_closed() { self.gone() } else { IpcError::Full }
    }

    /// Takes the oldest message for the endpoint of `generation` (`None`: the console's),
    /// which is done with what it took before; nothing once it is superseded.
    fn pop_as(&self, generation: Option<u64>) -> Option<Message> {
        let mut one = None;
        self.take_as(generation, 1, |m| one = Some(m));
        one
    }

    /// Takes up to `max` of the oldest messages for the endpoint of `generation`, as
    /// [`Mailbox::pop_as`] takes one, under one lock; gives each to `out` and returns how
    /// many.
    fn take_as(&self, generation: Option<u64>, max: usize, mut out: impl FnMut(Message)) -> usize {
        let mut q = self.queue();
        if let Some(g) = generation {
            if q.holding.first().is_some_and(|h| h.generation == g) {
                q.holding.clear();
                if self.handovers_waiting.load(Ordering::SeqCst) > 0 {
                    self.done_with.notify_waiters();
                }
            }
            // Checked under the queue lock, which superseding takes too: no message is
            // taken by an endpoint after it was superseded.
            if self.generation.load(Ordering::Acquire) != g {
                return 0;
            }
        }
        let (mut taken, mut bytes) = (0, 0);
        while taken < max {
            let Some(m) = q.messages.pop_front() else { break };
            if let Some(generation) = generation {
                if taken == 0 {
                    q.holding.clear();
                }
                q.holding.push(Held {
                    generation,
                    sender: m.sender.clone(),
                    reply_token: m.reply_token,
                });
            }
            let len = m.body.len();
            bytes += len;
            if let Some(held) = q.by_sender.get_mut(&m.sender) {
                held.0 -= 1;
                held.1 -= len;
                if held.0 == 0 {
                    q.by_sender.remove(&m.sender);
                }
            }
            out(m);
            taken += 1;
        }
        if taken == 0 {
            return 0;
        }
        q.bytes -= bytes;
        self.memory.release(bytes as u64);
        drop(q);
        self.received.fetch_add(taken as u64, Ordering::Relaxed);
        if self.writers_waiting.load(Ordering::SeqCst) > 0 {
            self.writable.notify_waiters();
        }
        taken
    }

    /// Resolves once a message is waiting (without taking it).
    async fn readable(&self) {
        loop {
            let n = self.readable.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if !self.queue().messages.is_empty() {
                // Pass the wake-up on: a `recv` may be waiting beside this pollable.
                self.readable.notify_one();
                return;
            }
            n.await;
        }
    }

    /// Supersedes the newest endpoint; returns the new generation. With `forget_held`,
    /// what an earlier instance held is forgotten (a new instance starts: the old one is
    /// gone or going).
    fn supersede(&self, forget_held: bool) -> u64 {
        let mut q = self.queue();
        if forget_held {
            q.holding.clear();
        }
        self.generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    fn counters(&self) -> Counters {
        Counters {
            sent: self.sent.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            queued: self.queue().messages.len() as u64,
        }
    }
}

/// Where the answer to a request goes.
#[derive(Debug)]
enum ReplyTo {
    /// A `request` call waiting for it.
    Waiter(oneshot::Sender<Vec<u8>>),
    /// The operator console's inbox.
    Console,
}

#[derive(Debug)]
struct Pending {
    /// The only app that may answer.
    replier: Arc<str>,
    /// Largest answer accepted.
    limit: usize,
    to: ReplyTo,
}

#[derive(Debug, Default)]
struct PendingTable {
    by_token: HashMap<u64, Pending>,
    /// Console tokens oldest first, to bound them.
    console: VecDeque<u64>,
    /// Requests that ended unanswered (the requester timed out or was killed), with the
    /// app that was to answer, so its late answer is told so and not counted against it.
    gone: HashMap<u64, Arc<str>>,
    /// `gone` tokens oldest first, to bound them.
    gone_order: VecDeque<u64>,
}

/// The broker: all inboxes, and the requests waiting for answers.
#[derive(Debug)]
pub struct Broker {
    /// Every app's inbox by name; changes only when an app is added or removed.
    boxes: std::sync::RwLock<HashMap<Arc<str>, Arc<Mailbox>>>,
    console: Arc<Mailbox>,
    /// Where waiting messages are charged (inboxes added later are charged there too).
    memory: Arc<dyn HostMemory>,
    next_token: AtomicU64,
    pending: Mutex<PendingTable>,
    /// Bumped when any app's grants change: endpoints forget the routes they remember.
    grants_epoch: AtomicU64,
}

impl Broker {
    /// A broker for `apps`, plus the console's own inbox bounded by `console_limits`;
    /// waiting messages are not charged anywhere (see [`Broker::charging`]).
    pub fn new(apps: impl IntoIterator<Item = AppSpec>, console_limits: InboxLimits) -> Arc<Broker> {
        Broker::charging(apps, console_limits, Arc::new(Unlimited))
    }

    /// Like [`Broker::new`], charging the bytes of every waiting message to `memory`.
    pub fn charging(
        apps: impl IntoIterator<Item = AppSpec>,
        console_limits: InboxLimits,
        memory: Arc<dyn HostMemory>,
    ) -> Arc<Broker> {
        let console = Arc::new(Mailbox::new(
            AppSpec {
                name: CONSOLE.into(),
                grants: Grants {
                    send: Peers::Any,
                    accept: Peers::Any,
                },
                limits: console_limits,
            },
            memory.clone(),
        ));
        let mut boxes: HashMap<Arc<str>, Arc<Mailbox>> = apps
            .into_iter()
            .map(|s| {
                let m = Arc::new(Mailbox::new(s, memory.clone()));
                (m.name.clone(), m)
            })
            .collect();
        boxes.insert(console.name.clone(), console.clone());
        Arc::new(Broker {
            boxes: std::sync::RwLock::new(boxes),
            console,
            memory,
            next_token: AtomicU64::new(1),
            pending: Mutex::new(PendingTable::default()),
            grants_epoch: AtomicU64::new(0),
        })
    }

    /// The endpoint a new instance of `app` talks through, or `None` for an unknown app.
    /// It supersedes the app's previous endpoint: that one may still send and reply, but no
    /// longer takes messages from the inbox (an instance being replaced must not take its
    /// successor's messages).
    pub fn endpoint(self: &Arc<Self>, app: &str) -> Option<Endpoint> {
        let me = self.mailbox(app)?;
        let generation = me.supersede(true);
        Some(Endpoint {
            broker: self.clone(),
            me,
            routes: HashMap::default(),
            routes_epoch: 0,
            generation: Some(generation),
        })
    }

    /// Starts handing `app`'s inbox over from its running instance to the next one (an
    /// update): the instance's endpoint is superseded, so it takes no more messages; the
    /// [`Handover`] says when it is done with the one it took, if any. `None` for an
    /// unknown app.
    pub fn hand_over(self: &Arc<Self>, app: &str) -> Option<Handover> {
        let me = self.mailbox(app)?;
        let from = me.supersede(false);
        Some(Handover {
            broker: self.clone(),
            me,
            from,
        })
    }

    /// The console's endpoint: it may send to every app, and its inbox holds what apps
    /// send or reply to the console.
    pub fn console(self: &Arc<Self>) -> Endpoint {
        Endpoint {
            broker: self.clone(),
            me: self.console.clone(),
            routes: HashMap::default(),
            routes_epoch: 0,
            generation: None,
        }
    }

    /// Gives `spec.name` new grants and inbox bounds (an update with a new manifest).
    /// Messages already waiting stay, even past smaller bounds; new ones must fit. Returns
    /// `false` for an unknown app.
    pub fn reconfigure(&self, spec: &AppSpec) -> bool {
        let Some(m) = self.mailbox(&spec.name) else {
            return false;
        };
        *m.grants.write().unwrap_or_else(|p| p.into_inner()) = spec.grants.clone();
        *m.limits.write().unwrap_or_else(|p| p.into_inner()) = spec.limits;
        self.grants_epoch.fetch_add(1, Ordering::AcqRel);
        // Senders waiting for room may find some under new bounds.
        m.writable.notify_waiters();
        true
    }

    /// An app's counters, or `None` for an unknown app.
    pub fn counters(&self, app: &str) -> Option<Counters> {
        self.mailbox(app).map(|m| m.counters())
    }

    fn boxes(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Arc<str>, Arc<Mailbox>>> {
        // Only inserts and removes happen under the write lock: a panic there leaves the
        // map whole.
        self.boxes.read().unwrap_or_else(|p| p.into_inner())
    }

    fn mailbox(&self, app: &str) -> Option<Arc<Mailbox>> {
        self.boxes().get(app).cloned()
    }

    /// Adds an inbox for a new app (a deploy). Returns `false` if the name is taken.
    pub fn add(&self, spec: AppSpec) -> bool {
        let mut boxes = self.boxes.write().unwrap_or_else(|p| p.into_inner());
        if boxes.contains_key(spec.name.as_str()) {
            return false;
        }
        let m = Arc::new(Mailbox::new(spec, self.memory.clone()));
        boxes.insert(m.name.clone(), m);
        drop(boxes);
        // Routes remembered as "no such app" are looked up again.
        self.grants_epoch.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// Removes `app`'s inbox (the app was removed; its instance has ended). Messages still
    /// waiting are dropped and counted; requests waiting for its answer end at once (their
    /// senders get [`IpcError::Timeout`] without waiting for it); later sends to it fail
    /// with [`IpcError::UnknownApp`], including from endpoints that looked it up before.
    /// `None` for an unknown app (or the console's inbox, which is never removed).
    pub fn remove(&self, app: &str) -> Option<Removed> {
        if app == CONSOLE {
            return None;
        }
        let m = self.boxes.write().unwrap_or_else(|p| p.into_inner()).remove(app)?;
        self.grants_epoch.fetch_add(1, Ordering::AcqRel);
        let dropped = {
            let mut q = m.queue();
            q.closed = true;
            q.holding.clear();
            q.by_sender.clear();
            let dropped = q.messages.len() as u64;
            self.memory.release(q.bytes as u64);
            q.bytes = 0;
            q.messages.clear();
            dropped
        };
        // No endpoint of it takes anything now.
        m.generation.fetch_add(1, Ordering::AcqRel);
        let tokens: Vec<u64> = self
            .pending()
            .by_token
            .iter()
            .filter(|(_, p)| *p.replier == *app)
            .map(|(t, _)| *t)
            .collect();
        let unanswered = tokens.len() as u64;
        for t in tokens {
            self.forget(t);
        }
        // Senders waiting for room find the app gone.
        m.writable.notify_waiters();
        Some(Removed { dropped, unanswered })
    }

    fn is_console(&self, m: &Mailbox) -> bool {
        std::ptr::eq(m, &*self.console)
    }

    fn pending(&self) -> MutexGuard<'_, PendingTable> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Files a pending request and returns its token.
    fn file(&self, replier: Arc<str>, limit: usize, to: ReplyTo) -> u64 {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let console = matches!(to, ReplyTo::Console);
        let mut p = self.pending();
        p.by_token.insert(token, Pending { replier, limit, to });
        if console {
            p.console.push_back(token);
            if p.console.len() > CONSOLE_PENDING
                && let Some(old) = p.console.pop_front()
            {
                p.by_token.remove(&old);
            }
        }
        token
    }

    /// The request behind `token` ended unanswered.
    fn forget(&self, token: u64) {
        let mut p = self.pending();
        if let Some(gone) = p.by_token.remove(&token) {
            p.gone.insert(token, gone.replier);
            p.gone_order.push_back(token);
            if p.gone_order.len() > GONE_TOKENS
                && let Some(old) = p.gone_order.pop_front()
            {
                p.gone.remove(&old);
            }
        }
    }

    /// Whether `from` may send to `to`, and `to`'s inbox if so.
    fn resolve(&self, from: &Mailbox, to: &str) -> Result<Arc<Mailbox>, IpcError> {
        let target = self.mailbox(to).ok_or_else(|| IpcError::UnknownApp(to.to_string()))?;
        if self.is_console(from) {
            return Ok(target.clone());
        }
        let me = &from.name;
        if !from.grants().send.allows(to) {
            return Err(IpcError::NotPermitted(format!(
                "`{me}` may not send to `{to}`: add \"{to}\" to `send` in the `[capabilities.ipc]` of `{me}`'s manifest"
            )));
        }
        if !Arc::ptr_eq(&target, &self.console) && !target.grants().accept.allows(me) {
            return Err(IpcError::NotPermitted(format!(
                "`{to}` does not accept messages from `{me}`: add \"{me}\" to `accept` in the `[capabilities.ipc]` of `{to}`'s manifest"
            )));
        }
        Ok(target)
    }
}

/// What removing an app's inbox dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Removed {
    /// Messages that were waiting in it.
    pub dropped: u64,
    /// Requests sent to it that were still waiting for its answer.
    pub unanswered: u64,
}

/// An inbox being handed over from an app's outgoing instance: see [`Broker::hand_over`].
#[derive(Debug)]
pub struct Handover {
    broker: Arc<Broker>,
    me: Arc<Mailbox>,
    /// The generation superseding the outgoing endpoints.
    from: u64,
}

/// How a hand-over ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The outgoing instance holds no message: every message it took, it finished (it
    /// asked for the next), and every other one waits in the inbox for the next instance.
    Quiet,
    /// At the deadline, the outgoing instance still held these messages (the one it
    /// took, or the rest of a batch).
    Holding(Vec<Held>),
}

impl Handover {
    /// Waits until the outgoing instance is done with the message it took (it asks for
    /// the next one, and gets none), or until `deadline`.
    pub async fn settle(&self, deadline: tokio::time::Instant) -> Settled {
        let outgoing = |q: &Queue| q.holding.first().is_some_and(|h| h.generation < self.from);
        let _waiting = Waiting::on(&self.me.handovers_waiting);
        loop {
            let done = self.me.done_with.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if !outgoing(&self.me.queue()) {
                return Settled::Quiet;
            }
            if tokio::time::timeout_at(deadline, done).await.is_err() {
                break;
            }
        }
        let mut q = self.me.queue();
        if outgoing(&q) {
            Settled::Holding(std::mem::take(&mut q.holding))
        } else {
            Settled::Quiet
        }
    }

    /// Ends the requests among `held` (taken by the outgoing instance and not finished):
    /// their senders stop waiting at once, with an error, instead of at their timeout.
    pub fn abandon(&self, held: &[Held]) {
        for token in held.iter().filter_map(|h| h.reply_token) {
            self.broker.forget(token);
        }
    }
}

/// Readiness of one inbox: see [`Endpoint::readiness`].
#[derive(Debug, Clone)]
pub struct Readiness(Arc<Mailbox>);

impl Readiness {
    /// Resolves once a message is waiting (immediately if one is).
    pub async fn wait(&self) {
        self.0.readable().await
    }

    /// Whether a message is waiting now.
    pub fn is_ready(&self) -> bool {
        !self.0.queue().messages.is_empty()
    }
}

/// Removes a pending request when its `request` call ends, however it ends (answered,
/// timed out, or the instance killed mid-wait).
struct PendingGuard<'a> {
    broker: &'a Broker,
    token: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.broker.forget(self.token);
    }
}

/// One app's connection to the broker. Every message sent through it carries the app's
/// name; the app cannot choose another.
#[derive(Debug)]
pub struct Endpoint {
    broker: Arc<Broker>,
    me: Arc<Mailbox>,
    routes: HashMap<String, Result<Arc<Mailbox>, IpcError>, Fast>,
    /// The broker's grants epoch `routes` was filled under.
    routes_epoch: u64,
    /// Which of the app's endpoints this is (`None`: the console's, never superseded).
    generation: Option<u64>,
}

impl Endpoint {
    /// The app this endpoint belongs to.
    pub fn name(&self) -> &str {
        &self.me.name
    }

    /// Another endpoint of the same instance (an HTTP app's instances, one per request,
    /// share their app's endpoint): it supersedes nothing and is superseded with this one.
    pub fn share(&self) -> Endpoint {
        Endpoint {
            broker: self.broker.clone(),
            me: self.me.clone(),
            routes: HashMap::default(),
            routes_epoch: 0,
            generation: self.generation,
        }
    }

    /// Whether this is still the app's newest endpoint (the only one that takes messages).
    pub fn is_current(&self) -> bool {
        self.generation
            .is_none_or(|g| self.me.generation.load(Ordering::Acquire) == g)
    }

    fn route(&mut self, to: &str) -> Result<Arc<Mailbox>, IpcError> {
        let epoch = self.broker.grants_epoch.load(Ordering::Acquire);
        if epoch != self.routes_epoch {
            self.routes.clear();
            self.routes_epoch = epoch;
        }
        if let Some(r) = self.routes.get(to) {
            return r.clone();
        }
        let r = self.broker.resolve(&self.me, to);
        if self.routes.len() >= ROUTE_CACHE {
            self.routes.clear();
        }
        self.routes.insert(to.to_string(), r.clone());
        r
    }

    /// The inbox a message of `size` bytes to `to` goes into, if the grants allow it and
    /// the receiver accepts that size.
    fn target(&mut self, to: &str, size: usize) -> Result<Arc<Mailbox>, IpcError> {
        let t = self.route(to)?;
        t.check_size(size)?;
        Ok(t)
    }

    /// Counts the outcome of a send by this app.
    fn tally<T>(&self, r: Result<T, IpcError>) -> Result<T, IpcError> {
        let counter = if r.is_ok() { &self.me.sent } else { &self.me.refused };
        counter.fetch_add(1, Ordering::Relaxed);
        r
    }

    fn message(&self, body: Vec<u8>, reply_token: Option<u64>) -> Message {
        Message {
            sender: self.me.name.clone(),
            body,
            reply_token,
        }
    }

    /// Queues `body` for `to` now, or fails without waiting.
    pub fn send(&mut self, to: &str, body: Vec<u8>) -> Result<(), IpcError> {
        let r = self
            .target(to, body.len())
            .and_then(|t| t.push(self.message(body, None)).map_err(|_| t.refusal()));
        self.tally(r)
    }

    /// Queues `body` for `to`, waiting up to `timeout` for room.
    pub async fn send_wait(&mut self, to: &str, body: Vec<u8>, timeout: Duration) -> Result<(), IpcError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let r = match self.target(to, body.len()) {
            Ok(t) => t.push_until(self.message(body, None), deadline).await,
            Err(e) => Err(e),
        };
        self.tally(r)
    }

    /// Queues `bodies` for `to`, in order, without waiting, until one cannot be queued;
    /// returns how many were (a prefix of `bodies`). When not even the first could be, the
    /// error says why, as [`Endpoint::send`]'s would. A short count is not a refusal: the
    /// caller sends the rest again, and learns then why they do not fit.
    pub fn send_many(&mut self, to: &str, bodies: Vec<Vec<u8>>) -> Result<usize, IpcError> {
        let Some(first) = bodies.first().map(Vec::len) else {
            // Nothing to send; the route is still checked, so a bad name is told at once.
            return self.route(to).map(|_| 0);
        };
        let target = match self.target(to, first) {
            Ok(t) => t,
            Err(e) => return self.tally(Err(e)),
        };
        let limit = target.limits().message;
        let within = bodies.iter().take_while(|b| b.len() <= limit).count();
        let queued = target.push_many(&self.me.name, bodies.into_iter().take(within));
        if queued == 0 {
            return self.tally(Err(target.refusal()));
        }
        self.me.sent.fetch_add(queued as u64, Ordering::Relaxed);
        Ok(queued)
    }

    /// Takes the oldest waiting message, if any (never, once superseded).
    pub fn try_recv(&self) -> Option<Message> {
        self.me.pop_as(self.generation)
    }

    /// Waits for the next message, up to `timeout` (`None`: no limit). A superseded
    /// endpoint never gets one.
    pub async fn recv(&self, timeout: Option<Duration>) -> Option<Message> {
        let mut one = None;
        self.take_next(1, timeout, |m| one = Some(m)).await;
        one
    }

    /// Takes up to `max` waiting messages at once, oldest first, waiting up to `timeout`
    /// (`None`: no limit) for the first; empty when the time passed or `max` is 0. The
    /// instance is done with the whole batch when it next asks for messages, as with one.
    pub async fn recv_many(&self, max: usize, timeout: Option<Duration>) -> Vec<Message> {
        let mut batch = Vec::new();
        if max > 0 {
            self.take_next(max, timeout, |m| batch.push(m)).await;
        }
        batch
    }

    /// Waits up to `timeout` (`None`: no limit) until this endpoint takes up to `max`
    /// messages (at least one), giving each to `out`. A superseded endpoint never takes
    /// one.
    async fn take_next(&self, max: usize, timeout: Option<Duration>, mut out: impl FnMut(Message)) {
        let next = async {
            loop {
                let n = self.me.readable.notified();
                tokio::pin!(n);
                n.as_mut().enable();
                if self.me.take_as(self.generation, max, &mut out) > 0 {
                    return;
                }
                if !self.is_current() {
                    // Pass on a wake-up that may have been meant for the newest endpoint.
                    self.me.readable.notify_one();
                    std::future::pending::<()>().await;
                }
                n.await;
            }
        };
        match timeout {
            None => next.await,
            Some(t) => {
                let _ = tokio::time::timeout(t, next).await;
            }
        }
    }

    /// A handle that tells when a message is waiting, without taking it. It holds no
    /// borrow of the endpoint, so it can back a WASI pollable.
    pub fn readiness(&self) -> Readiness {
        Readiness(self.me.clone())
    }

    /// Sends `body` to `to` as a request and waits up to `timeout` (for room, then for
    /// the answer).
    pub async fn request(&mut self, to: &str, body: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, IpcError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let target = match self.target(to, body.len()) {
            Ok(t) => t,
            Err(e) => return self.tally(Err(e)),
        };
        let (tx, rx) = oneshot::channel();
        let broker = self.broker.clone();
        let token = broker.file(target.name.clone(), self.me.limits().message, ReplyTo::Waiter(tx));
        let _guard = PendingGuard { broker: &broker, token };
        let queued = target.push_until(self.message(body, Some(token)), deadline).await;
        self.tally(queued)?;
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            _ => Err(IpcError::Timeout),
        }
    }

    /// Answers the request that carried `token`. Only the app it was sent to may answer,
    /// once. An answer that comes after the requester stopped waiting fails with
    /// [`IpcError::Timeout`] and is not counted as this app's refusal: it did nothing wrong.
    pub fn reply(&self, token: u64, body: Vec<u8>) -> Result<(), IpcError> {
        match self.answer(token, body) {
            Err(IpcError::Timeout) => Err(IpcError::Timeout),
            r => self.tally(r),
        }
    }

    fn answer(&self, token: u64, body: Vec<u8>) -> Result<(), IpcError> {
        let pending = {
            let mut table = self.broker.pending();
            if !table.by_token.contains_key(&token) && table.gone.get(&token).is_some_and(|r| *r == self.me.name) {
                table.gone.remove(&token);
                return Err(IpcError::Timeout);
            }
            let entry = match table.by_token.entry(token) {
                Entry::Occupied(e) if e.get().replier == self.me.name => e,
                _ => {
                    return Err(IpcError::NotPermitted(format!(
                        "no request with token {token} is waiting for an answer from `{}` (never sent to it, already answered, or the requester stopped waiting)",
                        self.me.name
                    )));
                }
            };
            let limit = entry.get().limit;
            if body.len() > limit {
                return Err(IpcError::TooLarge {
                    size: body.len(),
                    limit,
                });
            }
            entry.remove()
        };
        match pending.to {
            ReplyTo::Waiter(tx) => tx.send(body).map_err(|_| IpcError::Timeout),
            ReplyTo::Console => self
                .broker
                .console
                .push(self.message(body, None))
                .map_err(|_| IpcError::Full),
        }
    }

    /// From the console only: delivers `body` to `to` with a reply token whose answer
    /// comes back to the console's inbox. Console messages are always permitted.
    pub fn send_from_console(&mut self, to: &str, body: Vec<u8>) -> Result<(), IpcError> {
        if !self.broker.is_console(&self.me) {
            return Err(IpcError::NotPermitted(format!("`{}` is not the console", self.me.name)));
        }
        let target = self.target(to, body.len())?;
        let token = self.broker.file(
            target.name.clone(),
            self.broker.console.limits().message,
            ReplyTo::Console,
        );
        target.push(self.message(body, Some(token))).map_err(|_| {
            self.broker.forget(token);
            target.refusal()
        })
    }
}

#[cfg(test)]
mod tests;
