//! The simulation suite: two peers wired in memory under a virtual clock.

mod backpressure;
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
