//! Stall detection (btcd-peer.md §8): deadlines for the responses our requests expect.
//!
//! | request sent | responses expected | deadline |
//! |---|---|---|
//! | `version` | `verack` | 30 s |
//! | `mempool`, `getblocks` | `inv` | 30 s |
//! | `getdata` | `block`, `merkleblock`, `tx`, `notfound`, `cmpctblock` | 30 s |
//! | `getheaders` | `headers` | 90 s |
//!
//! Sending a request again moves its deadline. Receiving `block`, `merkleblock`, `tx`,
//! `notfound` or `cmpctblock` clears all five (a `getdata` for `MSG_CMPCT_BLOCK` is
//! answered with `cmpctblock`, BIP152; btcd does not know it and would drop the peer);
//! any other response clears its own. Deadlines are checked
//! at stall ticks (every 15 s from the handshake), so a 30 s deadline fires between 30 s
//! and 45 s after the request — exactly btcd's granularity.
//!
//! Difference from btcd: time the application reports spending on received messages
//! ([`Peer::add_processing_time`](crate::Peer::add_processing_time)) is added to every
//! pending deadline. btcd accumulates it in an offset that it resets at every tick, so
//! processing time only counts within the tick in which it happened; a long callback
//! followed by a tick could then still disconnect a peer that answered promptly.

use std::time::{Duration, Instant};

use tracing::debug;
use wire_codec::message::command;
use wire_codec::Command;

use crate::peer::Peer;
use crate::reason::DisconnectReason;

use crate::config::Timeouts;
use crate::timer::tick_at_or_after;

/// The responses that can be expected, in a fixed order (one slot each).
const RESPONSES: [Command; 8] = [
    command::VERACK,
    command::INV,
    command::BLOCK,
    command::MERKLEBLOCK,
    command::TX,
    command::NOTFOUND,
    command::CMPCTBLOCK,
    command::HEADERS,
];

const VERACK: usize = 0;
const INV: usize = 1;
const DATA: [usize; 5] = [2, 3, 4, 5, 6];
const HEADERS: usize = 7;

/// One expected response: deadline and request time, in nanoseconds after the anchor
/// (two `u64`s instead of two `Instant`s keeps the detector at 128 bytes).
#[derive(Debug, Clone, Copy)]
struct Pending {
    deadline: u64,
    requested: u64,
}

const NONE: Pending = Pending {
    deadline: u64::MAX,
    requested: 0,
};

/// Deadlines for expected responses; no heap.
#[derive(Debug, Clone)]
pub(crate) struct StallDetector {
    slots: [Pending; 8],
    /// Handshake completion; ticks are anchored here. `None` until then (and when
    /// disabled), which keeps the detector inert.
    anchor: Option<Instant>,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1)
}

impl StallDetector {
    pub(crate) fn new() -> StallDetector {
        StallDetector {
            slots: [NONE; 8],
            anchor: None,
        }
    }

    /// Starts detection (at handshake completion).
    pub(crate) fn start(&mut self, now: Instant) {
        self.anchor = Some(now);
    }

    fn offset(&self, anchor: Instant, t: Instant) -> u64 {
        nanos(t.saturating_duration_since(anchor))
    }

    fn at(anchor: Instant, offset: u64) -> Instant {
        anchor
            .checked_add(Duration::from_nanos(offset))
            .unwrap_or(anchor + Duration::from_secs(86_400 * 365 * 100))
    }

    /// Records that `cmd` was sent at `now`.
    pub(crate) fn on_sent(&mut self, cmd: Command, now: Instant, t: &Timeouts) {
        let Some(anchor) = self.anchor else {
            return;
        };
        let requested = self.offset(anchor, now);
        let base = requested.saturating_add(nanos(t.stall_response));
        let set = |slots: &mut [Pending; 8], i: usize, deadline: u64| {
            slots[i] = Pending {
                deadline: deadline.min(u64::MAX - 1),
                requested,
            };
        };
        if cmd == command::VERSION {
            set(&mut self.slots, VERACK, base);
        } else if cmd == command::MEMPOOL || cmd == command::GETBLOCKS {
            set(&mut self.slots, INV, base);
        } else if cmd == command::GETDATA {
            for i in DATA {
                set(&mut self.slots, i, base);
            }
        } else if cmd == command::GETHEADERS {
            let d = requested.saturating_add(nanos(t.stall_headers_response));
            set(&mut self.slots, HEADERS, d);
        }
    }

    /// Records that `cmd` was received.
    pub(crate) fn on_received(&mut self, cmd: Command) {
        if self.anchor.is_none() {
            return;
        }
        let Some(i) = RESPONSES.iter().position(|c| *c == cmd) else {
            return;
        };
        if DATA.contains(&i) {
            for j in DATA {
                self.slots[j] = NONE;
            }
        } else {
            self.slots[i] = NONE;
        }
    }

