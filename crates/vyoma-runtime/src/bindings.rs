//! Host bindings for the `vyoma:app` WIT package (`wit/` at the repository root): the
//! interfaces a VyomaOS app may import beyond WASI. Each interface is implemented on its
//! own view of the store data ([`crate::ipc::IpcView`], [`crate::lifecycle::LifecycleView`],
//! [`crate::display::DisplayView`]),
//! as `wasmtime-wasi` does with `WasiView`, so each capability is added to the linker and
//! tested on its own.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "vyoma:app/app",
    imports: {
        "vyoma:app/ipc.send-wait": async,
        "vyoma:app/ipc.recv": async,
        "vyoma:app/ipc.recv-many": async,
        "vyoma:app/ipc.request": async,
        "vyoma:app/ipc.subscribe": trappable,
        "vyoma:app/lifecycle.subscribe-stop": trappable,
        "vyoma:app/display": trappable,
        "vyoma:app/input.subscribe": trappable,
    },
    with: {
        "wasi:io/poll": wasmtime_wasi::p2::bindings::io::poll,
        "vyoma:app/display.surface": crate::display::Surface,
    },
    require_store_data_send: true,
});
