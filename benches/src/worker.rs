//! A worker process: `peer-bench worker --kind K --target ADDR --count N`.
//!
//! It reads [`Command`] lines on stdin (on a thread), runs them
//! with the chosen client on one single-threaded executor, and writes
//! [`Report`] lines on stdout. It exits after `close`, or when
//! stdin ends (the coordinator is gone), so no worker outlives a run.

use std::io::{self, BufRead, Write};
use std::rc::Rc;
use std::sync::mpsc;

use crate::load::{drive, Plan};
use crate::protocol::{Command, Report};
use crate::Kind;

fn emit(r: Report) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{}", r.to_line());
    let _ = out.flush();
}

/// Runs a worker of `kind` until `close` or the end of stdin.
/// `handshake_sized`: raw clients connect with the handshake's traffic.
pub fn run(kind: Kind, plan: Plan, handshake_sized: bool) -> io::Result<()> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            match Command::parse(&line) {
                Some(c) => {
                    if tx.send(c).is_err() {
                        break;
                    }
                }
                None => emit(Report::Fatal(format!("unknown command line {line:?}"))),
            }
        }
        // Dropping tx ends the worker: the coordinator is gone.
    });
    match kind {
        Kind::Raw => {
            let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
                .name("peer-bench-raw")
                .io_memory(crate::raw::IO_MEMORY)
                .make()
                .map_err(|e| io::Error::other(e.to_string()))?;
            ex.run(drive(
                Rc::new(Rc::new(if handshake_sized {
                    crate::raw::RawClient::handshake_sized()
                } else {
                    crate::raw::RawClient::default()
                })),
                crate::raw::GlommioExec,
                plan,
                rx,
                emit,
            ));
        }
        Kind::Tokio => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let local = tokio::task::LocalSet::new();
            local.block_on(
                &rt,
                drive(
                    Rc::new(Rc::new(crate::btc::BtcClient)),
                    crate::btc::TokioExec,
                    plan,
                    rx,
                    emit,
                ),
            );
        }
        // peer-tokio is only a server; its load comes from peerwire's client.
        Kind::Ours | Kind::OursNoBp | Kind::PeerTokio => {
            crate::ours::run_worker(plan, rx, emit)?;
        }
    }
    Ok(())
}
