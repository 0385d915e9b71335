//! The HTTP gateway of VyomaOS: one listener for every app whose component is a
//! `wasi:http` handler. Requests are routed by the routes in the apps' manifests (the most
//! specific wins; see `vyoma_manifest`'s route rules), checked against the app's limits
//! (body size, requests in flight), handed to the app's [`Handler`], and counted per app.
//! Apps call each other by name through [`Gateway::call`], without the network.
//!
//! What it is not for: running requests (the supervisor hands each to the runtime, which
//! makes a fresh instance), deciding whether one app may call another (the supervisor
//! checks the grants), or outbound requests to the network (the runtime).

mod gateway;
mod router;
mod server;

pub use gateway::{Body, BoxError, Failure, Gateway, HEALTH_PATH, Handler, HttpCounts, Ticket, Unreachable, text};
pub use router::{Match, Router, request_host};
pub use server::{HEADER_TIMEOUT, Listening, MAX_CONNECTIONS};
