//! The coordinator ↔ worker channel: one JSON object per line.
//!
//! One process may hold only 20,000 descriptors here, so the coordinator spreads client
//! peers over worker processes (`peer-bench worker …`). It writes [`Command`]s to each
//! worker's stdin and reads [`Report`]s from its stdout; every phase starts in all
//! workers at once and ends when each has reported [`Report::Done`].

use std::time::Duration;

use serde_json::{json, Value};

use crate::histogram::Histogram;

/// A phase, as the coordinator tells a worker to run it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Open every connection of this worker and complete its handshake.
    Connect,
    /// Each connection does ping → pong round trips, one at a time, for this long.
    Ping {
        /// How long.
        duration: Duration,
    },
    /// Each connection writes `batch` inventory messages per write for this long, then
    /// one ping whose pong proves the server consumed everything before it.
    Flood {
        /// How long.
        duration: Duration,
        /// Messages per write.
        batch: u32,
    },
    /// Keep every connection open and idle for this long.
    Hold {
        /// How long.
        duration: Duration,
    },
    /// Close every connection and exit.
    Close,
}

/// The phase names, as used in commands, results and on the command line.
pub const PHASES: [&str; 4] = ["connect", "hold", "ping", "flood"];

impl Command {
    /// The phase's name.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Connect => "connect",
            Command::Ping { .. } => "ping",
            Command::Flood { .. } => "flood",
            Command::Hold { .. } => "hold",
            Command::Close => "close",
        }
    }

    /// The command as one JSON line (no newline).
    ///
    /// ```
    /// use benches::protocol::Command;
    /// use std::time::Duration;
    /// let c = Command::Flood { duration: Duration::from_millis(1500), batch: 64 };
    /// assert_eq!(Command::parse(&c.to_line()), Some(c));
    /// ```
    pub fn to_line(&self) -> String {
        let v = match self {
            Command::Connect | Command::Close => json!({ "cmd": self.name() }),
            Command::Ping { duration } | Command::Hold { duration } => {
                json!({ "cmd": self.name(), "ms": duration.as_millis() as u64 })
            }
            Command::Flood { duration, batch } => {
                json!({ "cmd": "flood", "ms": duration.as_millis() as u64, "batch": batch })
            }
        };
        v.to_string()
    }

    /// Reads a line written by [`Command::to_line`]; `None` if it is not one.
    pub fn parse(line: &str) -> Option<Command> {
        let v: Value = serde_json::from_str(line).ok()?;
        let ms = || {
            v.get("ms")
                .and_then(Value::as_u64)
                .map(Duration::from_millis)
        };
        Some(match v.get("cmd")?.as_str()? {
            "connect" => Command::Connect,
            "close" => Command::Close,
            "ping" => Command::Ping { duration: ms()? },
            "hold" => Command::Hold { duration: ms()? },
            "flood" => Command::Flood {
                duration: ms()?,
                batch: u32::try_from(v.get("batch")?.as_u64()?).ok()?.max(1),
            },
            _ => return None,
        })
    }
}

/// What one worker measured in one phase.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// The phase's name.
    pub phase: String,
    /// Connections that did their part (handshaken, or finished the phase).
    pub ok: u64,
    /// Connections that failed during the phase (and are gone).
    pub failed: u64,
    /// Operations counted: handshakes, round trips, or messages sent.
    pub ops: u64,
    /// Bytes written by the clients in the phase.
    pub bytes: u64,
    /// From the command's arrival to the last operation's completion.
    pub elapsed: Duration,
    /// Latencies in microseconds (handshakes or round trips).
    pub latency: Histogram,
    /// The first error seen, if any (one is enough to diagnose; all are counted).
    pub first_error: Option<String>,
}

/// What a worker tells the coordinator.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// Started, ready for the first command.
    Ready,
    /// Operations done so far in the current phase.
    Progress(u64),
    /// The current phase is over.
    Done(Outcome),
    /// The worker cannot go on.
    Fatal(String),
}

impl Report {
    /// The report as one JSON line (no newline).
    ///
    /// ```
    /// use benches::protocol::Report;
    /// assert_eq!(Report::parse(&Report::Progress(7).to_line()), Some(Report::Progress(7)));
    /// ```
    pub fn to_line(&self) -> String {
        let v = match self {
            Report::Ready => json!({ "type": "ready" }),
            Report::Progress(n) => json!({ "type": "progress", "n": n }),
            Report::Fatal(msg) => json!({ "type": "fatal", "msg": msg }),
            Report::Done(o) => json!({
                "type": "done",
                "phase": o.phase,
                "ok": o.ok,
                "failed": o.failed,
                "ops": o.ops,
                "bytes": o.bytes,
                "elapsed_us": o.elapsed.as_micros() as u64,
                "latency": o.latency.to_json(),
                "error": o.first_error,
            }),
        };
        v.to_string()
    }

    /// Reads a line written by [`Report::to_line`]; `None` if it is not one.
    pub fn parse(line: &str) -> Option<Report> {
        let v: Value = serde_json::from_str(line).ok()?;
        let u = |k: &str| v.get(k).and_then(Value::as_u64);
        Some(match v.get("type")?.as_str()? {
            "ready" => Report::Ready,
            "progress" => Report::Progress(u("n")?),
            "fatal" => Report::Fatal(v.get("msg")?.as_str()?.to_string()),
            "done" => Report::Done(Outcome {
                phase: v.get("phase")?.as_str()?.to_string(),
                ok: u("ok")?,
                failed: u("failed")?,
                ops: u("ops")?,
                bytes: u("bytes")?,
                elapsed: Duration::from_micros(u("elapsed_us")?),
                latency: Histogram::from_json(v.get("latency")?)?,
                first_error: v.get("error").and_then(Value::as_str).map(String::from),
            }),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_round_trips() {
        let d = Duration::from_millis(2500);
        for c in [
            Command::Connect,
            Command::Close,
            Command::Ping { duration: d },
            Command::Hold { duration: d },
            Command::Flood {
                duration: d,
                batch: 16,
            },
        ] {
            assert_eq!(Command::parse(&c.to_line()), Some(c));
        }
        assert_eq!(Command::parse("{\"cmd\":\"dance\"}"), None);
        assert_eq!(Command::parse("{\"cmd\":\"ping\"}"), None);
        assert_eq!(Command::parse("not json"), None);
        // A zero batch would never make progress: it is read as one.
        assert_eq!(
            Command::parse("{\"cmd\":\"flood\",\"ms\":1,\"batch\":0}"),
            Some(Command::Flood {
                duration: Duration::from_millis(1),
                batch: 1
            })
        );
    }

    #[test]
    fn a_done_report_round_trips() {
        let mut latency = Histogram::default();
        latency.record(120);
        latency.record(90_000);
        let o = Outcome {
            phase: "ping".into(),
            ok: 10,
            failed: 1,
            ops: 12345,
            bytes: 999,
            elapsed: Duration::from_micros(1_500_000),
            latency,
            first_error: Some("connection reset".into()),
        };
        let r = Report::Done(o);
        assert_eq!(Report::parse(&r.to_line()), Some(r));
        assert_eq!(
            Report::parse(&Report::Fatal("x".into()).to_line()),
            Some(Report::Fatal("x".into()))
        );
        assert_eq!(Report::parse(&Report::Ready.to_line()), Some(Report::Ready));
        assert_eq!(Report::parse("{\"type\":\"done\"}"), None);
    }
}
