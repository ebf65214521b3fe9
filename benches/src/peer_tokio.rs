//! The fourth system: peerwire's own peers (peer-core) on tokio (peer-tokio), as a server.
//! Loaded by peerwire's client (peer-runtime) unless `--client tokio` says otherwise, so
//! against the `ours` column it measures the driver and runtime (glommio vs tokio) with
//! the same protocol code, and against the `tokio` column the library (peer-core vs the
//! `bitcoin` crate) on the same runtime.

use std::io;
use std::net::SocketAddr;

use peer_tokio::Node;
use wire_codec::Network;

/// Runs a peer-tokio node on a `threads`-worker tokio runtime until the process is
/// killed. Prints `listening <addr>` once bound. Its peers use `NoopListener`s: peer-core
/// answers pings and keeps every announced inventory entry in its known-inventory filter,
/// which is what the seed-server does with them too.
pub fn serve(listen: SocketAddr, threads: usize, max_peers: usize) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = crate::btc::tokio_listener(listen)?;
        let node = Node::builder(Network::Regtest)
            .max_peers(max_peers)
            .build()
            .map_err(io::Error::other)?;
        node.accept_on(listener).map_err(io::Error::other)?;
        println!("listening {listen}");
        std::future::pending::<()>().await;
        Ok(())
    })
}
