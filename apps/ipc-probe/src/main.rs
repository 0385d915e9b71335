//! Test app: runs the IPC operations given as arguments, in order, and prints one line
//! per outcome, so integration tests can drive IPC from a manifest and read the log.
//!
//! Operations (arguments):
//! - `send:TO:TEXT`         send TEXT, print `send TO -> ok` or `send TO -> error: E`
//! - `sendn:TO:N`           send N messages `0`..`N-1` without waiting; print the tally
//! - `sendw:TO:N`           like sendn, waiting up to 10 s for room each time
//! - `batchw:TO:N:K`        send `0`..`N-1` in batches of K (`send-many`), waiting up to
//!   10 s for room when one does not fit; print `batchw TO -> ok=N calls=C`
//! - `big:TO:SIZE`          send SIZE bytes
//! - `request:TO:TEXT`      print `request TO -> reply R` or the error
//! - `recv:N`               receive N messages, print `recv from S: TEXT`
//! - `count:N`              receive N messages, print only `received N from S1,S2,...`
//!   and `order ok` if each sender's numbers arrived in increasing order
//! - `countb:N:K`           as `count`, taking up to K at a time (`recv-many`); a request
//!   among them is answered `ack:TEXT` and not counted; also prints `batches B`
//! - `serve`                forever: print each message, answer requests with `ack:TEXT`
//! - `tally`                forever: print `got S N` for each message; answer the request
//!   `health` with `ok` (an update's health check)
//! - `stream:TO`            send `0`, `1`, ... to TO as fast as it takes them (waiting for
//!   room), until asked to stop; then print `streamed N`
//! - `poll:MS`              wait for a message or an MS timer, print which came first
//! - `sleep:MS`, `crash`    sleep; panic (to test restarts)
//! - `graceful:MS`          wait until asked to stop, print `stopping`, take MS to finish
//!   (printing `flushed`), then return from main
//! - `deaf`                 read the stop request once, then never end (to test the
//!   stop timeout)
use std::collections::BTreeMap;
use std::time::Duration;

use vyoma_sdk::{clock, ipc, lifecycle, poll};

fn show(r: Result<(), ipc::Error>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => format!("error: {e:?}"),
    }
}

