//! The simulation suite: two peers wired in memory under a virtual clock.

// Tests and benches take origin instants from the clock (clippy.toml forbids it in
// the crate itself).
#![allow(clippy::disallowed_methods)]

mod driver_contract;
mod handshake;
mod harness;
mod inventory;
mod keepalive;
mod listeners;
mod logging;
mod networks;
mod outbound;
mod props;
mod rules;
mod stall;
mod unknown;
mod witness;
