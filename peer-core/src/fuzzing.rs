//! The fuzzing entry point: a peer fed arbitrary bytes, commands and clock steps.
//!
//! [`fuzz_peer`] reads its input as a script. The first bytes choose the network, the
//! direction, the protocol versions and a few policies; the rest is a sequence of
//! operations on the peer under test and on a well-behaved remote peer connected to it:
//! moving bytes between them (in any split), injecting raw or corrupted frames,
//! stepping or jumping the virtual clock, queueing messages and inventory, reporting
//! processing time, disconnecting. After every operation it checks the peer's
//! invariants and panics if one breaks:
//!
//! * every notification token is answered exactly once (never twice, never after the
//!   end of the run), and `Sent` never follows `Disconnected`;
//! * `Disconnected` is emitted at most once, and exactly once by the end;
//! * after `handle_timeout(now)`, `poll_timeout` is never at or before `now` again (a
//!   timer that does not move would make a driver spin).
//!
//! Virtual time starts at an [`Instant`] taken once per run — the only clock read in
//! this crate, used as an arbitrary origin; the peers only ever see that origin plus
//! the script's steps.
#![doc(hidden)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use wire_codec::message::{
    BlockLocator, FilterLoad, InvType, InvVect, Inventory, Message, Ping, Pong, Reject, RejectCode,
    ServiceFlags, Version,
};
use wire_codec::{encode_frame, Command, Context, Hash256, Network};

use crate::config::Config;
use crate::event::Event;
use crate::listener::{dispatch, Listener};
use crate::nonce::NonceSet;
use crate::peer::Peer;
use crate::reason::DisconnectReason;

const VERSIONS: [u32; 10] = [0, 1, 209, 60000, 70001, 70002, 70011, 70012, 70013, 70016];
const MAX_OPS: usize = 4096;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Tracks the answers a peer gave.
#[derive(Default)]
struct Checker {
    outstanding: BTreeSet<u64>,
    disconnected: u32,
    reject_version: bool,
}

impl Listener for Checker {
    fn on_version(&mut self, _peer: &mut Peer, _msg: &Version) -> Option<Reject> {
        self.reject_version.then(|| Reject {
            message: "version".into(),
            code: RejectCode::NONSTANDARD,
            reason: "fuzz".into(),
            hash: None,
        })
    }

    fn on_sent(&mut self, _peer: &mut Peer, token: u64) {
        assert!(self.disconnected == 0, "Sent({token}) after Disconnected");
        assert!(
            self.outstanding.remove(&token),
            "token {token} answered twice (Sent)"
        );
    }

    fn on_failed(&mut self, _peer: &mut Peer, token: u64) {
        assert!(
            self.outstanding.remove(&token),
            "token {token} answered twice (Failed)"
        );
    }

    fn on_disconnect(&mut self, _peer: &mut Peer, _reason: &DisconnectReason) {
        self.disconnected += 1;
        assert_eq!(self.disconnected, 1, "Disconnected emitted twice");
    }
}

struct Side {
    peer: Peer,
    checker: Checker,
}

impl Side {
    fn pump(&mut self, now: Instant) {
        let mut n = 0;
        while let Some(ev) = self.peer.poll_event() {
            n += 1;
            assert!(n < 1_000_000, "event livelock");
            dispatch(&mut self.peer, ev, &mut self.checker, now);
        }
    }
}

fn menu(i: u8, version: u32) -> Message {
    let h = Hash256([i; 32]);
    match i % 14 {
        0 => Message::Ping(Ping {
            nonce: u64::from(i),
        }),
        1 => Message::Pong(Pong {
            nonce: u64::from(i),
        }),
        2 => Message::GetAddr,
        3 => Message::GetData(Inventory::new(vec![InvVect::new(InvType::BLOCK, h)])),
        4 => Message::GetHeaders(BlockLocator {
            version,
            locator: vec![h],
            stop: Hash256::ZERO,
        }),
        5 => Message::GetBlocks(BlockLocator {
            version,
            locator: vec![],
            stop: h,
        }),
        6 => Message::MemPool,
        7 => Message::Inv(Inventory::new(vec![InvVect::new(InvType::TX, h)])),
        8 => Message::NotFound(Inventory::new(vec![InvVect::new(InvType::TX, h)])),
        9 => Message::SendHeaders,
        10 => Message::FilterLoad(FilterLoad {
            filter: Bytes::from_static(&[1, 2]),
            hash_funcs: 1,
            tweak: 0,
            flags: 0,
        }),
        11 => Message::Verack,
        12 => Message::Unknown {
            command: Command::from_static("fuzzcmd"),
            payload: Bytes::from(vec![i; usize::from(i % 40)]),
        },
        _ => Message::SendAddrV2,
    }
}

