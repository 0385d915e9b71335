//! The VyomaOS guest SDK: what a `wasm32-wasip2` app uses to talk to other apps on the
//! same VyomaOS instance, on top of plain WASI.
//!
//! ```no_run
//! use vyoma_sdk::ipc;
//!
//! // Send a line to the `logger` app (its manifest must accept us, ours must allow it).
//! ipc::send("logger", b"hello").unwrap();
//! // Serve requests: echo every message back to whoever sent it.
//! loop {
//!     let m = ipc::recv();
//!     if m.reply_token.is_some() {
//!         let _ = ipc::reply(&m, &m.body);
//!     }
//! }
//! ```
//!
//! What it is for: thin, typed wrappers over the `vyoma:app/ipc` and `vyoma:app/lifecycle`
//! WIT interfaces (in the repository's `wit/`), plus the WASI pieces needed to wait on several things at once
//! ([`poll`], [`clock`]). An app that uses only WASI does not need this crate, and keeps
//! working unchanged.
//!
//! What it is not for: anything the supervisor decides. The sender's name on a message is
//! set by the supervisor; grants and inbox bounds come from the apps' `app.toml`.

use std::time::Duration;

mod bindings {
    wit_bindgen::generate!({
        inline: "
            package vyoma:sdk;
            world sdk {
                include vyoma:app/app@0.1.0;
                import wasi:io/poll@0.2.12;
                import wasi:clocks/monotonic-clock@0.2.12;
            }
        ",
        path: "../../wit",
        world: "vyoma:sdk/sdk",
        generate_all,
    });
}

pub mod display;
pub use display::input;

/// Waiting on several pollables at once (`wasi:io/poll`): an IPC inbox from
/// [`ipc::subscribe`], a timer from [`clock::after`], and any other WASI pollable.
pub mod poll {
    pub use crate::bindings::wasi::io::poll::{Pollable, poll};
}

/// The monotonic clock (`wasi:clocks/monotonic-clock`).
pub mod clock {
    use std::time::Duration;

    use crate::bindings::wasi::clocks::monotonic_clock;
    pub use crate::poll::Pollable;

    /// Nanoseconds on the monotonic clock.
    pub fn now_ns() -> u64 {
        monotonic_clock::now()
    }

