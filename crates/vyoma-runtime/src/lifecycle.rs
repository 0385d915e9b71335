//! The host side of `vyoma:app/lifecycle` (WIT in `wit/lifecycle.wit`): an instance learns
//! that the supervisor asks it to end, by asking or by polling, and has its stop timeout to
//! do so. The request is a [`StopSignal`] the supervisor holds for each instance.

use tokio::sync::watch;
use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::p2::{DynPollable, Pollable};

use crate::bindings::vyoma::app::lifecycle::Host;

/// The interface name apps import, for telling whether an app listens for stop requests.
pub const LIFECYCLE_INTERFACE: &str = "vyoma:app/lifecycle";

/// The supervisor's side of one instance's stop request.
#[derive(Debug)]
pub struct StopSignal(watch::Sender<bool>);

impl StopSignal {
    /// A signal not yet raised, and the instance's side of it.
    pub fn new() -> (StopSignal, StopRequest) {
        let (tx, rx) = watch::channel(false);
        (StopSignal(tx), StopRequest(rx))
    }

    /// Asks the instance to end.
    pub fn raise(&self) {
        self.0.send_replace(true);
    }
}

/// The instance's side of its stop request.
#[derive(Debug, Clone)]
pub struct StopRequest(watch::Receiver<bool>);

impl StopRequest {
    /// A request that is never raised (for instances nobody will ask).
    pub fn never() -> StopRequest {
        StopSignal::new().1
    }

    fn raised(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until the instance is asked to end (forever if the signal is dropped unraised).
    pub async fn requested(mut self) {
        if self.0.wait_for(|r| *r).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// What `vyoma:app/lifecycle` sees of the store: the instance's stop request and the
/// resource table its pollables go in.
#[derive(Debug)]
pub struct LifecycleView<'a> {
    /// The request.
    pub request: &'a StopRequest,
    /// The instance's resource table.
    pub table: &'a mut ResourceTable,
}

/// [`HasData`] for the linker: projects the store data onto a [`LifecycleView`].
pub struct HasLifecycle;

impl HasData for HasLifecycle {
    type Data<'a> = LifecycleView<'a>;
}

impl Host for LifecycleView<'_> {
    fn stop_requested(&mut self) -> bool {
        self.request.raised()
    }

    fn subscribe_stop(&mut self) -> wasmtime::Result<Resource<DynPollable>> {
        let ready = self.table.push(StopPollable(self.request.0.clone()))?;
        wasmtime_wasi::p2::subscribe(self.table, ready)
    }
}

/// The pollable behind `subscribe-stop`: ready once the stop request is raised.
struct StopPollable(watch::Receiver<bool>);

#[wasmtime_wasi::async_trait]
impl Pollable for StopPollable {
    async fn ready(&mut self) {
        // `wait_for` returns at once if it is already raised; an error means the
        // supervisor dropped its side, and then nobody will ever ask: never ready.
        if self.0.wait_for(|raised| *raised).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_pollable_becomes_ready_when_the_stop_is_raised() {
        let (signal, request) = StopSignal::new();
        let mut table = ResourceTable::new();
        let mut view = LifecycleView {
            request: &request,
            table: &mut table,
        };
        assert!(!view.stop_requested());
        let mut p = StopPollable(request.0.clone());
        let early = tokio::time::timeout(std::time::Duration::from_millis(20), p.ready()).await;
        assert!(early.is_err(), "ready before the stop was asked for");
        signal.raise();
        assert!(view.stop_requested());
        tokio::time::timeout(std::time::Duration::from_secs(5), p.ready())
            .await
            .expect("ready once asked");
        // A subscription is a real table entry the guest can poll.
        let r = view.subscribe_stop().unwrap();
        assert!(table.get(&r).is_ok());
    }
}
