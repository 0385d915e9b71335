//! Any sequence of the calls a guest can make on the IPC broker (send, try-recv, reply with
//! any token), from any app, to any name, with any body, interleaved with instances being
//! replaced and console messages: nothing panics, no inbox ever holds more than its bounds,
//! every received message carries a real sender's name and an accepted size, and a
//! superseded endpoint never takes a message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vyoma_ipc::{AppSpec, Broker, Grants, InboxLimits, Peers};

const APPS: [&str; 3] = ["a", "b", "c"];
const NAMES: [&str; 6] = ["a", "b", "c", "console", "ghost", ""];
const LIMITS: InboxLimits = InboxLimits {
    messages: 4,
    bytes: 64,
    message: 32,
};

fn only(names: &[&str]) -> Peers {
    Peers::Only(names.iter().map(|s| s.to_string()).collect())
}

fuzz_target!(|data: &[u8]| {
    let broker = Broker::new(
        [
            AppSpec {
                name: "a".into(),
                grants: Grants {
                    send: Peers::Any,
                    accept: Peers::Any,
                },
                limits: LIMITS,
            },
            AppSpec {
                name: "b".into(),
                grants: Grants {
                    send: only(&["a", "console"]),
                    accept: only(&["a"]),
                },
                limits: LIMITS,
            },
            AppSpec {
                name: "c".into(),
                grants: Grants::default(),
                limits: LIMITS,
            },
        ],
        LIMITS,
    );
    let mut eps: Vec<_> = APPS.iter().map(|a| broker.endpoint(a).unwrap()).collect();
    let mut old: Vec<vyoma_ipc::Endpoint> = Vec::new();
    let mut console = broker.console();
    let mut tokens: Vec<u64> = vec![0, 1, u64::MAX];
    let mut bytes = data.iter().copied();
    let mut next = || bytes.next();
    while let (Some(op), Some(x), Some(y)) = (next(), next(), next()) {
        let app = usize::from(x) % APPS.len();
        let to = NAMES[usize::from(y) % NAMES.len()];
        match op % 7 {
            0 => {
                let body = vec![op; usize::from(x) % 40];
                let _ = eps[app].send(to, body);
            }
            1 => {
                if let Some(m) = eps[app].try_recv() {
                    assert!(NAMES[..4].contains(&&*m.sender), "sender {:?}", m.sender);
                    assert!(m.body.len() <= LIMITS.message);
                    tokens.extend(m.reply_token);
                }
            }
            2 => {
                let token = tokens[usize::from(y) % tokens.len()];
                let _ = eps[app].reply(token, vec![1; usize::from(op) % 40]);
            }
            3 => {
                // The instance is replaced; the old endpoint lives on a little.
                let new = broker.endpoint(APPS[app]).unwrap();
                old.push(std::mem::replace(&mut eps[app], new));
            }
            4 => {
                for o in &old {
                    assert!(o.try_recv().is_none(), "a superseded endpoint took a message");
                }
            }
            5 => {
                let _ = console.send_from_console(to, vec![2; usize::from(x) % 40]);
            }
            _ => {
                while let Some(m) = console.try_recv() {
                    assert!(m.body.len() <= LIMITS.message);
                }
            }
        }
        for a in APPS {
            let c = broker.counters(a).unwrap();
            assert!(c.queued <= LIMITS.messages as u64, "{a} holds {} messages", c.queued);
        }
    }
});
