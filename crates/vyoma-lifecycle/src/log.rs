//! An app's captured output: a ring of timestamped lines bounded in bytes.
//!
//! Output arrives in arbitrary chunks; a line is complete at `\n`. A partial line is held
//! per stream until it ends, or until it reaches [`LogRing::MAX_LINE`] bytes, when it is
//! cut so one endless line cannot grow memory either. When the ring is over its byte
//! budget, the oldest lines go first and are counted in [`LogRing::dropped`].

use std::collections::VecDeque;
use std::fmt;
use std::time::SystemTime;

/// Which output stream a line came from (in JSON, the word the console shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Stream {
    /// Standard output.
    #[serde(rename = "out")]
    Stdout,
    /// Standard error.
    #[serde(rename = "err")]
    Stderr,
    /// A line from the supervisor about the app (started, exited, restarting, ...).
    #[serde(rename = "sys")]
    System,
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stream::Stdout => "out",
            Stream::Stderr => "err",
            Stream::System => "sys",
        })
    }
}

/// One captured line. In JSON: `{"seq": 7, "at": "2026-11-29T05:38:41.123Z", "stream":
/// "out", "text": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogLine {
    /// Position in the app's whole output history, from 0; never reused.
    pub seq: u64,
    /// When the line was completed.
    #[serde(with = "crate::wire::rfc3339")]
    pub at: SystemTime,
    /// Which stream.
    pub stream: Stream,
    /// The text, without the trailing newline; invalid UTF-8 replaced.
    pub text: String,
}

/// Fixed bookkeeping charged per line on top of its text, so a flood of empty lines is
/// bounded too.
const LINE_OVERHEAD: usize = 48;

/// The bounded ring.
#[derive(Debug, Clone)]
pub struct LogRing {
    capacity: usize,
    bytes: usize,
    lines: VecDeque<LogLine>,
    next_seq: u64,
    dropped: u64,
    partial: [Vec<u8>; 2],
}

impl LogRing {
    /// Longest line kept whole; longer lines are cut into pieces of this size.
    pub const MAX_LINE: usize = 4096;

    /// A ring holding at most `capacity` bytes of lines (text plus a small per-line cost).
    pub fn new(capacity: usize) -> Self {
        LogRing {
            capacity: capacity.max(LINE_OVERHEAD + 1),
            bytes: 0,
            lines: VecDeque::new(),
            next_seq: 0,
            dropped: 0,
            partial: [Vec::new(), Vec::new()],
        }
    }

