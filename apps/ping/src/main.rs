//! IPC benchmark driver, measured inside the guest with the monotonic clock.
//!
//! - `ping rtt PEER N SIZE`: N round trips of SIZE bytes (send to PEER, wait for its
//!   message back), after N/10 warm-up trips; prints
//!   `rtt n=N size=SIZE median_ns=.. p99_ns=.. mean_ns=..`.
//! - `ping flood PEER N SIZE [BATCH]`: sends N messages of SIZE bytes one way (waiting
//!   only when PEER's inbox is full), BATCH per call (`send-many`; 1: `send`, the default),
//!   then asks PEER how many it got; prints `flood n=N size=SIZE elapsed_ns=.. received=..`.
//! - `ping sink [BATCH]`: the receiving side of `flood`: counts messages, taking up to
//!   BATCH per call (`recv-many`; 1: `recv`, the default), and answers a request with the
//!   count so far.
use std::time::Duration;

use vyoma_sdk::{clock, ipc};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|m| m == "sink") {
        sink(args.get(2).map_or(1, |b| b.parse().expect("BATCH is a count")));
    }
    let (mode, peer, n, size, batch) = match &args[..] {
        [_, mode, peer, n, size] => (mode, peer, n, size, 1),
        [_, mode, peer, n, size, batch] => (mode, peer, n, size, batch.parse().expect("BATCH is a count")),
        _ => panic!("usage: ping rtt|flood PEER N SIZE [BATCH]"),
    };
    let n: usize = n.parse().expect("N is a count");
    let body = vec![7u8; size.parse().expect("SIZE is a byte count")];
    match mode.as_str() {
        "rtt" => {
            let mut samples = Vec::with_capacity(n);
            for i in 0..n + n / 10 {
                let t0 = clock::now_ns();
                ipc::send(peer, &body).expect("send to the echo peer");
                let back = ipc::recv();
                let dt = clock::now_ns() - t0;
                assert_eq!(back.body.len(), body.len(), "echo returned another size");
                if i >= n / 10 {
                    samples.push(dt);
                }
            }
            samples.sort_unstable();
            let mean = samples.iter().sum::<u64>() / n as u64;
            println!(
                "rtt n={n} size={size} median_ns={} p99_ns={} mean_ns={mean}",
                samples[n / 2],
                samples[(n * 99 / 100).min(n - 1)]
            );
        }
        "flood" => {
            let bodies = vec![body.clone(); batch];
            let t0 = clock::now_ns();
            let mut left = n;
            while left > 0 {
                // One message per `send`, or up to BATCH per `send-many`.
                let sent = if batch > 1 {
                    ipc::send_many(peer, &bodies[..left.min(batch)])
                } else {
                    ipc::send(peer, &body).map(|()| 1)
                };
                match sent {
                    Ok(k) => left -= k,
                    Err(ipc::Error::Full) => {
                        ipc::send_wait(peer, &body, Duration::from_secs(60)).expect("send to the sink");
                        left -= 1;
                    }
                    Err(e) => panic!("send to the sink: {e:?}"),
                }
            }
            let got = ipc::request(peer, b"count", Duration::from_secs(60)).expect("count from the sink");
            let dt = clock::now_ns() - t0;
            println!(
                "flood n={n} size={size} batch={batch} elapsed_ns={dt} received={}",
                String::from_utf8_lossy(&got)
            );
        }
        other => panic!("unknown mode `{other}`"),
    }
}

fn sink(batch: usize) -> ! {
    let mut count: u64 = 0;
    if batch > 1 {
        loop {
            for m in &ipc::recv_many(batch) {
                if m.reply_token.is_some() {
                    let _ = m.reply(count.to_string());
                } else {
                    count += 1;
                }
            }
        }
    }
    loop {
        let m = ipc::recv();
        if m.reply_token.is_some() {
            let _ = ipc::reply(&m, count.to_string());
        } else {
            count += 1;
        }
    }
}
