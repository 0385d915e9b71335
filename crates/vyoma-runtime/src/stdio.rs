//! App stdout/stderr: WASI output streams that write into the app's [`AppLog`].
//!
//! Writes go straight into the bounded ring under a short lock: no buffer, no task, no
//! thread per app. Followers (`logf`) learn of new lines through a watch channel.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::watch;
use vyoma_lifecycle::{LogLine, LogRing, Stream};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// One app's captured output, shared by its instances (it survives restarts) and read by
/// the console.
#[derive(Debug)]
pub struct AppLog {
    ring: Mutex<LogRing>,
    next_seq: watch::Sender<u64>,
}

impl AppLog {
    /// A log holding at most `capacity` bytes.
    pub fn new(capacity: usize) -> Arc<AppLog> {
        Arc::new(AppLog {
            ring: Mutex::new(LogRing::new(capacity)),
            next_seq: watch::Sender::new(0),
        })
    }

    fn with_ring<R>(&self, f: impl FnOnce(&mut LogRing) -> R) -> R {
        // A panic while holding this lock cannot leave the ring inconsistent in a way that
        // matters for logs, so a poisoned lock is used as is.
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let r = f(&mut ring);
        let seq = ring.next_seq();
        drop(ring);
        self.next_seq.send_if_modified(|s| std::mem::replace(s, seq) != seq);
        r
    }

    /// Appends raw output from the app.
    pub fn write(&self, stream: Stream, data: &[u8]) {
        self.with_ring(|r| r.write(stream, data, SystemTime::now()));
    }

    /// Completes partial lines (the instance ended).
    pub fn flush(&self) {
        self.with_ring(|r| r.flush(SystemTime::now()));
    }

    /// Adds a line from the supervisor about this app (shown as stream `sys`).
    pub fn note(&self, text: &str) {
        self.with_ring(|r| r.note(Stream::System, text, SystemTime::now()));
    }

    /// Held lines with `seq >= from`, and the sequence number to ask for next.
    pub fn since(&self, from: u64) -> (Vec<LogLine>, u64) {
        self.with_ring(|r| (r.since(from).cloned().collect(), r.next_seq()))
    }

    /// Lines evicted so far to stay within the budget, and bytes held.
    pub fn usage(&self) -> (u64, usize, usize) {
        self.with_ring(|r| (r.dropped(), r.bytes(), r.capacity()))
    }

    /// A receiver that changes whenever lines are added.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.next_seq.subscribe()
    }
}

/// A WASI stdout or stderr that feeds an [`AppLog`].
#[derive(Debug, Clone)]
pub(crate) struct LogOutput {
    pub log: Arc<AppLog>,
    pub stream: Stream,
}

impl IsTerminal for LogOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

/// How much one `write` may carry; the ring bounds what is kept, this bounds one call.
const WRITE_BUDGET: usize = 64 * 1024;

#[wasmtime_wasi::async_trait]
impl Pollable for LogOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for LogOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.log.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_BUDGET)
    }
}

impl tokio::io::AsyncWrite for LogOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.log.write(self.stream, buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