    /// Appends output of `stream` (stdout or stderr; [`Stream::System`] lines are whole and
    /// go through [`LogRing::note`]); returns how many complete lines it added.
    pub fn write(&mut self, stream: Stream, mut data: &[u8], now: SystemTime) -> usize {
        if stream == Stream::System {
            let text = String::from_utf8_lossy(data);
            self.note(Stream::System, text.trim_end_matches('\n'), now);
            return 1;
        }
        let mut added = 0;
        let idx = stream as usize;
        while !data.is_empty() {
            let room = Self::MAX_LINE - self.partial[idx].len();
            let take = data.len().min(room);
            match data[..take].iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    self.partial[idx].extend_from_slice(&data[..nl]);
                    data = &data[nl + 1..];
                    self.finish(stream, now);
                    added += 1;
                }
                None => {
                    self.partial[idx].extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.partial[idx].len() >= Self::MAX_LINE {
                        self.finish(stream, now);
                        added += 1;
                    }
                }
            }
        }
        added
    }

    /// Completes any partial lines (the instance ended without a final newline).
    pub fn flush(&mut self, now: SystemTime) -> usize {
        let mut added = 0;
        for stream in [Stream::Stdout, Stream::Stderr] {
            if !self.partial[stream as usize].is_empty() {
                self.finish(stream, now);
                added += 1;
            }
        }
        added
    }

    /// Adds a whole line written by the supervisor itself (e.g. "started", "exited: ...").
    pub fn note(&mut self, stream: Stream, text: &str, now: SystemTime) {
        self.push(stream, text.to_string(), now);
    }

    fn finish(&mut self, stream: Stream, now: SystemTime) {
        let raw = std::mem::take(&mut self.partial[stream as usize]);
        let text = match String::from_utf8(raw) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        let text = text.strip_suffix('\r').map(str::to_string).unwrap_or(text);
        self.push(stream, text, now);
    }

    fn push(&mut self, stream: Stream, text: String, at: SystemTime) {
        self.bytes += text.len() + LINE_OVERHEAD;
        self.lines.push_back(LogLine {
            seq: self.next_seq,
            at,
            stream,
            text,
        });
        self.next_seq += 1;
        while self.bytes > self.capacity {
            let Some(old) = self.lines.pop_front() else { break };
            self.bytes -= old.text.len() + LINE_OVERHEAD;
            self.dropped += 1;
        }
    }

    /// Lines still held, oldest first.
    pub fn lines(&self) -> impl Iterator<Item = &LogLine> {
        self.lines.iter()
    }

    /// Held lines with `seq >= from`, oldest first.
    pub fn since(&self, from: u64) -> impl Iterator<Item = &LogLine> {
        let first = self.lines.front().map_or(self.next_seq, |l| l.seq);
        let skip = from.saturating_sub(first) as usize;
        self.lines.iter().skip(skip)
    }

    /// The sequence number the next line will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// How many lines were evicted to stay within capacity.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Bytes charged for the held lines (at most the capacity).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The byte budget.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> SystemTime {
        SystemTime::UNIX_EPOCH
    }

    fn texts(r: &LogRing) -> Vec<(Stream, String)> {
        r.lines().map(|l| (l.stream, l.text.clone())).collect()
    }

    #[test]
    fn joins_chunks_into_lines_per_stream() {
        let mut r = LogRing::new(1 << 16);
        assert_eq!(r.write(Stream::Stdout, b"hel", t()), 0);
        assert_eq!(r.write(Stream::Stderr, b"oops\n", t()), 1);
        assert_eq!(r.write(Stream::Stdout, b"lo\nworld\r\nand", t()), 2);
        assert_eq!(r.flush(t()), 1);
        assert_eq!(
            texts(&r),
            [
                (Stream::Stderr, "oops".into()),
                (Stream::Stdout, "hello".into()),
                (Stream::Stdout, "world".into()),
                (Stream::Stdout, "and".into())
            ]
        );
        assert_eq!(r.lines().map(|l| l.seq).collect::<Vec<_>>(), [0, 1, 2, 3]);
    }

    #[test]
    fn stays_within_capacity_dropping_oldest() {
        let cap = 4096;
        let mut r = LogRing::new(cap);
        for i in 0..10_000 {
            r.write(Stream::Stdout, format!("line {i}\n").as_bytes(), t());
            assert!(r.bytes() <= cap);
        }
        let held: Vec<_> = r.lines().collect();
        assert_eq!(held.last().unwrap().text, "line 9999");
        assert_eq!(r.dropped() + held.len() as u64, 10_000);
        assert_eq!(r.next_seq(), 10_000);
    }

    #[test]
    fn endless_line_is_cut_and_bounded() {
        let mut r = LogRing::new(3 * (LogRing::MAX_LINE + LINE_OVERHEAD));
        let chunk = vec![b'x'; 1000];
        for _ in 0..100 {
            r.write(Stream::Stdout, &chunk, t());
        }
        assert!(r.lines().all(|l| l.text.len() == LogRing::MAX_LINE));
        assert!(r.bytes() <= r.capacity());
        assert_eq!(r.lines().count(), 3);
    }

    #[test]
    fn since_skips_what_a_follower_has_seen() {
        let mut r = LogRing::new(200);
        for i in 0..10 {
            r.note(Stream::Stdout, &format!("{i}"), t());
        }
        // Capacity holds 4 lines of 1 byte + overhead (49 each): seq 6..=9.
        let first = r.lines().next().unwrap().seq;
        assert_eq!(first, 6);
        assert_eq!(r.since(0).count(), 4);
        assert_eq!(r.since(8).map(|l| l.seq).collect::<Vec<_>>(), [8, 9]);
        assert_eq!(r.since(10).count(), 0);
    }

    #[test]
    fn supervisor_lines_are_whole_and_tagged() {
        let mut r = LogRing::new(1024);
        r.write(Stream::Stdout, b"half", t());
        r.write(Stream::System, b"exited: exit code 0\n", t());
        r.flush(t());
        assert_eq!(
            texts(&r),
            [
                (Stream::System, "exited: exit code 0".into()),
                (Stream::Stdout, "half".into())
            ]
        );
        assert_eq!(Stream::System.to_string(), "sys");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_lost() {
        let mut r = LogRing::new(1024);
        r.write(Stream::Stdout, b"a\xffb\n", t());
        assert_eq!(r.lines().next().unwrap().text, "a\u{fffd}b");
    }
}
