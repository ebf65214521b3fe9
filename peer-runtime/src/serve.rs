//! The main future of one executor thread: takes requests from the runtime's control
//! mailbox, runs the acceptor and the memory-budget check, and on shutdown disconnects
//! every peer and waits for their tasks.

use std::future::poll_fn;
use std::rc::Rc;

use glommio::net::TcpListener;
use tracing::debug;

use crate::accept::accept_loop;
use crate::connect::{adopt, connect};
use crate::control::Control;
use crate::executor::{budget_loop, CoreLocal};
use crate::handle::PeerHandle;

/// The main future of one executor thread.
pub(crate) async fn executor_main(core: Rc<CoreLocal>, listener: Option<TcpListener>) {
    let acceptor = listener.map(|l| glommio::spawn_local(accept_loop(core.clone(), l)));
    let budget = glommio::spawn_local(budget_loop(core.clone()));
    'serve: loop {
        poll_fn(|cx| core.me.control.poll_ready(cx)).await;
        for control in core.me.control.take_all() {
            match control {
                Control::Connect {
                    addr,
                    local,
                    listener,
                    config,
                    v2,
                    reply,
                } => {
                    core.task_started();
                    let c = core.clone();
                    glommio::spawn_local(async move {
                        connect(&c, addr, local, listener, config, v2, reply).await;
                        c.task_ended();
                    })
                    .detach();
                }
                Control::Adopt {
                    stream,
                    direction,
                    listener,
                    config,
                    reply,
                } => reply.resolve(adopt(&core, stream, direction, listener, config)),
                Control::Shutdown => break 'serve,
            }
        }
        if core.me.control.is_closed() {
            break;
        }
    }

    debug!(executor = core.index, "executor shutting down");
    core.stop();
    budget.cancel().await;
    if let Some(acceptor) = acceptor {
        // Dropping the listener stops new connections reaching this executor.
        acceptor.cancel().await;
    }
    // Requests that arrive from now on are answered `ShuttingDown` (by the fallback of
    // their dropped resolvers).
    drop(core.me.control.close());
    let peers: Vec<PeerHandle> = core.me.peers().values().cloned().collect();
    for p in peers {
        p.disconnect();
    }
    core.all_tasks_ended().await;
    debug!(executor = core.index, "executor stopped");
}
