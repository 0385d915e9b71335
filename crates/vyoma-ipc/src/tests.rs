//! Broker tests. Timeouts run on tokio's paused clock, so they take no real time.

use std::collections::BTreeSet;
use std::time::Duration;

use super::*;

fn only(names: &[&str]) -> Peers {
    Peers::Only(names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>())
}

fn spec(name: &str, send: Peers, accept: Peers) -> AppSpec {
    AppSpec {
        name: name.into(),
        grants: Grants { send, accept },
        limits: InboxLimits::default(),
    }
}

/// `a` may send to `b`, `b` accepts from `a`; `c` has no grants at all.
fn trio() -> Arc<Broker> {
    Broker::new(
        [
            spec("a", only(&["b", "c", "console"]), Peers::Any),
            spec("b", only(&["a"]), only(&["a"])),
            spec("c", Peers::None, Peers::None),
        ],
        InboxLimits::default(),
    )
}

/// `s` may send to anyone; `r` accepts anyone, with an inbox bounded by `limits`.
fn sender_and_receiver(limits: InboxLimits) -> Arc<Broker> {
    Broker::new(
        [
            spec("s", Peers::Any, Peers::None),
            AppSpec {
                limits,
                ..spec("r", Peers::None, Peers::Any)
            },
        ],
        InboxLimits::default(),
    )
}

#[test]
fn sender_is_stamped_by_the_broker() {
    let b = trio();
    let mut a = b.endpoint("a").unwrap();
    let rb = b.endpoint("b").unwrap();
    a.send("b", b"hi".to_vec()).unwrap();
    let m = rb.try_recv().unwrap();
    assert_eq!(&*m.sender, "a");
    assert_eq!(m.body, b"hi");
    assert_eq!(m.reply_token, None);
    assert!(rb.try_recv().is_none());
}

#[test]
fn both_grants_are_needed() {
    let b = trio();
    let mut a = b.endpoint("a").unwrap();
    let mut bb = b.endpoint("b").unwrap();
    let mut c = b.endpoint("c").unwrap();
    // a may send to c, but c accepts from nobody.
    match a.send("c", vec![1]) {
        Err(IpcError::NotPermitted(why)) => {
            assert!(why.contains("`c` does not accept messages from `a`"), "{why}");
            assert!(why.contains("add \"a\" to `accept`"), "{why}");
        }
        other => panic!("expected not-permitted, got {other:?}"),
    }
    // c has no send grant.
    match c.send("a", vec![1]) {
        Err(IpcError::NotPermitted(why)) => assert!(why.contains("`c` may not send to `a`"), "{why}"),
        other => panic!("expected not-permitted, got {other:?}"),
    }
    // b may send to a, and a accepts anyone.
    bb.send("a", vec![1]).unwrap();
    assert_eq!(b.counters("a").unwrap().refused, 1);
    assert_eq!(b.counters("c").unwrap().refused, 1);
    assert_eq!(b.counters("b").unwrap().sent, 1);
    assert_eq!(b.counters("c").unwrap().queued, 0);
}

#[test]
fn unknown_app_is_named() {
    let b = trio();
    let mut a = b.endpoint("a").unwrap();
    assert_eq!(a.send("nobody", vec![]), Err(IpcError::UnknownApp("nobody".into())));
    assert!(b.endpoint("nobody").is_none());
}

#[test]
fn per_sender_order_is_kept() {
    let b = Broker::new(
        [
            spec("x", only(&["r"]), Peers::None),
            spec("y", only(&["r"]), Peers::None),
            AppSpec {
                limits: InboxLimits {
                    messages: 1000,
                    ..InboxLimits::default()
                },
                ..spec("r", Peers::None, Peers::Any)
            },
        ],
        InboxLimits::default(),
    );
    let mut x = b.endpoint("x").unwrap();
    let mut y = b.endpoint("y").unwrap();
    for i in 0..300u32 {
        x.send("r", i.to_le_bytes().to_vec()).unwrap();
        if i % 3 == 0 {
            y.send("r", i.to_le_bytes().to_vec()).unwrap();
        }
    }
    let r = b.endpoint("r").unwrap();
    let (mut last_x, mut last_y) = (None, None);
    while let Some(m) = r.try_recv() {
        let n = u32::from_le_bytes(m.body.try_into().unwrap());
        let last = if &*m.sender == "x" { &mut last_x } else { &mut last_y };
        assert!(
            last.is_none_or(|l| l < n),
            "{} out of order: {n} after {last:?}",
            m.sender
        );
        *last = Some(n);
    }
    assert_eq!((last_x, last_y), (Some(299), Some(297)));
}