    /// A pollable that becomes ready after `d`.
    pub fn after(d: Duration) -> Pollable {
        monotonic_clock::subscribe_duration(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}

/// The app's own lifecycle (`vyoma:app/lifecycle`): learning that the supervisor asks it
/// to end, so it can finish its work first.
///
/// An app that uses this module is stopped gracefully: `stop`, a shutdown or an update
/// asks it to end, and it has its manifest's `[lifecycle] stop_timeout` (default 5 s) to
/// return from `main` before it is killed. An app that does not use it is killed at once.
///
/// ```no_run
/// use std::time::Duration;
/// use vyoma_sdk::{clock, ipc, lifecycle, poll};
///
/// let stop = lifecycle::subscribe_stop();
/// let inbox = ipc::subscribe();
/// loop {
///     let ready = poll::poll(&[&stop, &inbox, &clock::after(Duration::from_secs(1))]);
///     if ready.contains(&0) {
///         break; // flush state, then return from main
///     }
///     while let Some(m) = ipc::try_recv() {
///         // handle m
///         let _ = m;
///     }
/// }
/// ```
pub mod lifecycle {
    use crate::bindings::vyoma::app::lifecycle as wit;
    pub use crate::poll::Pollable;

    /// Whether the supervisor has asked this instance to end; never blocks.
    pub fn stop_requested() -> bool {
        wit::stop_requested()
    }

    /// A pollable that becomes ready when the supervisor asks this instance to end;
    /// combine it with other pollables in [`crate::poll::poll`].
    pub fn subscribe_stop() -> Pollable {
        wit::subscribe_stop()
    }
}

/// Messages between apps, carried by the supervisor (`vyoma:app/ipc`).
///
/// Every function addresses apps by name. Sending needs two grants: this app's
/// `[capabilities.ipc] send` must list the receiver, and the receiver's `accept` must list
/// this app; otherwise the call fails with [`Error::NotPermitted`] naming the missing grant.
pub mod ipc {
    use super::Duration;
    use crate::bindings::vyoma::app::ipc as wit;
    pub use crate::bindings::vyoma::app::ipc::{Error, Message};
    pub use crate::poll::Pollable;

    fn ms(d: Duration) -> u32 {
        u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
    }

    /// Queues `body` for app `to` and returns at once; [`Error::Full`] if its inbox has no
    /// room.
    pub fn send(to: &str, body: impl AsRef<[u8]>) -> Result<(), Error> {
        wit::send(to, body.as_ref())
    }

    /// Queues each of `bodies` for app `to`, in order, and returns at once how many were
    /// queued: the first ones, up to the first that did not fit (a full inbox, or too
    /// large). When not even the first fits, the error says why. One call costs about what
    /// one [`send`] costs, so batching many small messages multiplies the rate.
    ///
    /// ```no_run
    /// # use vyoma_sdk::ipc;
    /// let batch: Vec<Vec<u8>> = (0..64u32).map(|i| i.to_le_bytes().to_vec()).collect();
    /// let mut rest = &batch[..];
    /// while !rest.is_empty() {
    ///     match ipc::send_many("sink", rest) {
    ///         Ok(n) => rest = &rest[n..],
    ///         Err(ipc::Error::Full) => std::thread::yield_now(), // or send_wait the next one
    ///         Err(e) => panic!("{e:?}"),
    ///     }
    /// }
    /// ```
    pub fn send_many(to: &str, bodies: &[Vec<u8>]) -> Result<usize, Error> {
        wit::send_many(to, bodies).map(|n| n as usize)
    }

    /// Like [`send`], but waits up to `timeout` for room in a full inbox.
    pub fn send_wait(to: &str, body: impl AsRef<[u8]>, timeout: Duration) -> Result<(), Error> {
        wit::send_wait(to, body.as_ref(), ms(timeout))
    }

    /// The oldest waiting message, if any; never blocks.
    pub fn try_recv() -> Option<Message> {
        wit::try_recv()
    }

    /// Waits for the next message.
    pub fn recv() -> Message {
        loop {
            if let Some(m) = wit::recv(None) {
                return m;
            }
        }
    }

    /// Waits up to `timeout` for the next message.
    pub fn recv_timeout(timeout: Duration) -> Option<Message> {
        wit::recv(Some(ms(timeout)))
    }

    /// Waits for the next message, then takes it and whatever else is waiting, up to `max`
    /// messages (at least one, unless `max` is 0). One call costs about what one [`recv`]
    /// costs.
    ///
    /// ```no_run
    /// # use vyoma_sdk::ipc;
    /// loop {
    ///     for m in &ipc::recv_many(64) {
    ///         if m.reply_token.is_some() {
    ///             let _ = m.reply(m.body);
    ///         }
    ///     }
    /// }
    /// ```
    pub fn recv_many(max: usize) -> Batch {
        if max == 0 {
            return Batch::from(wit::recv_many(0, Some(0)));
        }
        loop {
            let b = Batch::from(wit::recv_many(clamp(max), None));
            if !b.is_empty() {
                return b;
            }
        }
    }

    /// Like [`recv_many`], waiting up to `timeout` for the first message (`Duration::ZERO`
    /// never waits); empty if none came.
    pub fn recv_many_timeout(max: usize, timeout: Duration) -> Batch {
        Batch::from(wit::recv_many(clamp(max), Some(ms(timeout))))
    }

    fn clamp(n: usize) -> u32 {
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Messages taken at once by [`recv_many`]; iterate over it for each [`Envelope`].
    #[derive(Debug)]
    pub struct Batch {
        raw: wit::Batch,
        /// Where each message's body starts in `raw.bodies` (one more at the end).
        starts: Vec<usize>,
    }

    impl From<wit::Batch> for Batch {
        fn from(raw: wit::Batch) -> Batch {
            let mut starts = Vec::with_capacity(raw.envelopes.len() + 1);
            let mut at = 0usize;
            starts.push(at);
            for e in &raw.envelopes {
                at += e.size as usize;
                starts.push(at);
            }
            assert!(
                at == raw.bodies.len() && raw.envelopes.iter().all(|e| (e.sender as usize) < raw.senders.len()),
                "the supervisor sent a malformed batch"
            );
            Batch { raw, starts }
        }
    }

    impl Batch {
        /// How many messages it holds.
        pub fn len(&self) -> usize {
            self.raw.envelopes.len()
        }

        /// Whether it holds none.
        pub fn is_empty(&self) -> bool {
            self.raw.envelopes.is_empty()
        }

        /// The `i`th message, oldest first.
        pub fn get(&self, i: usize) -> Option<Envelope<'_>> {
            let e = self.raw.envelopes.get(i)?;
            Some(Envelope {
                sender: &self.raw.senders[e.sender as usize],
                body: &self.raw.bodies[self.starts[i]..self.starts[i + 1]],
                reply_token: e.reply_token,
            })
        }

        /// The messages, oldest first.
        pub fn iter(&self) -> impl ExactSizeIterator<Item = Envelope<'_>> {
            (0..self.len()).map(|i| self.get(i).expect("in range"))
        }
    }

    impl<'a> IntoIterator for &'a Batch {
        type Item = Envelope<'a>;
        type IntoIter = Box<dyn ExactSizeIterator<Item = Envelope<'a>> + 'a>;

        fn into_iter(self) -> Self::IntoIter {
            Box::new(self.iter())
        }
    }

    /// One message of a [`Batch`], borrowed from it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Envelope<'a> {
        /// The app that sent it (set by the supervisor).
        pub sender: &'a str,
        /// The contents.
        pub body: &'a [u8],
        /// Present when the sender waits for an answer.
        pub reply_token: Option<u64>,
    }

    impl Envelope<'_> {
        /// Answers this message, as [`reply`] does.
        pub fn reply(&self, body: impl AsRef<[u8]>) -> Result<(), Error> {
            reply_token(self.sender, self.reply_token, body.as_ref())
        }

        /// The body as text (invalid UTF-8 replaced).
        pub fn text(&self) -> std::borrow::Cow<'_, str> {
            String::from_utf8_lossy(self.body)
        }
    }

    /// A pollable that is ready while a message is waiting; combine it with other
    /// pollables in [`crate::poll::poll`].
    pub fn subscribe() -> Pollable {
        wit::subscribe()
    }

    /// Sends `body` to `to` as a request and waits up to `timeout` for the answer.
    pub fn request(to: &str, body: impl AsRef<[u8]>, timeout: Duration) -> Result<Vec<u8>, Error> {
        wit::request(to, body.as_ref(), ms(timeout))
    }

    /// Answers `request`, a message that carries a reply token (a request from another app,
    /// or a message from the operator console). [`Error::NotPermitted`] if it carries none
    /// or was already answered.
    pub fn reply(request: &Message, body: impl AsRef<[u8]>) -> Result<(), Error> {
        reply_token(&request.sender, request.reply_token, body.as_ref())
    }

    fn reply_token(sender: &str, token: Option<u64>, body: &[u8]) -> Result<(), Error> {
        match token {
            Some(t) => wit::reply(t, body),
            None => Err(Error::NotPermitted(format!(
                "the message from `{sender}` is not a request: send to it instead"
            ))),
        }
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(m: &Message) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&m.body)
    }
}
