//! The console session: reads lines from a terminal, a serial line or a pipe, runs them,
//! prints the rendered replies and what apps send to `console`, and follows logs. It never
//! ends on bad input, only on `shutdown` or end of input.
//!
//! Everything it writes goes through [`terminal_safe`]; input lines are bounded while they
//! are read ([`LineReader`]), so a newline-free stream costs at most [`MAX_LINE`] bytes.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc::UnboundedReceiver;
use vyoma_lifecycle::LogLine;

use super::exec::execute;
use crate::Supervisor;
use vyoma_control::{Command, MAX_LINE, Reply, render, render_line, render_message, terminal_safe};

/// How the console loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleEnd {
    /// The operator typed `shutdown`.
    Shutdown,
    /// Input ended (EOF).
    EndOfInput,
}

/// One line of input, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A line (without its newline).
    Line(String),
    /// A line longer than the limit: its length; its bytes were discarded as they came.
    TooLong(usize),
    /// A line that is not UTF-8.
    NotUtf8,
}

/// Reads lines of at most `max` bytes. Longer lines are discarded while they arrive (never
/// held), and reported as [`Input::TooLong`] once their newline comes. Cancel-safe: the
/// line read so far lives in the reader, and input is consumed only after it is copied.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    max: usize,
    buf: Vec<u8>,
    /// Bytes of the current line, counted past the limit.
    seen: usize,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    /// A reader of lines up to `max` bytes.
    pub fn new(inner: R, max: usize) -> Self {
        LineReader {
            inner,
            max,
            buf: Vec::new(),
            seen: 0,
        }
    }

    /// The next line, or `None` at end of input (a last line without newline counts).
    pub async fn next_line(&mut self) -> std::io::Result<Option<Input>> {
        loop {
            let chunk = self.inner.fill_buf().await?;
            if chunk.is_empty() {
                if self.seen == 0 {
                    return Ok(None);
                }
                return Ok(Some(self.take()));
            }
            let (part, used, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(nl) => (&chunk[..nl], nl + 1, true),
                None => (chunk, chunk.len(), false),
            };
            let room = self.max.saturating_sub(self.buf.len());
            if self.seen + part.len() <= self.max {
                self.buf.extend_from_slice(part);
            } else {
                // Over the limit: keep counting, stop holding.
                self.buf.extend_from_slice(&part[..part.len().min(room)]);
            }
            self.seen += part.len();
            self.inner.consume(used);
            if done {
                return Ok(Some(self.take()));
            }
        }
    }

    /// Bytes of the current, unfinished line held now (at most the limit).
    pub fn held(&self) -> usize {
        self.buf.len()
    }

    fn take(&mut self) -> Input {
        let seen = std::mem::take(&mut self.seen);
        let bytes = std::mem::take(&mut self.buf);
        if seen > self.max {
            return Input::TooLong(seen);
        }
        let mut bytes = bytes;
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        match String::from_utf8(bytes) {
            Ok(s) => Input::Line(s),
            Err(_) => Input::NotUtf8,
        }
    }
}

/// Writes `text` made terminal-safe, and flushes.
async fn emit<W: AsyncWrite + Unpin>(out: &mut W, text: &str) -> std::io::Result<()> {
    out.write_all(terminal_safe(text).as_bytes()).await?;
    out.flush().await
}