#[test]
fn inbox_is_bounded_by_count_and_bytes() {
    let b = sender_and_receiver(InboxLimits {
        messages: 6,
        bytes: 20,
        message: 8,
    });
    let mut s = b.endpoint("s").unwrap();
    let mut console = b.console();
    assert_eq!(s.send("r", vec![0; 9]), Err(IpcError::TooLarge { size: 9, limit: 8 }));
    // One sender may hold half of the inbox: 3 messages, 10 bytes.
    s.send("r", vec![0; 8]).unwrap();
    assert_eq!(
        s.send("r", vec![0; 3]),
        Err(IpcError::Full),
        "8 + 3 bytes is past its half"
    );
    s.send("r", vec![0; 1]).unwrap();
    s.send("r", vec![]).unwrap();
    assert_eq!(s.send("r", vec![]), Err(IpcError::Full), "3 messages is its half");
    // Another sender still finds room: with two senders waiting, each may hold a third.
    console.send("r", vec![0; 8]).unwrap();
    console.send("r", vec![]).unwrap();
    assert_eq!(console.send("r", vec![]), Err(IpcError::Full), "a third of 6 is 2");
    let c = b.counters("r").unwrap();
    assert_eq!(c.queued, 5);
    assert_eq!(
        b.counters("s").unwrap(),
        Counters {
            sent: 3,
            received: 0,
            refused: 3,
            queued: 0
        }
    );
    // Taking its messages frees room for their sender.
    let r = b.endpoint("r").unwrap();
    assert_eq!(&*r.try_recv().unwrap().sender, "s");
    assert_eq!(s.send("r", vec![]), Err(IpcError::Full), "still 2 waiting: its third");
    assert_eq!(&*r.try_recv().unwrap().sender, "s");
    s.send("r", vec![]).unwrap();
    assert_eq!(b.counters("r").unwrap().received, 2);
    // The inbox's own bounds hold whatever the shares: 20 bytes.
    let big = sender_and_receiver(InboxLimits {
        messages: 100,
        bytes: 20,
        message: 8,
    });
    let mut s = big.endpoint("s").unwrap();
    let mut console = big.console();
    s.send("r", vec![0; 8]).unwrap();
    console.send("r", vec![0; 8]).unwrap();
    assert_eq!(console.send("r", vec![0; 5]), Err(IpcError::Full), "21 bytes");
}

#[test]
fn a_flooding_sender_cannot_lock_out_the_others() {
    let b = Broker::new(
        [
            spec("flood", only(&["r"]), Peers::None),
            spec("x", only(&["r"]), Peers::None),
            spec("y", only(&["r"]), Peers::None),
            spec("r", Peers::None, Peers::Any),
        ],
        InboxLimits::default(),
    );
    let mut flood = b.endpoint("flood").unwrap();
    let sent = (0..10_000)
        .filter(|_| flood.send("r", b"spam".to_vec()).is_ok())
        .count();
    assert_eq!(sent, 128, "half of the default 256");
    // The others get in; with three senders waiting, each is held to a third.
    let mut x = b.endpoint("x").unwrap();
    let mut y = b.endpoint("y").unwrap();
    assert!(x.send("r", b"hello".to_vec()).is_ok());
    let x_sent = 1 + (0..1000).filter(|_| x.send("r", b"more".to_vec()).is_ok()).count();
    assert_eq!(x_sent, 85, "a third of 256");
    assert!(y.send("r", b"me too".to_vec()).is_ok());
    assert!(flood.send("r", b"spam".to_vec()).is_err());
}

