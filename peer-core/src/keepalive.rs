//! Keep-alive: periodic pings (BIP31), pong matching, and the idle timeout.
//!
//! As btcd: after the handshake a ping goes out every ping interval (2 min), carrying a
//! random nonce when the negotiated version has BIP31 nonces (> 60000) — older peers
//! get a nonce-less ping, which still keeps their idle timers from firing. An
//! unanswered ping does not disconnect by itself; the idle timeout does, when no message
//! at all arrived for 5 minutes.

use std::time::{Duration, Instant};

use rand::Rng;
use tracing::debug;
use wire_codec::message::{Message, Ping, Pong};
use wire_codec::version;

use crate::outbound::Encoding;
use crate::peer::Peer;
use crate::reason::DisconnectReason;

/// What a keep-alive deadline asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeepAliveAction {
    /// Nothing arrived for the idle timeout.
    Idle,
    /// Time to ping.
    Ping,
}

/// Ping schedule and idle tracking (inert until the handshake completes).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct KeepAlive {
    next_ping: Option<Instant>,
    last_rx: Option<Instant>,
}

impl KeepAlive {
    /// Starts both timers at handshake completion.
    pub(crate) fn start(&mut self, now: Instant, ping_interval: Duration) {
        self.next_ping = Some(now + ping_interval);
        self.last_rx = Some(now);
    }

    /// A whole message arrived.
    pub(crate) fn on_receive(&mut self, now: Instant) {
        if self.last_rx.is_some() {
            self.last_rx = Some(now);
        }
    }

    /// The earliest keep-alive deadline.
    pub(crate) fn deadline(&self, idle: Duration) -> Option<Instant> {
        let idle_at = self.last_rx.map(|t| t + idle);
        match (idle_at, self.next_ping) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What is due at `now`, idle first. A due ping is rescheduled one interval later
    /// (catching up if the driver was late).
    pub(crate) fn poll(
        &mut self,
        now: Instant,
        idle: Duration,
        ping_interval: Duration,
    ) -> Option<KeepAliveAction> {
        if let Some(last) = self.last_rx {
            if now >= last + idle {
                return Some(KeepAliveAction::Idle);
            }
        }
        match self.next_ping {
            Some(t) if now >= t => {
                let mut next = t + ping_interval.max(Duration::from_millis(1));
                if next <= now {
                    next = now + ping_interval.max(Duration::from_millis(1));
                }
                self.next_ping = Some(next);
                Some(KeepAliveAction::Ping)
            }
            _ => None,
        }
    }

    /// Stops both timers.
    pub(crate) fn clear(&mut self) {
        *self = KeepAlive::default();
    }
}

impl Peer {
    /// A received `ping` is answered with a `pong` carrying its nonce (BIP31, above
    /// 60000); a `pong` matching our outstanding ping gives the round-trip time.
    pub(crate) fn keepalive_on_message(&mut self, msg: &Message, now: Instant) {
        match msg {
            Message::Ping(p) if self.version > version::BIP0031 => {
                self.send_now(
                    Message::Pong(Pong { nonce: p.nonce }),
                    None,
                    Encoding::Witness,
                );
            }
            Message::Pong(p)
                if self.stats.last_ping_nonce != 0 && p.nonce == self.stats.last_ping_nonce =>
            {
                if let Some(sent) = self.stats.last_ping_time {
                    self.stats.last_ping_latency = Some(now.saturating_duration_since(sent));
                }
                self.stats.last_ping_nonce = 0;
            }
            _ => {}
        }
    }

    /// An outgoing `ping` (ours or the application's) is the one a `pong` must match.
    pub(crate) fn keepalive_on_send(&mut self, msg: &Message) {
        if let Message::Ping(p) = msg {
            if self.version > version::BIP0031 {
                self.stats.last_ping_nonce = p.nonce;
                self.stats.last_ping_time = Some(self.last_now);
            }
        }
    }

    /// The keep-alive timers: the idle timeout ends the peer, the ping interval sends
    /// a ping.
    pub(crate) fn keepalive_tick(&mut self, now: Instant) {
        let t = self.config.timeouts;
        while let Some(action) = self.keepalive.poll(now, t.idle, t.ping_interval) {
            match action {
                KeepAliveAction::Idle => {
                    debug!("no answer for {:?} -- disconnecting", t.idle);
                    return self.fail(DisconnectReason::IdleTimeout, None);
                }
                KeepAliveAction::Ping => {
                    let nonce = self.rng.gen::<u64>().max(1);
                    self.send_now(Message::Ping(Ping { nonce }), None, Encoding::Witness);
                    if self.is_closed() {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
// Tests take an arbitrary origin instant from the clock; the code under test never does.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn pings_periodically_and_goes_idle_without_input() {
        let a = Instant::now();
        let (idle, ping) = (Duration::from_secs(300), Duration::from_secs(120));
        let mut k = KeepAlive::default();
        assert_eq!(k.deadline(idle), None);
        k.start(a, ping);
        assert_eq!(k.deadline(idle), Some(a + ping));
        assert_eq!(k.poll(a + ping, idle, ping), Some(KeepAliveAction::Ping));
        assert_eq!(k.poll(a + ping, idle, ping), None);
        assert_eq!(k.deadline(idle), Some(a + 2 * ping));
        k.on_receive(a + Duration::from_secs(250));
        assert_eq!(
            k.poll(a + 2 * ping, idle, ping),
            Some(KeepAliveAction::Ping)
        );
        assert_eq!(k.deadline(idle), Some(a + Duration::from_secs(360)));
        assert_eq!(
            k.poll(a + Duration::from_secs(550), idle, ping),
            Some(KeepAliveAction::Idle)
        );
    }
}