/// Runs the console until `shutdown` or end of input. `interrupts` fires on Ctrl-C; it
/// stops a `logf` and is otherwise ignored (so Ctrl-C never kills the supervisor by
/// accident). With `prompt`, a prompt is shown before each command.
pub async fn run<R, W>(
    sup: &Supervisor,
    input: R,
    mut out: W,
    prompt: bool,
    mut interrupts: UnboundedReceiver<()>,
) -> std::io::Result<ConsoleEnd>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut lines = LineReader::new(input, MAX_LINE);
    let mut pending: Option<Input> = None;
    // What apps send or reply to the console, printed as it arrives.
    let inbox = sup.broker().console();
    loop {
        let input = match pending.take() {
            Some(l) => l,
            None => {
                if prompt {
                    emit(&mut out, "vyoma> ").await?;
                }
                tokio::select! {
                    l = lines.next_line() => match l? {
                        Some(l) => l,
                        None => return Ok(ConsoleEnd::EndOfInput),
                    },
                    Some(()) = interrupts.recv() => {
                        emit(&mut out, "\n(interrupt: type `shutdown` to stop VyomaOS)\n").await?;
                        continue;
                    }
                    Some(m) = inbox.recv(None) => {
                        let mut s = if prompt { "\n".to_string() } else { String::new() };
                        render_message(&mut s, &m.sender, &m.body);
                        emit(&mut out, &s).await?;
                        continue;
                    }
                }
            }
        };
        let line = match input {
            Input::Line(l) => l,
            Input::TooLong(n) => {
                emit(
                    &mut out,
                    &format!("error: line too long ({n} bytes, at most {MAX_LINE}); ignored\n"),
                )
                .await?;
                continue;
            }
            Input::NotUtf8 => {
                emit(&mut out, "error: input is not valid UTF-8; line ignored\n").await?;
                continue;
            }
        };
        let reply = match Command::parse(&line) {
            Ok(cmd) => execute(sup, cmd).await,
            Err(e) => {
                emit(&mut out, &format!("error: {e}\n")).await?;
                continue;
            }
        };
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                emit(&mut out, &format!("error: {e}\n")).await?;
                continue;
            }
        };
        emit(&mut out, &render(&reply)).await?;
        match reply {
            Reply::ShutDown => return Ok(ConsoleEnd::Shutdown),
            Reply::Follow { app, duration } => {
                let log = match sup.log(&app) {
                    Ok(l) => l,
                    Err(e) => {
                        emit(&mut out, &format!("error: {e}\n")).await?;
                        continue;
                    }
                };
                let mut rx = log.subscribe();
                let (held, mut next_seq) = log.since(0);
                write_lines(&mut out, &held).await?;
                let deadline = duration.map(|d| tokio::time::Instant::now() + d);
                let sleep = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        r = rx.changed() => {
                            if r.is_err() { break; }
                            let (new, n) = log.since(next_seq);
                            next_seq = n;
                            write_lines(&mut out, &new).await?;
                        }
                        () = &mut sleep => break,
                        Some(()) = interrupts.recv() => break,
                        Some(m) = inbox.recv(None) => {
                            let mut s = String::new();
                            render_message(&mut s, &m.sender, &m.body);
                            emit(&mut out, &s).await?;
                        }
                        // With a duration, input waits its turn (scripts follow for a set
                        // time); without one, Enter stops following.
                        l = lines.next_line(), if duration.is_none() => {
                            match l? {
                                Some(Input::Line(l)) if l.trim().is_empty() => {}
                                Some(other) => pending = Some(other),
                                None => {
                                    emit(&mut out, "(stopped following)\n").await?;
                                    return Ok(ConsoleEnd::EndOfInput);
                                }
                            }
                            break;
                        }
                    }
                }
                emit(&mut out, "(stopped following)\n").await?;
            }
            _ => {}
        }
    }
}

/// Runs the console on this process's standard input and output (a terminal, a serial
/// line or a pipe), with a prompt when the input is a terminal. See [`run`].
pub async fn run_stdio(sup: &Supervisor, interrupts: UnboundedReceiver<()>) -> std::io::Result<ConsoleEnd> {
    let prompt = std::io::IsTerminal::is_terminal(&std::io::stdin());
    run(
        sup,
        tokio::io::BufReader::new(tokio::io::stdin()),
        tokio::io::stdout(),
        prompt,
        interrupts,
    )
    .await
}

/// Runs the console on standard input and output on a thread and Tokio runtime of its own,
/// so the operator is never queued behind busy apps on the apps' workers (Firecracker keeps
/// its API thread off the fast path the same way). The result arrives when the session
/// ends.
pub fn spawn_stdio(
    sup: &Supervisor,
    interrupts: UnboundedReceiver<()>,
) -> std::io::Result<tokio::sync::oneshot::Receiver<std::io::Result<ConsoleEnd>>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sup = sup.clone();
    std::thread::Builder::new()
        .name("vyoma-console".into())
        .spawn(move || {
            let ended = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .and_then(|rt| rt.block_on(run_stdio(&sup, interrupts)));
            let _ = tx.send(ended);
        })?;
    Ok(rx)
}

async fn write_lines<W: AsyncWrite + Unpin>(out: &mut W, lines: &[LogLine]) -> std::io::Result<()> {
    let mut s = String::new();
    for l in lines {
        render_line(&mut s, l);
    }
    emit(out, &s).await
}