#[test]
fn a_superseded_endpoint_takes_nothing() {
    let b = trio();
    let mut a = b.endpoint("a").unwrap();
    let old = b.endpoint("b").unwrap();
    a.send("b", b"one".to_vec()).unwrap();
    // The instance is replaced: the new endpoint exists before the old instance is gone.
    let new = b.endpoint("b").unwrap();
    assert!(!old.is_current() && new.is_current());
    assert_eq!(old.try_recv(), None);
    assert_eq!(new.try_recv().unwrap().body, b"one");
    // The old one may still send (its last words reach their receiver).
    let mut old = old;
    old.send("a", b"bye".to_vec()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_superseded_waiter_passes_the_message_on() {
    let b = trio();
    let old = b.endpoint("b").unwrap();
    let old_waiter = tokio::spawn(async move { old.recv(None).await });
    tokio::task::yield_now().await;
    let new = b.endpoint("b").unwrap();
    let mut a = b.endpoint("a").unwrap();
    a.send("b", b"for the new one".to_vec()).unwrap();
    let got = new.recv(Some(Duration::from_secs(1))).await.unwrap();
    assert_eq!(got.body, b"for the new one");
    // The old one never returns.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!old_waiter.is_finished());
    old_waiter.abort();
}

#[test]
fn messages_outlive_the_receiving_instance() {
    let b = trio();
    let mut a = b.endpoint("a").unwrap();
    let first = b.endpoint("b").unwrap();
    a.send("b", b"one".to_vec()).unwrap();
    a.send("b", b"two".to_vec()).unwrap();
    assert_eq!(first.try_recv().unwrap().body, b"one");
    drop(first); // the instance ends (killed, crashed, restarted)
    let second = b.endpoint("b").unwrap();
    assert_eq!(second.try_recv().unwrap().body, b"two");
}

#[tokio::test(start_paused = true)]
async fn recv_waits_and_times_out() {
    let b = trio();
    let rb = b.endpoint("b").unwrap();
    assert_eq!(rb.recv(Some(Duration::from_millis(50))).await, None);
    let mut a = b.endpoint("a").unwrap();
    let waiter = tokio::spawn(async move { rb.recv(None).await });
    tokio::task::yield_now().await;
    a.send("b", b"late".to_vec()).unwrap();
    assert_eq!(waiter.await.unwrap().unwrap().body, b"late");
}

#[tokio::test(start_paused = true)]
async fn send_wait_waits_for_room() {
    let b = sender_and_receiver(InboxLimits {
        messages: 1,
        ..InboxLimits::default()
    });
    let mut s = b.endpoint("s").unwrap();
    s.send("r", b"1".to_vec()).unwrap();
    assert_eq!(
        s.send_wait("r", b"2".to_vec(), Duration::from_millis(100)).await,
        Err(IpcError::Timeout)
    );
    let r = b.endpoint("r").unwrap();
    let sender = tokio::spawn(async move { s.send_wait("r", b"3".to_vec(), Duration::from_secs(10)).await });
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(r.try_recv().unwrap().body, b"1");
    sender.await.unwrap().unwrap();
    assert_eq!(r.try_recv().unwrap().body, b"3");
}

#[tokio::test(start_paused = true)]
async fn readable_resolves_when_a_message_waits() {
    let b = trio();
    let rb = b.endpoint("b").unwrap();
    let readiness = rb.readiness();
    assert!(!readiness.is_ready());
    let ready = readiness.wait();
    tokio::pin!(ready);
    assert!(
        tokio::time::timeout(Duration::from_millis(10), &mut ready)
            .await
            .is_err()
    );
    b.endpoint("a").unwrap().send("b", vec![7]).unwrap();
    ready.await;
    assert!(readiness.is_ready());
    // Readiness does not consume the message.
    assert_eq!(rb.try_recv().unwrap().body, vec![7]);
}

#[tokio::test(start_paused = true)]
async fn request_and_reply() {
    let b = trio();
    let mut a = b.endpoint("a").unwrap();
    let rb = b.endpoint("b").unwrap();
    let server = tokio::spawn(async move {
        let m = rb.recv(None).await.unwrap();
        let token = m.reply_token.expect("a request carries a token");
        let mut answer = b"re: ".to_vec();
        answer.extend(&m.body);
        rb.reply(token, answer).unwrap();
        // Answering twice is refused.
        assert!(matches!(rb.reply(token, vec![]), Err(IpcError::NotPermitted(_))));
    });
    let answer = a.request("b", b"ping".to_vec(), Duration::from_secs(1)).await.unwrap();
    assert_eq!(answer, b"re: ping");
    server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn only_the_addressee_may_reply_and_late_replies_are_refused() {
    let b = trio();
    let mut a = b.endpoint("a").unwrap();
    let rb = b.endpoint("b").unwrap();
    let c = b.endpoint("c").unwrap();
    assert_eq!(
        a.request("b", b"q".to_vec(), Duration::from_millis(20)).await,
        Err(IpcError::Timeout)
    );
    let token = rb.try_recv().unwrap().reply_token.unwrap();
    // The requester gave up: the answer comes too late, and that is not b's refusal.
    assert_eq!(rb.reply(token, vec![]), Err(IpcError::Timeout));
    assert_eq!(b.counters("b").unwrap().refused, 0);
    // Once: a second answer to it is one that no request waits for.
    assert!(matches!(rb.reply(token, vec![]), Err(IpcError::NotPermitted(_))));
    let requester = tokio::spawn(async move { a.request("b", b"q2".to_vec(), Duration::from_secs(5)).await });
    let m = rb.recv(None).await.unwrap();
    let token = m.reply_token.unwrap();
    // A third app cannot answer for b, even knowing the token.
    assert!(matches!(
        c.reply(token, b"forged".to_vec()),
        Err(IpcError::NotPermitted(_))
    ));
    rb.reply(token, b"real".to_vec()).unwrap();
    assert_eq!(requester.await.unwrap().unwrap(), b"real");
}

#[tokio::test(start_paused = true)]
async fn a_killed_requester_leaves_nothing_pending() {
    let b = trio();
    let mut a = b.endpoint("a").unwrap();
    let task = tokio::spawn(async move { a.request("b", vec![], Duration::from_secs(60)).await });
    tokio::task::yield_now().await;
    task.abort();
    let _ = task.await;
    assert!(b.pending().by_token.is_empty());
}

#[test]
fn console_may_message_anyone_and_replies_come_back() {
    let b = trio();
    let mut console = b.console();
    // `c` accepts from nobody, but the operator is always accepted.
    console.send_from_console("c", b"status?".to_vec()).unwrap();
    let c = b.endpoint("c").unwrap();
    let m = c.try_recv().unwrap();
    assert_eq!(&*m.sender, "console");
    c.reply(m.reply_token.unwrap(), b"fine".to_vec()).unwrap();
    let answer = console.try_recv().unwrap();
    assert_eq!((&*answer.sender, answer.body.as_slice()), ("c", &b"fine"[..]));
    // Apps need a grant to send to the console unprompted: a has one, c does not.
    b.endpoint("a").unwrap().send("console", b"note".to_vec()).unwrap();
    assert!(matches!(
        b.endpoint("c").unwrap().send("console", vec![]),
        Err(IpcError::NotPermitted(_))
    ));
    assert_eq!(console.try_recv().unwrap().body, b"note");
    // Only the console endpoint may send as the console.
    assert!(matches!(
        b.endpoint("a").unwrap().send_from_console("b", vec![]),
        Err(IpcError::NotPermitted(_))
    ));
}

#[test]
fn unanswered_console_messages_stay_bounded() {
    let b = Broker::new(
        [AppSpec {
            limits: InboxLimits {
                messages: 10_000,
                ..InboxLimits::default()
            },
            ..spec("quiet", Peers::None, Peers::None)
        }],
        InboxLimits::default(),
    );
    let mut console = b.console();
    for _ in 0..CONSOLE_PENDING + 10 {
        console.send_from_console("quiet", vec![]).unwrap();
    }
    assert_eq!(b.pending().by_token.len(), CONSOLE_PENDING);
}

/// An account of `limit` bytes, as the supervisor's memory budget is.
#[derive(Debug)]
struct Account {
    limit: u64,
    used: std::sync::atomic::AtomicU64,
}

impl HostMemory for Account {
    fn try_charge(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                (u + bytes <= self.limit).then_some(u + bytes)
            })
            .is_ok()
    }

    fn release(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

#[test]
fn waiting_messages_are_charged_to_the_shared_memory_account() {
    let account = Arc::new(Account {
        limit: 100,
        used: Default::default(),
    });
    let b = Broker::charging(
        [spec("s", Peers::Any, Peers::None), spec("r", Peers::None, Peers::Any)],
        InboxLimits::default(),
        account.clone(),
    );
    let mut s = b.endpoint("s").unwrap();
    let r = b.endpoint("r").unwrap();
    s.send("r", vec![0; 60]).unwrap();
    assert_eq!(account.used.load(Ordering::Relaxed), 60);
    // The inbox has room, but the account does not: the send is refused as full.
    assert!(matches!(s.send("r", vec![0; 60]), Err(IpcError::Full)));
    s.send("r", vec![0; 40]).unwrap();
    assert_eq!(account.used.load(Ordering::Relaxed), 100);
    // Taking a message gives its bytes back.
    assert_eq!(r.try_recv().unwrap().body.len(), 60);
    assert_eq!(account.used.load(Ordering::Relaxed), 40);
    // So does dropping the broker with messages still waiting.
    drop((s, r, b));
    assert_eq!(account.used.load(Ordering::Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn a_hand_over_from_an_idle_instance_is_quiet_at_once_and_keeps_the_inbox() {
    let b = trio();
    let mut a = b.endpoint("a").unwrap();
    let old = b.endpoint("b").unwrap();
    a.send("b", b"1".to_vec()).unwrap();
    assert_eq!(old.try_recv().unwrap().body, b"1");
    // It asks for the next one: done with the first, none waiting.
    assert!(old.try_recv().is_none());
    let h = b.hand_over("b").unwrap();
    assert_eq!(h.settle(tokio::time::Instant::now()).await, Settled::Quiet);
    a.send("b", b"2".to_vec()).unwrap();
    a.send("b", b"3".to_vec()).unwrap();
    // The outgoing instance gets nothing more.
    assert!(old.try_recv().is_none());
    let new = b.endpoint("b").unwrap();
    assert_eq!(new.try_recv().unwrap().body, b"2");
    assert_eq!(new.try_recv().unwrap().body, b"3");
}

#[tokio::test(start_paused = true)]
async fn a_hand_over_waits_for_the_message_being_handled() {
    let b = trio();
    let mut a = b.endpoint("a").unwrap();
    let old = b.endpoint("b").unwrap();
    a.send("b", b"work".to_vec()).unwrap();
    a.send("b", b"next".to_vec()).unwrap();
    assert_eq!(old.recv(None).await.unwrap().body, b"work");
    let h = b.hand_over("b").unwrap();
    let handler = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Done: it asks for the next and, superseded, gets none.
        old.recv(Some(Duration::from_millis(1))).await
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let (settled, next) = tokio::join!(h.settle(deadline), handler);
    assert_eq!(settled, Settled::Quiet);
    assert_eq!(next, None);
    assert_eq!(b.endpoint("b").unwrap().try_recv().unwrap().body, b"next");
}

#[tokio::test(start_paused = true)]
async fn a_request_held_past_the_deadline_is_abandoned_and_its_sender_told_at_once() {
    let b = trio();
    let mut a = b.endpoint("a").unwrap();
    let old = b.endpoint("b").unwrap();
    let started = tokio::time::Instant::now();
    let asker = async { a.request("b", b"q".to_vec(), Duration::from_secs(60)).await };
    let hand_over = async {
        let m = old.recv(None).await.unwrap();
        assert!(m.reply_token.is_some());
        let h = b.hand_over("b").unwrap();
        let settled = h.settle(tokio::time::Instant::now() + Duration::from_secs(1)).await;
        let Settled::Holding(held) = settled else {
            panic!("expected the request to be held, got {settled:?}")
        };
        assert_eq!(held.len(), 1);
        assert_eq!(&*held[0].sender, "a");
        assert_eq!(held[0].reply_token, m.reply_token);
        h.abandon(&held);
        // A late answer from the outgoing instance is refused as late.
        assert_eq!(
            old.reply(m.reply_token.unwrap(), b"late".to_vec()),
            Err(IpcError::Timeout)
        );
    };
    let (answer, ()) = tokio::join!(asker, hand_over);
    assert_eq!(answer, Err(IpcError::Timeout));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the sender waited out its timeout"
    );
}

#[tokio::test(start_paused = true)]
async fn what_a_killed_instance_held_does_not_delay_a_later_hand_over() {
    let b = trio();
    let mut a = b.endpoint("a").unwrap();
    let killed = b.endpoint("b").unwrap();
    a.send("b", b"x".to_vec()).unwrap();
    killed.try_recv().unwrap();
    drop(killed);
    let _running = b.endpoint("b").unwrap();
    let h = b.hand_over("b").unwrap();
    assert_eq!(h.settle(tokio::time::Instant::now()).await, Settled::Quiet);
}

/// Runs `sender` (its own task) while the receiving app `r`'s instance is replaced over
/// and over, each instance running `instance` with its endpoint and the list it records
/// what it took in; returns that list once it holds `messages`, and how many hand-overs.
async fn across_hand_overs<F>(
    b: &Arc<Broker>,
    messages: usize,
    sender: impl Future<Output = ()> + Send + 'static,
    instance: impl Fn(Endpoint, Arc<Mutex<Vec<u32>>>) -> F,
    pause: Duration,
) -> (Vec<u32>, usize)
where
    F: Future<Output = ()> + Send + 'static,
{
    let sender = tokio::spawn(sender);
    let got = Arc::new(Mutex::new(Vec::new()));
    let mut hand_overs = 0;
    while got.lock().unwrap().len() < messages {
        let running = tokio::spawn(instance(b.endpoint("r").unwrap(), got.clone()));
        tokio::time::sleep(pause).await;
        let h = b.hand_over("r").unwrap();
        let settled = h.settle(tokio::time::Instant::now() + Duration::from_secs(5)).await;
        assert_eq!(settled, Settled::Quiet);
        running.abort();
        let _ = running.await;
        hand_overs += 1;
    }
    sender.await.unwrap();
    let got = got.lock().unwrap().clone();
    (got, hand_overs)
}

/// A sender at full speed while the receiving app's instance is replaced over and over:
/// every message arrives exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_message_is_lost_or_duplicated_across_hand_overs() {
    // Long enough for many hand-overs even on a fast, idle machine.
    const MESSAGES: u32 = 100_000;
    let b = sender_and_receiver(InboxLimits {
        messages: 64,
        ..InboxLimits::default()
    });
    let mut s = b.endpoint("s").unwrap();
    let sender = async move {
        for i in 0..MESSAGES {
            s.send_wait("r", i.to_be_bytes().to_vec(), Duration::from_secs(30))
                .await
                .unwrap();
        }
    };
    // An instance: takes each message, records it, asks for the next.
    let instance = |ep: Endpoint, sink: Arc<Mutex<Vec<u32>>>| async move {
        while let Some(m) = ep.recv(None).await {
            sink.lock()
                .unwrap()
                .push(u32::from_be_bytes(m.body.try_into().unwrap()));
            tokio::task::yield_now().await;
        }
    };
    let (got, hand_overs) =
        across_hand_overs(&b, MESSAGES as usize, sender, instance, Duration::from_micros(200)).await;
    assert_eq!(got, (0..MESSAGES).collect::<Vec<_>>());
    assert!(hand_overs > 10, "only {hand_overs} hand-overs");
}

#[test]
fn new_grants_take_effect_at_once_for_endpoints_that_remember_old_routes() {
    let b = trio();
    let mut c = b.endpoint("c").unwrap();
    assert!(matches!(c.send("a", b"x".to_vec()), Err(IpcError::NotPermitted(_))));
    assert!(b.reconfigure(&spec("c", only(&["a"]), Peers::None)));
    c.send("a", b"x".to_vec()).unwrap();
    // And taken away again.
    assert!(b.reconfigure(&spec("c", Peers::None, Peers::None)));
    assert!(matches!(c.send("a", b"x".to_vec()), Err(IpcError::NotPermitted(_))));
    assert!(!b.reconfigure(&spec("nobody", Peers::None, Peers::None)));
}

#[tokio::test(start_paused = true)]
async fn an_app_added_later_is_reached_and_a_removed_one_refuses_at_once() {
    let account = Arc::new(Account {
        limit: 1000,
        used: Default::default(),
    });
    let b = Broker::charging(
        [spec("s", Peers::Any, Peers::Any)],
        InboxLimits::default(),
        account.clone(),
    );
    let mut s = b.endpoint("s").unwrap();
    // Looked up before it exists: remembered as unknown, looked up again once added.
    assert_eq!(s.send("n", b"0".to_vec()), Err(IpcError::UnknownApp("n".into())));
    assert!(b.add(spec("n", Peers::Any, Peers::Any)));
    assert!(!b.add(spec("n", Peers::None, Peers::None)), "a name is added once");
    let n = b.endpoint("n").unwrap();
    s.send("n", b"1".to_vec()).unwrap();
    assert_eq!(n.try_recv().unwrap().body, b"1");
    // Two messages and a request wait when it is removed.
    s.send("n", vec![0; 10]).unwrap();
    s.send("n", vec![0; 10]).unwrap();
    let started = tokio::time::Instant::now();
    let mut asker = b.endpoint("s").unwrap();
    let request = tokio::spawn(async move { asker.request("n", b"q".to_vec(), Duration::from_secs(60)).await });
    tokio::task::yield_now().await;
    assert_eq!(account.used.load(Ordering::Relaxed), 21);
    let removed = b.remove("n").unwrap();
    assert_eq!(
        removed,
        Removed {
            dropped: 3,
            unanswered: 1
        }
    );
    assert_eq!(
        account.used.load(Ordering::Relaxed),
        0,
        "dropped messages give their bytes back"
    );
    assert_eq!(request.await.unwrap(), Err(IpcError::Timeout));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the requester waited out its timeout"
    );
    // The old endpoint takes nothing; senders that had it cached are refused by name.
    assert!(n.try_recv().is_none());
    assert_eq!(s.send("n", b"2".to_vec()), Err(IpcError::UnknownApp("n".into())));
    assert_eq!(b.counters("n"), None);
    assert_eq!(b.remove("n"), None);
    assert_eq!(b.remove(CONSOLE), None, "the console's inbox stays");
}

#[tokio::test(start_paused = true)]
async fn a_sender_waiting_for_room_is_told_when_the_receiver_is_removed() {
    let b = sender_and_receiver(InboxLimits {
        messages: 1,
        ..InboxLimits::default()
    });
    let mut s = b.endpoint("s").unwrap();
    s.send("r", b"1".to_vec()).unwrap();
    let mut waiting = b.endpoint("s").unwrap();
    let wait = tokio::spawn(async move { waiting.send_wait("r", b"2".to_vec(), Duration::from_secs(60)).await });
    tokio::task::yield_now().await;
    b.remove("r").unwrap();
    assert_eq!(wait.await.unwrap(), Err(IpcError::UnknownApp("r".into())));
}

#[test]
fn send_many_queues_the_messages_that_fit_and_says_why_the_first_does_not() {
    let b = sender_and_receiver(InboxLimits {
        messages: 6,
        bytes: 20,
        message: 8,
    });
    let mut s = b.endpoint("s").unwrap();
    // Its share is half the inbox: 3 messages, 10 bytes; a batch stops at the first
    // message past it, and says how many went.
    assert_eq!(s.send_many("r", vec![vec![1; 8], vec![2], vec![], vec![]]), Ok(3));
    assert_eq!(s.send_many("r", vec![vec![]]), Err(IpcError::Full));
    assert_eq!(s.send_many("r", vec![]), Ok(0), "nothing to send is no refusal");
    let r = b.endpoint("r").unwrap();
    let got: Vec<Vec<u8>> = std::iter::from_fn(|| r.try_recv().map(|m| m.body)).collect();
    assert_eq!(got, [vec![1; 8], vec![2], vec![]]);
    // Too large: an error when it is the first, the end of the batch otherwise.
    assert_eq!(
        s.send_many("r", vec![vec![0; 9], vec![1]]),
        Err(IpcError::TooLarge { size: 9, limit: 8 })
    );
    assert_eq!(s.send_many("r", vec![vec![1], vec![0; 9], vec![1]]), Ok(1));
    // Names and grants as for `send`, even with nothing to send.
    assert_eq!(
        s.send_many("nobody", vec![]),
        Err(IpcError::UnknownApp("nobody".into()))
    );
    let mut r = b.endpoint("r").unwrap();
    assert!(matches!(
        r.send_many("s", vec![vec![1]]),
        Err(IpcError::NotPermitted(_))
    ));
    // Counted per message sent, per call refused.
    assert_eq!(
        b.counters("s").unwrap(),
        Counters {
            sent: 4,
            received: 0,
            refused: 2,
            queued: 0
        }
    );
    assert_eq!(b.counters("r").unwrap().queued, 1);
}

#[test]
fn send_many_keeps_the_other_senders_share() {
    let b = Broker::new(
        [
            spec("flood", only(&["r"]), Peers::None),
            spec("x", only(&["r"]), Peers::None),
            spec("r", Peers::None, Peers::Any),
        ],
        InboxLimits::default(),
    );
    let mut flood = b.endpoint("flood").unwrap();
    assert_eq!(
        flood.send_many("r", vec![b"spam".to_vec(); 1000]),
        Ok(128),
        "half of 256"
    );
    let mut x = b.endpoint("x").unwrap();
    assert_eq!(x.send_many("r", vec![b"hi".to_vec(); 1000]), Ok(85), "a third of 256");
}

#[tokio::test(start_paused = true)]
async fn recv_many_takes_up_to_max_in_order_and_frees_their_room() {
    let b = sender_and_receiver(InboxLimits {
        messages: 10,
        bytes: 1000,
        message: 100,
    });
    let mut s = b.endpoint("s").unwrap();
    let mut console = b.console();
    assert_eq!(s.send_many("r", (0..5u8).map(|i| vec![i]).collect()), Ok(5));
    assert_eq!(s.send("r", vec![9]), Err(IpcError::Full), "its half is 5");
    console.send_from_console("r", b"status".to_vec()).unwrap();
    let r = b.endpoint("r").unwrap();
    let first = r.recv_many(3, None).await;
    let bodies: Vec<&[u8]> = first.iter().map(|m| &m.body[..]).collect();
    assert_eq!(bodies, [[0], [1], [2]]);
    assert!(first.iter().all(|m| &*m.sender == "s" && m.reply_token.is_none()));
    // Taken messages free their sender's room at once.
    s.send("r", vec![5]).unwrap();
    let rest = r.recv_many(100, Some(Duration::ZERO)).await;
    let shape: Vec<(&str, &[u8], bool)> = rest
        .iter()
        .map(|m| (&*m.sender, &m.body[..], m.reply_token.is_some()))
        .collect();
    assert_eq!(
        shape,
        [
            ("s", &[3][..], false),
            ("s", &[4], false),
            ("console", b"status", true),
            ("s", &[5], false)
        ]
    );
    assert_eq!(b.counters("r").unwrap().received, 7);
    assert_eq!(b.counters("r").unwrap().queued, 0);
    // Nothing waiting: empty after the timeout; a `max` of 0 takes nothing.
    let t0 = tokio::time::Instant::now();
    assert!(r.recv_many(8, Some(Duration::from_millis(50))).await.is_empty());
    assert_eq!(t0.elapsed(), Duration::from_millis(50));
    s.send("r", vec![6]).unwrap();
    assert!(r.recv_many(0, None).await.is_empty());
    assert_eq!(r.recv_many(8, None).await.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_batch_is_held_until_the_instance_asks_for_more() {
    let b = trio();
    let mut a = b.endpoint("a").unwrap();
    let old = b.endpoint("b").unwrap();
    a.send_many("b", vec![b"1".to_vec(), b"2".to_vec()]).unwrap();
    assert_eq!(old.recv_many(10, None).await.len(), 2);
    a.send("b", b"3".to_vec()).unwrap();
    // The instance finishes its batch and asks for more: the hand-over is quiet, and the
    // message after the batch waits for the next instance.
    let h = b.hand_over("b").unwrap();
    let handler = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        old.recv_many(10, Some(Duration::ZERO)).await
    };
    let (settled, more) = tokio::join!(h.settle(tokio::time::Instant::now() + Duration::from_secs(5)), handler);
    assert_eq!(settled, Settled::Quiet);
    assert!(more.is_empty(), "a superseded instance takes nothing");
    assert_eq!(b.endpoint("b").unwrap().try_recv().unwrap().body, b"3");
}

#[tokio::test(start_paused = true)]
async fn a_batch_held_past_the_deadline_is_reported_whole_and_its_requests_abandoned() {
    let b = trio();
    let mut a = b.endpoint("a").unwrap();
    let old = b.endpoint("b").unwrap();
    a.send("b", b"plain".to_vec()).unwrap();
    let started = tokio::time::Instant::now();
    let asker = async { a.request("b", b"q".to_vec(), Duration::from_secs(60)).await };
    let hand_over = async {
        // Both messages are in the inbox once the request is queued.
        tokio::task::yield_now().await;
        let batch = old.recv_many(10, None).await;
        assert_eq!(batch.len(), 2);
        let h = b.hand_over("b").unwrap();
        let Settled::Holding(held) = h.settle(tokio::time::Instant::now() + Duration::from_secs(1)).await else {
            panic!("expected the batch to be held")
        };
        assert_eq!(held.len(), 2);
        assert!(held.iter().all(|h| &*h.sender == "a"));
        assert_eq!(held[1].reply_token, batch[1].reply_token);
        h.abandon(&held);
    };
    let (answer, ()) = tokio::join!(asker, hand_over);
    assert_eq!(answer, Err(IpcError::Timeout));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the requester waited out its timeout"
    );
}

/// As `no_message_is_lost_or_duplicated_across_hand_overs`, with the sender and the
/// instances using the batch calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_batched_message_is_lost_or_duplicated_across_hand_overs() {
    const MESSAGES: u32 = 200_000;
    let b = sender_and_receiver(InboxLimits {
        messages: 64,
        ..InboxLimits::default()
    });
    let mut s = b.endpoint("s").unwrap();
    let sender = async move {
        let mut next = 0;
        while next < MESSAGES {
            let batch = (next..MESSAGES.min(next + 10))
                .map(|i| i.to_be_bytes().to_vec())
                .collect();
            match s.send_many("r", batch) {
                Ok(n) => next += n as u32,
                Err(IpcError::Full) => tokio::task::yield_now().await,
                Err(e) => panic!("{e}"),
            }
        }
    };
    let instance = |ep: Endpoint, sink: Arc<Mutex<Vec<u32>>>| async move {
        loop {
            let batch = ep.recv_many(16, None).await;
            let numbers = batch
                .into_iter()
                .map(|m| u32::from_be_bytes(m.body.try_into().unwrap()));
            sink.lock().unwrap().extend(numbers);
            tokio::task::yield_now().await;
        }
    };
    let (got, hand_overs) = across_hand_overs(&b, MESSAGES as usize, sender, instance, Duration::from_micros(50)).await;
    assert_eq!(got, (0..MESSAGES).collect::<Vec<_>>());
    assert!(hand_overs > 5, "only {hand_overs} hand-overs");
}
