//! The simulation suite: two peers wired in memory under a virtual clock.

// Tests and benches take origin instants from the clock (clippy.toml forbids it in
// the crate itself).
#![allow(clippy::disallowed_methods)]

mod backpressure;
mod bloom;
mod driver_contract;
mod frames;
mod gating;
mod handshake;
mod harness;
mod inventory;
mod keepalive;
mod listeners;
mod logging;
mod malformed;
mod networks;
mod outbound;
mod props;
mod stall;
mod unknown;
mod witness;
