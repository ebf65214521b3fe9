//! SIGINT and SIGTERM end a run early and cleanly: the phase in progress is abandoned,
//! every child process (servers, workers) is stopped and reaped by its guard, the
//! systems measured so far are reported, and peer-bench exits 0.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

/// Whether SIGINT or SIGTERM arrived.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Takes SIGINT and SIGTERM on a thread of its own (a one-thread tokio runtime): the
/// first sets [`stop_requested`]; a second one ends the process at once (exit 130).
pub fn install() -> io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let (mut term, mut int) = rt.block_on(async {
        Ok::<_, io::Error>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    })?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            rt.block_on(async {
                for _ in 0..2 {
                    let name = tokio::select! {
                        _ = term.recv() => "SIGTERM",
                        _ = int.recv() => "SIGINT",
                    };
                    if STOP.swap(true, Ordering::Relaxed) {
                        eprintln!("peer-bench: {name} again: exiting now");
                        std::process::exit(130);
                    }
                    eprintln!(
                        "peer-bench: {name}: stopping the run (children stopped, results so far \
                         reported); again to exit at once"
                    );
                }
            })
        })?;
    Ok(())
}

/// Sets the flag as a signal would (for tests).
#[doc(hidden)]
pub fn request_stop_for_test() {
    STOP.store(true, Ordering::Relaxed);
}
