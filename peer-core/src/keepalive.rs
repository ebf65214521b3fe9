//! Keep-alive: periodic pings (BIP31), pong matching, and the idle timeout.
//!
//! As btcd: after the handshake a ping goes out every ping interval (2 min), carrying a
//! random nonce when the negotiated version has BIP31 nonces (> 60000) — older peers
//! get a nonce-less ping, which still keeps their idle timers from firing. An
//! unanswered ping does not disconnect by itself; the idle timeout does, when no message
//! at all arrived for 5 minutes.

use std::time::{Duration, Instant};

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