    /// Extends every pending deadline by `d` (application processing time).
    pub(crate) fn add_processing_time(&mut self, d: Duration) {
        let d = nanos(d);
        for p in self.slots.iter_mut().filter(|p| p.deadline != u64::MAX) {
            p.deadline = p.deadline.saturating_add(d).min(u64::MAX - 1);
        }
    }

    fn pending(&self) -> impl Iterator<Item = (usize, Pending)> + '_ {
        self.slots
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, p)| p.deadline != u64::MAX)
    }

    /// The stall tick at which the earliest pending deadline will have passed.
    pub(crate) fn next_check(&self, tick: Duration) -> Option<Instant> {
        let anchor = self.anchor?;
        let earliest = self.pending().map(|(_, p)| p.deadline).min()?;
        Some(tick_at_or_after(anchor, tick, Self::at(anchor, earliest)))
    }

    /// At a tick: the expected response whose deadline passed (earliest first) and how
    /// long ago it was requested.
    pub(crate) fn check(&self, now: Instant, tick: Duration) -> Option<(Command, Duration)> {
        let anchor = self.anchor?;
        self.next_check(tick).filter(|t| *t <= now)?;
        let now_off = self.offset(anchor, now);
        self.pending()
            .filter(|(_, p)| now_off >= p.deadline)
            .min_by_key(|(_, p)| p.deadline)
            .map(|(i, p)| {
                (
                    RESPONSES[i],
                    Duration::from_nanos(now_off.saturating_sub(p.requested)),
                )
            })
    }

    /// Whether any response is expected.
    #[inline]
    pub(crate) fn has_pending(&self) -> bool {
        self.slots.iter().any(|p| p.deadline != u64::MAX)
    }

    /// Stops detection and forgets all deadlines.
    pub(crate) fn clear(&mut self) {
        self.slots = [NONE; 8];
        self.anchor = None;
    }
}

impl Peer {
    /// At a stall tick: an expected response past its deadline ends the peer.
    pub(crate) fn stall_tick(&mut self, now: Instant) {
        let tick = self.config.timeouts.stall_tick;
        if let Some((command, waited)) = self.stall.check(now, tick) {
            debug!("appears to be stalled or misbehaving, {command} timeout -- disconnecting");
            self.fail(DisconnectReason::Stalled { command, waited }, None);
        }
    }
}

#[cfg(test)]
// Tests take an arbitrary origin instant from the clock; the code under test never does.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn getdata_expects_any_of_four_and_fires_on_a_tick() {
        let t = Timeouts::default();
        let a = Instant::now();
        let mut d = StallDetector::new();
        d.on_sent(command::GETDATA, a, &t); // not started: ignored
        assert!(!d.has_pending());
        d.start(a);
        d.on_sent(command::GETDATA, a + s(1), &t);
        // Deadline 31 s, checked at the 45 s tick.
        assert_eq!(d.next_check(t.stall_tick), Some(a + s(45)));
        assert_eq!(d.check(a + s(44), t.stall_tick), None);
        let (cmd, waited) = d.check(a + s(45), t.stall_tick).unwrap();
        assert_eq!(cmd, command::BLOCK);
        assert_eq!(waited, s(44));
        d.on_received(command::NOTFOUND);
        assert!(!d.has_pending());
    }

    #[test]
    fn processing_time_extends_and_unrelated_messages_do_not_clear() {
        let t = Timeouts::default();
        let a = Instant::now();
        let mut d = StallDetector::new();
        d.start(a);
        d.on_sent(command::GETHEADERS, a, &t);
        d.on_received(command::INV);
        assert_eq!(d.next_check(t.stall_tick), Some(a + s(90)));
        d.add_processing_time(s(1));
        assert_eq!(d.next_check(t.stall_tick), Some(a + s(105)));
        assert_eq!(d.check(a + s(90), t.stall_tick), None);
        d.on_received(command::HEADERS);
        assert_eq!(d.next_check(t.stall_tick), None);
    }

    #[test]
    fn other_commands_set_nothing() {
        let t = Timeouts::default();
        let a = Instant::now();
        let mut d = StallDetector::new();
        d.start(a);
        for c in [
            command::PING,
            command::GETADDR,
            command::GETCFILTERS,
            command::INV,
        ] {
            d.on_sent(c, a, &t);
        }
        assert!(!d.has_pending());
        d.on_sent(command::VERSION, a, &t);
        d.on_sent(command::MEMPOOL, a, &t);
        assert_eq!(
            d.check(a + s(30), t.stall_tick).map(|x| x.0),
            Some(command::VERACK)
        );
    }
}
