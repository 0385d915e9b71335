//! The host side of `vyoma:app/ipc` (WIT in `wit/ipc.wit`): each call is carried out on
//! the instance's broker [`Endpoint`], which stamps the app's own name on what it sends.
//!
//! Calls that never wait (`send`, `try-recv`, `reply`, `subscribe`) are plain host
//! functions; calls that may wait (`send-wait`, `recv`, `request`) are async, so a waiting
//! app is a parked future that costs no OS thread and can be killed mid-wait.

use std::time::Duration;

use vyoma_ipc::{Endpoint, IpcError, Readiness};
use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::p2::{DynPollable, Pollable};

use crate::AppLog;

use crate::bindings::vyoma::app::ipc::{Batch, Envelope, Error, Host, Message};

/// The interface name apps import, for telling whether an app reads IPC at all.
pub const IPC_INTERFACE: &str = "vyoma:app/ipc";

fn to_wit(e: IpcError) -> Error {
    match e {
        IpcError::UnknownApp(n) => Error::UnknownApp(n),
        IpcError::NotPermitted(why) => Error::NotPermitted(why),
        IpcError::Full => Error::Full,
        IpcError::Timeout => Error::Timeout,
        IpcError::TooLarge { limit, .. } => Error::TooLarge(u32::try_from(limit).unwrap_or(u32::MAX)),
    }
}

fn message(m: vyoma_ipc::Message) -> Message {
    Message {
        sender: m.sender.to_string(),
        body: m.body,
        reply_token: m.reply_token,
    }
}

/// Lays `messages` out as a WIT `batch`: each sender named once, bodies back to back.
fn batch(messages: Vec<vyoma_ipc::Message>) -> Batch {
    let mut out = Batch {
        senders: Vec::new(),
        envelopes: Vec::with_capacity(messages.len()),
        bodies: Vec::with_capacity(messages.iter().map(|m| m.body.len()).sum()),
    };
    // Senders' indices by name; consecutive messages usually share a sender.
    let mut index: std::collections::HashMap<std::sync::Arc<str>, u32, foldhash::fast::RandomState> =
        Default::default();
    let mut last: Option<(std::sync::Arc<str>, u32)> = None;
    for m in messages {
        let sender = match &last {
            Some((name, i)) if std::sync::Arc::ptr_eq(name, &m.sender) => *i,
            _ => {
                let next = out.senders.len() as u32;
                let i = *index.entry(m.sender.clone()).or_insert_with(|| {
                    out.senders.push(m.sender.to_string());
                    next
                });
                last = Some((m.sender.clone(), i));
                i
            }
        };
        out.envelopes.push(Envelope {
            sender,
            // A body is within its inbox's message limit, which a manifest keeps far
            // below 4 GiB.
            size: u32::try_from(m.body.len()).unwrap_or(u32::MAX),
            reply_token: m.reply_token,
        });
        out.bodies.extend_from_slice(&m.body);
    }
    out
}

fn ms(n: u32) -> Duration {
    Duration::from_millis(u64::from(n))
}

/// What `vyoma:app/ipc` sees of the store: the instance's broker endpoint, its app's log
/// (for noting refusals) and the resource table its pollables go in.
#[derive(Debug)]
pub struct IpcView<'a> {
    /// The endpoint, which stamps the app's name on what it sends.
    pub endpoint: &'a mut Endpoint,
    /// The app's log.
    pub log: &'a AppLog,
    /// The instance's resource table.
    pub table: &'a mut ResourceTable,
}

/// [`HasData`] for the linker: projects the store data onto an [`IpcView`].
pub struct HasIpc;

impl HasData for HasIpc {
    type Data<'a> = IpcView<'a>;
}

impl IpcView<'_> {
    /// Refusals are the app's business first (it gets the error), and the operator's: a
    /// missing grant is noted in the app's log.
    fn refused<T>(&self, to: &str, r: Result<T, IpcError>) -> Result<T, Error> {
        r.map_err(|e| {
            if let IpcError::NotPermitted(why) = &e {
                self.log.note(&format!("ipc: message to `{to}` refused: {why}"));
                tracing::info!(app = %self.endpoint.name(), %to, %why, "ipc refused");
            }
            to_wit(e)
        })
    }
}

impl Host for IpcView<'_> {
    fn send(&mut self, to: String, body: Vec<u8>) -> Result<(), Error> {
        let r = self.endpoint.send(&to, body);
        self.refused(&to, r)
    }

    fn send_many(&mut self, to: String, bodies: Vec<Vec<u8>>) -> Result<u32, Error> {
        let r = self.endpoint.send_many(&to, bodies);
        // At most as many as the guest passed in one list, which fits a u32.
        self.refused(&to, r).map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn send_wait(&mut self, to: String, body: Vec<u8>, timeout_ms: u32) -> Result<(), Error> {
        let r = self.endpoint.send_wait(&to, body, ms(timeout_ms)).await;
        self.refused(&to, r)
    }

    fn try_recv(&mut self) -> Option<Message> {
        self.endpoint.try_recv().map(message)
    }

    async fn recv(&mut self, timeout_ms: Option<u32>) -> Option<Message> {
        self.endpoint.recv(timeout_ms.map(ms)).await.map(message)
    }

    async fn recv_many(&mut self, max: u32, timeout_ms: Option<u32>) -> Batch {
        batch(self.endpoint.recv_many(max as usize, timeout_ms.map(ms)).await)
    }

    fn subscribe(&mut self) -> wasmtime::Result<Resource<DynPollable>> {
        let ready = self.table.push(InboxPollable(self.endpoint.readiness()))?;
        wasmtime_wasi::p2::subscribe(self.table, ready)
    }

    async fn request(&mut self, to: String, body: Vec<u8>, timeout_ms: u32) -> Result<Vec<u8>, Error> {
        let r = self.endpoint.request(&to, body, ms(timeout_ms)).await;
        self.refused(&to, r)
    }

    fn reply(&mut self, token: u64, body: Vec<u8>) -> Result<(), Error> {
        self.endpoint.reply(token, body).map_err(to_wit)
    }
}

/// The pollable behind `subscribe`: ready while a message waits in the inbox.
struct InboxPollable(Readiness);

#[wasmtime_wasi::async_trait]
impl Pollable for InboxPollable {
    async fn ready(&mut self) {
        self.0.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn m(sender: &Arc<str>, body: &[u8], token: Option<u64>) -> vyoma_ipc::Message {
        vyoma_ipc::Message {
            sender: sender.clone(),
            body: body.to_vec(),
            reply_token: token,
        }
    }

    #[test]
    fn a_batch_names_each_sender_once_and_lays_bodies_back_to_back() {
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        // Another `Arc` with the same name (an app removed and deployed again) is the
        // same sender.
        let a2: Arc<str> = "a".into();
        let out = batch(vec![
            m(&a, b"one", None),
            m(&a, b"", Some(7)),
            m(&b, b"three", None),
            m(&a2, b"4", None),
        ]);
        assert_eq!(out.senders, ["a", "b"]);
        let shape: Vec<(u32, u32, Option<u64>)> = out
            .envelopes
            .iter()
            .map(|e| (e.sender, e.size, e.reply_token))
            .collect();
        assert_eq!(shape, [(0, 3, None), (0, 0, Some(7)), (1, 5, None), (0, 1, None)]);
        assert_eq!(out.bodies, b"onethree4");
    }

    #[test]
    fn an_empty_batch_is_empty() {
        let out = batch(Vec::new());
        assert!(out.senders.is_empty() && out.envelopes.is_empty() && out.bodies.is_empty());
    }
}
