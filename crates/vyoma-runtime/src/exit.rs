//! Mapping how a Wasmtime call ended onto an [`ExitReason`].

use vyoma_lifecycle::{ExitReason, TrapKind};
use wasmtime::component::ResourceTableError;
use wasmtime::{Trap, WasmBacktrace};
use wasmtime_wasi::I32Exit;

use crate::{BudgetExceeded, MemoryLimitExceeded};

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
    if let Some(b) = e.downcast_ref::<BudgetExceeded>() {
        return ExitReason::MemoryBudget {
            limit: b.limit,
            used: b.used,
            asked: b.asked,
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
        if let Some(f) = frames(e) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&f);
        }
        return ExitReason::Trap { kind, message };
    }
    if e.chain().any(|c| c.downcast_ref::<ResourceTableError>().is_some()) {
        return ExitReason::Error(
            "used up its handle budget (`[limits] handles`): too many open files, sockets, streams or pollables at once"
                .into(),
        );
    }
    // One line: the root cause, and where in the app it happened (Wasmtime adds the
    // multi-line backtrace as context; its frame names are enough).
    let mut message = e.root_cause().to_string().replace('\n', " ");
    if let Some(frames) = frames(e) {
        message.push_str(" (");
        message.push_str(&frames);
        message.push(')');
    }
    ExitReason::Error(message)
}

/// "in f <- g <- h": the innermost named wasm frames of the error's backtrace, if any.
fn frames(e: &wasmtime::Error) -> Option<String> {
    let bt = e.downcast_ref::<WasmBacktrace>()?;
    let names: Vec<String> = bt
        .frames()
        .iter()
        .filter_map(|f| f.func_name().map(str::to_string))
        .take(FRAMES)
        .collect();
    (!names.is_empty()).then(|| format!("in {}", names.join(" <- ")))
}