fn transfer(from: &mut Side, to: &mut Side, limit: usize, split: usize, now: Instant) {
    let mut moved = 0;
    while moved < limit {
        let out = from.peer.transmit();
        if out.is_empty() {
            break;
        }
        let n = out.len().min(split.max(1)).min(limit - moved);
        let chunk = out[..n].to_vec();
        from.peer.advance_transmit(n, now);
        moved += n;
        to.peer.handle_input(&chunk, now);
    }
    if from.peer.is_closed() && !from.peer.wants_write() && !to.peer.is_closed() {
        to.peer.disconnect(DisconnectReason::RemoteClosed);
    }
}

/// A transfer limit: 0 means everything.
fn limit(n: u16) -> usize {
    if n == 0 {
        usize::MAX
    } else {
        usize::from(n)
    }
}

fn fire(side: &mut Side, now: Instant) {
    side.peer.handle_timeout(now);
    if let Some(t) = side.peer.poll_timeout() {
        assert!(
            t > now,
            "deadline {t:?} not past {now:?} after handle_timeout: a driver would spin"
        );
    }
}

/// What a run reached, so tests can check that scripts get deep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FuzzReport {
    /// The peer under test completed its handshake at some point.
    pub established: bool,
    /// Tokens handed out.
    pub tokens: u64,
    /// Messages the peer under test received.
    pub messages_received: u64,
}

/// Runs the script in `data` (see the module documentation). Panics only if an
/// invariant breaks.
pub fn fuzz_peer(data: &[u8]) {
    // The fuzz target's one clock read: a time origin for the run (libFuzzer calls in
    // with bytes only). Every time after it is derived from the script.
    #[allow(clippy::disallowed_methods)]
    let origin = Instant::now();
    let _ = fuzz_peer_at(data, origin);
}

