//! Logging (behaviour 14): a per-peer span with id, address and direction; one debug
//! line per message sent and received, with btcd's summaries; trace hex dumps.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use wire_codec::message::{Message, Ping};
use wire_codec::Network;

use crate::harness::*;

#[derive(Default)]
struct Captured {
    /// Span id -> its rendered fields.
    spans: Vec<(u64, String)>,
    /// (level, message and fields, span fields of the innermost entered span)
    events: Vec<(Level, String, String)>,
    stack: Vec<u64>,
}

#[derive(Clone)]
struct Capture {
    inner: Arc<Mutex<Captured>>,
    next: Arc<AtomicU64>,
    max: Level,
}

struct Render<'a>(&'a mut String);

impl Visit for Render<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, "{}={} ", field.name(), value);
    }
}

/// tracing caches each callsite's interest process-wide, computed by whichever thread
/// reaches it first: a sibling test running without a subscriber (or a capture at
/// another level) would cache "never" and this file's captures would miss events
/// (a flake, ~1 run in 6). Every subscriber in this binary therefore answers
/// "sometimes" — decide per event with `enabled` — and a process-wide no-op default
/// answers for threads that have no capture, instead of tracing's `NoSubscriber`.
struct Keeper;

static KEEPER: Once = Once::new();

impl Subscriber for Keeper {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        false
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Subscriber for Capture {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        *m.level() <= self.max
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut s = String::new();
        attrs.record(&mut Render(&mut s));
        self.inner.lock().unwrap().spans.push((id, s));
        Id::from_u64(id)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, e: &Event<'_>) {
        let mut s = String::new();
        e.record(&mut Render(&mut s));
        let mut c = self.inner.lock().unwrap();
        let span = c
            .stack
            .last()
            .and_then(|id| c.spans.iter().find(|(i, _)| i == id))
            .map(|(_, f)| f.clone())
            .unwrap_or_default();
        c.events.push((*e.metadata().level(), s, span));
    }
    fn enter(&self, id: &Id) {
        self.inner.lock().unwrap().stack.push(id.into_u64());
    }
    fn exit(&self, _: &Id) {
        self.inner.lock().unwrap().stack.pop();
    }
}

fn capture(max: Level, f: impl FnOnce()) -> Captured {
    let sub = Capture {
        inner: Arc::default(),
        next: Arc::default(),
        max,
    };
    let inner = sub.inner.clone();
    KEEPER.call_once(|| {
        let _ = tracing::subscriber::set_global_default(Keeper);
    });
    tracing::subscriber::with_default(sub, f);
    let c = std::mem::take(&mut *inner.lock().unwrap());
    c
}

#[test]
fn debug_lines_carry_summaries_and_span_fields() {
    let c = capture(Level::DEBUG, || {
        let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
        p.a.peer
            .queue_message(Message::Ping(Ping { nonce: 77 }), None);
        p.drive();
    });
    let spans: Vec<&String> = c.spans.iter().map(|(_, s)| s).collect();
    assert!(spans
        .iter()
        .any(|s| s.contains("dir=outbound") && s.contains(&format!("addr={A_ADDR}"))));
    assert!(spans
        .iter()
        .any(|s| s.contains("dir=inbound") && s.contains("id=")));
    let line = |needle: &str, dir: &str| {
        c.events
            .iter()
            .any(|(l, m, span)| *l == Level::DEBUG && m.contains(needle) && span.contains(dir))
    };
    assert!(line("sending ping nonce 77", "dir=outbound"));
    assert!(line("received ping nonce 77", "dir=inbound"));
    assert!(line("sending pong nonce 77", "dir=inbound"));
    assert!(line("received version agent /peerwire:", "dir=inbound"));
    assert!(line("handshake complete", "dir=outbound"));
    // No trace output at debug level.
    assert!(c.events.iter().all(|(l, _, _)| *l <= Level::DEBUG));
}

#[test]
fn trace_level_dumps_raw_bytes() {
    if v1_bytes_only() {
        return;
    }
    let c = capture(Level::TRACE, || {
        let mut p = Pair::connected(config(Network::Mainnet), config(Network::Mainnet));
        p.a.peer
            .queue_message(Message::Ping(Ping { nonce: 0x0102 }), None);
        p.drive();
    });
    // The ping frame: mainnet magic, "ping", length 8, checksum, nonce LE.
    let frame_hex = {
        let f = frame(
            Network::Mainnet,
            70016,
            &Message::Ping(Ping { nonce: 0x0102 }),
        );
        f.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert!(c
        .events
        .iter()
        .any(|(l, m, _)| *l == Level::TRACE && m.contains(&format!("frame={frame_hex}"))));
    assert!(c
        .events
        .iter()
        .any(|(l, m, _)| *l == Level::TRACE && m.contains("payload=0201000000000000")));
}

#[test]
fn disconnect_reason_is_logged() {
    let c = capture(Level::DEBUG, || {
        let mut s = Solo::outbound(config(Network::Mainnet));
        s.fire_next();
    });
    assert!(
        c.events
            .iter()
            .any(|(_, m, _)| m.contains("disconnecting")
                && m.contains("protocol negotiation timeout"))
    );
}
