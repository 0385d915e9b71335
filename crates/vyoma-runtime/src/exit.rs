//! Mapping how a Wasmtime call ended onto an [`ExitReason`].

use vyoma_lifecycle::{ExitReason, TrapKind};
use wasmtime::{Trap, WasmBacktrace};
use wasmtime_wasi::I32Exit;

use crate::MemoryLimitExceeded;

/// How many frames of a wasm backtrace to name in a trap's message.
const FRAMES: usize = 3;

pub(crate) fn classify(e: &wasmtime::Error) -> ExitReason {
    if let Some(x) = e.downcast_ref::<I32Exit>() {
        return ExitReason::Code(x.0);
    }
    if let Some(m) = e.downcast_ref::<MemoryLimitExceeded>() {
        return ExitReason::MemoryLimit {
            limit: m.limit,
            requested: m.requested,
        };
    }
    if let Some(t) = e.downcast_ref::<Trap>() {
        let kind = match t {
            Trap::StackOverflow => TrapKind::StackOverflow,
            Trap::MemoryOutOfBounds => TrapKind::MemoryOutOfBounds,
            Trap::TableOutOfBounds => TrapKind::TableOutOfBounds,
            Trap::IndirectCallToNull => TrapKind::IndirectCallToNull,
            Trap::BadSignature => TrapKind::BadSignature,
            Trap::IntegerOverflow => TrapKind::IntegerOverflow,
            Trap::IntegerDivisionByZero => TrapKind::IntegerDivisionByZero,
            Trap::BadConversionToInteger => TrapKind::BadConversionToInteger,
            Trap::UnreachableCodeReached => TrapKind::Unreachable,
            _ => TrapKind::Other,
        };
        let mut message = String::new();
        if kind == TrapKind::Other {
            message = t.to_string();
        }
        if let Some(bt) = e.downcast_ref::<WasmBacktrace>() {
            let names: Vec<String> = bt
                .frames()
                .iter()
                .filter_map(|f| f.func_name().map(str::to_string))
                .take(FRAMES)
                .collect();
            if !names.is_empty() {
                if !message.is_empty() {
                    message.push_str(": ");
                }
                message.push_str("in ");
                message.push_str(&names.join(" <- "));
            }
        }
        return ExitReason::Trap { kind, message };
    }
    ExitReason::Error(format!("{e:#}"))
}