fn main() {
    for op in std::env::args().skip(1) {
        let parts: Vec<&str> = op.splitn(3, ':').collect();
        let num = |i: usize| -> u64 { parts[i].parse().expect("a number") };
        match parts[0] {
            "send" => println!("send {} -> {}", parts[1], show(ipc::send(parts[1], parts[2]))),
            "sendn" | "sendw" => {
                let (mut ok, mut full, mut other) = (0, 0, 0);
                for i in 0..num(2) {
                    let body = i.to_string();
                    let r = if parts[0] == "sendw" {
                        ipc::send_wait(parts[1], body, Duration::from_secs(10))
                    } else {
                        ipc::send(parts[1], body)
                    };
                    match r {
                        Ok(()) => ok += 1,
                        Err(ipc::Error::Full) => full += 1,
                        Err(e) => {
                            other += 1;
                            eprintln!("{e:?}");
                        }
                    }
                }
                println!("{} {} -> ok={ok} full={full} other={other}", parts[0], parts[1]);
            }
            "batchw" => {
                let (total, k) = {
                    let (n, k) = parts[2].split_once(':').expect("batchw:TO:N:K");
                    (n.parse::<u64>().expect("N"), k.parse::<u64>().expect("K"))
                };
                let (mut next, mut calls) = (0, 0);
                while next < total {
                    let batch: Vec<Vec<u8>> = (next..total.min(next + k))
                        .map(|i| i.to_string().into_bytes())
                        .collect();
                    calls += 1;
                    match ipc::send_many(parts[1], &batch) {
                        Ok(n) => next += n as u64,
                        Err(ipc::Error::Full) => {
                            ipc::send_wait(parts[1], &batch[0], Duration::from_secs(10)).expect("room within 10 s");
                            next += 1;
                        }
                        Err(e) => panic!("batchw: {e:?}"),
                    }
                }
                println!("batchw {} -> ok={next} calls={calls}", parts[1]);
            }
            "countb" => {
                let (total, k) = (num(1), num(2) as usize);
                let mut last: BTreeMap<String, u64> = BTreeMap::new();
                let (mut in_order, mut got, mut batches) = (true, 0, 0);
                while got < total {
                    let batch = ipc::recv_many(k);
                    batches += 1;
                    for m in &batch {
                        if m.reply_token.is_some() {
                            let _ = m.reply(format!("ack:{}", m.text()));
                            continue;
                        }
                        let n: u64 = m.text().parse().unwrap_or(u64::MAX);
                        if let Some(prev) = last.insert(m.sender.to_string(), n) {
                            in_order &= prev < n;
                        }
                        got += 1;
                    }
                }
                let senders: Vec<&str> = last.keys().map(String::as_str).collect();
                println!("received {got} from {}", senders.join(","));
                if in_order {
                    println!("order ok");
                }
                println!("batches {batches}");
            }
            "big" => println!(
                "big {} -> {}",
                parts[1],
                show(ipc::send(parts[1], vec![b'x'; num(2) as usize]))
            ),
            "request" => match ipc::request(parts[1], parts[2], Duration::from_secs(10)) {
                Ok(r) => println!("request {} -> reply {}", parts[1], String::from_utf8_lossy(&r)),
                Err(e) => println!("request {} -> error: {e:?}", parts[1]),
            },
            "recv" => {
                for _ in 0..num(1) {
                    let m = ipc::recv();
                    println!("recv from {}: {}", m.sender, ipc::text(&m));
                }
            }
            "count" => {
                let mut last: BTreeMap<String, u64> = BTreeMap::new();
                let mut in_order = true;
                for _ in 0..num(1) {
                    let m = ipc::recv();
                    let n: u64 = ipc::text(&m).parse().unwrap_or(u64::MAX);
                    if let Some(prev) = last.insert(m.sender.clone(), n) {
                        in_order &= prev < n;
                    }
                }
                let senders: Vec<&str> = last.keys().map(String::as_str).collect();
                println!("received {} from {}", num(1), senders.join(","));
                if in_order {
                    println!("order ok");
                }
            }
            "serve" => loop {
                let m = ipc::recv();
                println!("recv from {}: {}", m.sender, ipc::text(&m));
                if m.reply_token.is_some() {
                    let answer = format!("ack:{}", ipc::text(&m));
                    println!("reply -> {}", show(ipc::reply(&m, answer)));
                }
            },
            "tally" => loop {
                let m = ipc::recv();
                if m.reply_token.is_some() && ipc::text(&m) == "health" {
                    let _ = ipc::reply(&m, "ok");
                    continue;
                }
                println!("got {} {}", m.sender, ipc::text(&m));
            },
            "stream" => {
                let mut n: u64 = 0;
                while !lifecycle::stop_requested() {
                    match ipc::send_wait(parts[1], n.to_string(), Duration::from_millis(100)) {
                        Ok(()) => n += 1,
                        Err(ipc::Error::Timeout) => {}
                        Err(e) => panic!("stream: {e:?}"),
                    }
                }
                println!("streamed {n}");
            }
            "poll" => {
                let inbox = ipc::subscribe();
                let timer = clock::after(Duration::from_millis(num(1)));
                let ready = poll::poll(&[&inbox, &timer]);
                println!("poll: {}", if ready.contains(&0) { "ipc" } else { "timer" });
            }
            "sleep" => std::thread::sleep(Duration::from_millis(num(1))),
            "crash" => panic!("crash requested"),
            "graceful" => {
                println!("waiting for stop");
                let stop = lifecycle::subscribe_stop();
                poll::poll(&[&stop]);
                println!("stopping (asked: {})", lifecycle::stop_requested());
                std::thread::sleep(Duration::from_millis(num(1)));
                println!("flushed");
            }
            "deaf" => {
                println!("deaf (asked: {})", lifecycle::stop_requested());
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
            other => panic!("unknown operation `{other}`"),
        }
    }
}