/// [`fuzz_peer`] with an explicit time origin, reporting how far the run got.
pub fn fuzz_peer_at(data: &[u8], origin: Instant) -> FuzzReport {
    let mut report = FuzzReport::default();
    let mut input = Input(data);
    let flags = input.u8();
    let network = [
        Network::Mainnet,
        Network::Regtest,
        Network::LbryMainnet,
        Network::Regtest,
    ][usize::from(flags & 3)];
    let inbound = flags & 4 != 0;
    let mut cfg = Config::new(network);
    cfg.nonces = Some(Arc::new(NonceSet::new()));
    cfg.protocol_version = VERSIONS[usize::from(input.u8()) % VERSIONS.len()].max(209);
    if flags & 8 != 0 {
        cfg.services = ServiceFlags::BLOOM;
    }
    cfg.disable_stall_detection = flags & 16 != 0;
    cfg.report_io = flags & 64 != 0;
    cfg.max_output_bytes = 1000 + usize::from(input.u8()) * 64;
    cfg.max_pre_handshake_payload = 200 + u32::from(input.u8()) * 16;
    let mut rcfg = Config::new(network);
    rcfg.nonces = Some(Arc::new(NonceSet::new()));
    let rv = VERSIONS[usize::from(input.u8()) % VERSIONS.len()];
    rcfg.protocol_version = rv.max(209);
    rcfg.min_protocol_version = 209;
    let remote_version = rcfg.max_protocol_version();

    let addr_p = if flags & 128 != 0 {
        SocketAddr::from(([127, 0, 0, 1], 18444))
    } else {
        SocketAddr::from(([10, 0, 0, 1], 8333))
    };
    let addr_r = addr_p;
    let unix = 1_700_000_000;
    let mut now = origin;
    let (p, r) = if inbound {
        let r = Peer::new_outbound(Arc::new(rcfg), addr_r, now, unix, 11);
        let p = Peer::new_inbound(Arc::new(cfg), addr_p, now, unix, 12);
        (p, r)
    } else {
        let p = Peer::new_outbound(Arc::new(cfg), addr_p, now, unix, 12);
        let r = Peer::new_inbound(Arc::new(rcfg), addr_r, now, unix, 11);
        (p, r)
    };
    let mut p = Side {
        peer: p,
        checker: Checker {
            reject_version: flags & 32 != 0,
            ..Checker::default()
        },
    };
    let mut r = Side {
        peer: r,
        checker: Checker::default(),
    };
    let mut next_token = 0u64;
    let ctx = Context::new(network, remote_version);

    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        match input.u8() % 12 {
            0 => {
                let limit = limit(input.u16());
                let split = usize::from(input.u8()).max(1);
                transfer(&mut r, &mut p, limit, split, now);
            }
            1 => {
                let limit = limit(input.u16());
                let split = usize::from(input.u8()).max(1);
                transfer(&mut p, &mut r, limit, split, now);
            }
            2 => {
                let n = usize::from(input.u8());
                let bytes = input.take(n).to_vec();
                p.peer.handle_input(&bytes, now);
            }
            3 => {
                let m = menu(input.u8(), remote_version);
                let mut f = BytesMut::new();
                if encode_frame(network.magic(), &m, &ctx, &mut f).is_ok() {
                    let pos = usize::from(input.u8());
                    let flip = input.u8();
                    if let Some(b) = f.get_mut(pos) {
                        *b ^= flip;
                    }
                    p.peer.handle_input(&f, now);
                }
            }
            4 => {
                now += Duration::from_millis(u64::from(input.u16()) * 10);
                fire(&mut p, now);
                fire(&mut r, now);
            }
            5 => {
                let t = [p.peer.poll_timeout(), r.peer.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .min();
                if let Some(t) = t {
                    if t > now {
                        now = t;
                    }
                    fire(&mut p, now);
                    fire(&mut r, now);
                }
            }
            6 => {
                let m = menu(input.u8(), remote_version);
                let token = next_token;
                next_token += 1;
                p.checker.outstanding.insert(token);
                p.peer.queue_message(m, Some(token));
            }
            7 => {
                let m = menu(input.u8(), remote_version);
                r.peer.queue_message(m, None);
            }
            8 => {
                let b = input.u8();
                let kind = if b & 1 == 0 {
                    InvType::TX
                } else {
                    InvType::BLOCK
                };
                let iv = InvVect::new(kind, Hash256([b >> 1; 32]));
                match b % 3 {
                    0 => p.peer.queue_inventory(iv),
                    1 => p.peer.queue_inventory_immediate(iv),
                    _ => p.peer.add_known_inventory(iv),
                }
            }
            9 => p
                .peer
                .add_processing_time(Duration::from_secs(u64::from(input.u8()))),
            10 => {
                if input.u8() < 16 {
                    p.peer.disconnect(DisconnectReason::LocalRequest);
                }
            }
            _ => {
                let h = i32::from(input.u16());
                p.peer.update_last_block_height(h);
                assert!(p.peer.last_block() >= h);
            }
        }
        p.pump(now);
        r.pump(now);
        report.established |= p.peer.handshake_complete();
        if p.peer.is_closed() {
            assert_eq!(p.peer.poll_timeout(), None);
            assert!(
                p.peer.disconnect_reason().is_some(),
                "closed without a reason"
            );
        }
    }

    // End of the run: everything still queued must be answered by the disconnect.
    report.tokens = next_token;
    report.messages_received = p.peer.stats_snapshot(now).messages_received;
    p.peer.disconnect(DisconnectReason::LocalRequest);
    p.pump(now);
    assert!(
        p.checker.outstanding.is_empty(),
        "tokens never answered: {:?}",
        p.checker.outstanding
    );
    assert_eq!(p.checker.disconnected, 1);
    // A late queue is answered at once.
    p.peer.queue_message(Message::GetAddr, Some(u64::MAX));
    assert_eq!(p.peer.poll_event(), Some(Event::Failed(u64::MAX)));
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_simple_scripts_run() {
        fuzz_peer(&[]);
        // Outbound, mainnet: transfer both ways a few times, then wait out the timers.
        fuzz_peer(&[
            0, 9, 0, 0, 9, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5, 5, 5, 5, 5,
        ]);
    }
}
