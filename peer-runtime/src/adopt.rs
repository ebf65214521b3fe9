//! Taking over a caller-owned `std::net::TcpStream`.
//!
//! btcd leaves connection making to its caller (proxies, custom dialers); so does this
//! runtime through `Runtime::add_connection`. glommio takes foreign sockets as `socket2`
//! sockets, which own their descriptor exactly as the std stream did.

use glommio::net::TcpStream;

/// Moves `stream`'s descriptor into a glommio stream on the current executor.
///
/// Must run on an executor thread (glommio registers the socket with that executor).
pub(crate) fn into_glommio(stream: std::net::TcpStream) -> TcpStream {
    // glommio reads and writes with MSG_DONTWAIT and waits through io_uring, so the
    // descriptor's own blocking mode does not matter; non-blocking is still the
    // expected state for a socket driven by an event loop.
    let _ = stream.set_nonblocking(true);
    TcpStream::from(socket2::Socket::from(stream))
}
