//! `vyoma-compile`: the image's compiler. The supervisor (PID 1) runs it to compile a
//! component deployed to the device: the component on standard input, the precompiled
//! artifact for this machine's supervisor on standard output (length-prefixed, see
//! `vyoma_runtime::write_framed`), or an explanation on standard error and exit status 1.
//! `--cow` compiles for an engine with copy-on-write memory images.
//!
//! What it is for: keeping Cranelift out of `/init`. The image carries this executable
//! zstd-compressed and the supervisor unpacks it into memory only for a compile
//! (`vyoma_runtime::CompilerHelper`), so no boot unpacks a compiler only deploys use, and a
//! compile of bytes from the network runs outside PID 1.
//! Not for: hosted mode and `vyoma image build`, which compile in-process.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

/// Largest component it takes: the management API's own upload limit is lower.
const MAX_COMPONENT: u64 = 1 << 30;

/// A compile allocates a great deal; musl's own allocator, with a system call for many of
/// them, made a compile take twice as long (docs/PERFORMANCE.md, "The compiler out of
/// /init").
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // One flag, read by hand: a command-line parser would cost the image more than the
    // one option it would parse.
    let mut cow = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--cow" => cow = true,
            other => {
                eprintln!(
                    "vyoma-compile: unknown argument `{}`; usage: vyoma-compile [--cow] < COMPONENT > ANSWER",
                    other.escape_debug()
                );
                return ExitCode::from(2);
            }
        }
    }
    let mut wasm = Vec::new();
    if let Err(e) = std::io::stdin().lock().take(MAX_COMPONENT).read_to_end(&mut wasm) {
        eprintln!("vyoma-compile: cannot read the component from standard input: {e}");
        return ExitCode::FAILURE;
    }
    let artifact = match vyoma_runtime::precompile_native(&wasm, cow, Path::new("<standard input>")) {
        Ok(a) => a,
        // The supervisor names the file; Wasmtime's explanation is what it needs from here.
        Err(vyoma_runtime::RuntimeError::Compile { message, .. }) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    if let Err(e) = vyoma_runtime::write_framed(&mut out, &artifact) {
        eprintln!("vyoma-compile: cannot write the artifact: {e}");
        return ExitCode::FAILURE;
    }
    let _ = out.flush();
    ExitCode::SUCCESS
}
