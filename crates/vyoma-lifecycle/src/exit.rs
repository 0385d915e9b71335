//! Why an app instance ended.

use std::fmt;

/// The kind of a WebAssembly trap, named as operators read them (in JSON, snake_case:
/// `memory_out_of_bounds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrapKind {
    /// `unreachable` executed; Rust panics and `abort()` end here.
    Unreachable,
    /// A load or store outside linear memory.
    MemoryOutOfBounds,
    /// The wasm call stack was exhausted.
    StackOverflow,
    /// Integer division by zero.
    IntegerDivisionByZero,
    /// Integer overflow (e.g. `i32::MIN / -1`).
    IntegerOverflow,
    /// Float to integer conversion out of range.
    BadConversionToInteger,
    /// Indirect call through a null table entry.
    IndirectCallToNull,
    /// Indirect call with the wrong signature.
    BadSignature,
    /// Table access out of bounds.
    TableOutOfBounds,
    /// Any other trap.
    Other,
}

impl fmt::Display for TrapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrapKind::Unreachable => "unreachable",
            TrapKind::MemoryOutOfBounds => "out-of-bounds memory access",
            TrapKind::StackOverflow => "stack overflow",
            TrapKind::IntegerDivisionByZero => "integer divide by zero",
            TrapKind::IntegerOverflow => "integer overflow",
            TrapKind::BadConversionToInteger => "invalid conversion to integer",
            TrapKind::IndirectCallToNull => "indirect call to null",
            TrapKind::BadSignature => "indirect call signature mismatch",
            TrapKind::TableOutOfBounds => "out-of-bounds table access",
            TrapKind::Other => "trap",
        })
    }
}

/// Why an app instance ended. Precise enough for the restart policy and for `ps`. In JSON,
/// an object whose `kind` names the variant (`{"kind": "code", "code": 1}`, `{"kind":
/// "trap", "trap": "unreachable", "message": "..."}`); see [`Wire`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "Wire", from = "Wire")]
pub enum ExitReason {
    /// The app exited with this code (`wasi:cli/exit`, or returning from `run`: 0 for ok,
    /// 1 for error).
    Code(i32),
    /// The app trapped.
    Trap {
        /// Which trap.
        kind: TrapKind,
        /// Wasmtime's message, including the wasm backtrace's first frame when known.
        message: String,
    },
    /// The app tried to grow its memory past its manifest limit and was stopped.
    MemoryLimit {
        /// The manifest limit, in bytes.
        limit: u64,
        /// The size it asked for, in bytes.
        requested: u64,
    },
    /// It tried to take memory (grow a linear memory, or start with one) that the memory
    /// budget all apps share could not cover, and was stopped.
    MemoryBudget {
        /// The shared budget, in bytes.
        limit: u64,
        /// Bytes all apps held when it asked.
        used: u64,
        /// Bytes it asked for.
        asked: u64,
    },
    /// The operator stopped it (`kill`, `restart`, `shutdown`).
    Killed,
    /// It did not finish starting (instantiation, start functions) within its start
    /// timeout, and was stopped.
    StartTimeout {
        /// The timeout.
        after: std::time::Duration,
    },
    /// It was asked to stop and did not end within its stop timeout, so it was killed.
    StopTimeout {
        /// The timeout.
        after: std::time::Duration,
    },
    /// It could not be started or failed inside the host (missing file, instantiation
    /// error, host error); the message says which.
    Error(String),
}

impl ExitReason {
    /// Whether this counts as a failure for the restart policy. An operator kill is
    /// neither: the policy never sees it.
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            ExitReason::Code(0) | ExitReason::Killed | ExitReason::StopTimeout { .. }
        )
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Code(c) => write!(f, "exit code {c}"),
            ExitReason::Trap { kind, message } if message.is_empty() => write!(f, "trap: {kind}"),
            ExitReason::Trap { kind, message } => write!(f, "trap: {kind}: {message}"),
            ExitReason::MemoryLimit { limit, requested } => write!(
                f,
                "out of memory limit: asked for {} bytes, limit is {} bytes",
                requested, limit
            ),
            ExitReason::MemoryBudget { limit, used, asked } => write!(
                f,
                "out of the apps' shared memory budget: asked for {asked} more bytes while all apps held {used} of {limit} bytes"
            ),
            ExitReason::Killed => f.write_str("killed by operator"),
            ExitReason::StartTimeout { after } => {
                write!(f, "did not start within {}", humantime::format_duration(*after))
            }
            ExitReason::StopTimeout { after } => write!(
                f,
                "killed: did not stop within {} of being asked",
                humantime::format_duration(*after)
            ),
            ExitReason::Error(m) => write!(f, "error: {m}"),
        }
    }
}

/// [`ExitReason`]'s JSON shape: every variant an object tagged by `kind`, durations in
/// milliseconds.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Wire {
    Code {
        code: i32,
    },
    Trap {
        trap: TrapKind,
        message: String,
    },
    MemoryLimit {
        limit: u64,
        requested: u64,
    },
    MemoryBudget {
        limit: u64,
        used: u64,
        asked: u64,
    },
    Killed,
    StartTimeout {
        #[serde(with = "crate::wire::millis")]
        after_ms: std::time::Duration,
    },
    StopTimeout {
        #[serde(with = "crate::wire::millis")]
        after_ms: std::time::Duration,
    },
    Error {
        message: String,
    },
}

impl From<ExitReason> for Wire {
    fn from(e: ExitReason) -> Wire {
        match e {
            ExitReason::Code(code) => Wire::Code { code },
            ExitReason::Trap { kind, message } => Wire::Trap { trap: kind, message },
            ExitReason::MemoryLimit { limit, requested } => Wire::MemoryLimit { limit, requested },
            ExitReason::MemoryBudget { limit, used, asked } => Wire::MemoryBudget { limit, used, asked },
            ExitReason::Killed => Wire::Killed,
            ExitReason::StartTimeout { after } => Wire::StartTimeout { after_ms: after },
            ExitReason::StopTimeout { after } => Wire::StopTimeout { after_ms: after },
            ExitReason::Error(message) => Wire::Error { message },
        }
    }
}

impl From<Wire> for ExitReason {
    fn from(w: Wire) -> ExitReason {
        match w {
            Wire::Code { code } => ExitReason::Code(code),
            Wire::Trap { trap, message } => ExitReason::Trap { kind: trap, message },
            Wire::MemoryLimit { limit, requested } => ExitReason::MemoryLimit { limit, requested },
            Wire::MemoryBudget { limit, used, asked } => ExitReason::MemoryBudget { limit, used, asked },
            Wire::Killed => ExitReason::Killed,
            Wire::StartTimeout { after_ms } => ExitReason::StartTimeout { after: after_ms },
            Wire::StopTimeout { after_ms } => ExitReason::StopTimeout { after: after_ms },
            Wire::Error { message } => ExitReason::Error(message),
        }
    }
}
