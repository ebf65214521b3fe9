//! Taking over a caller-owned `std::net::TcpStream`.
//!
//! btcd leaves connection making to its caller (proxies, custom dialers); so does this
//! runtime through `Runtime::add_connection`. glommio can wrap an existing socket only
//! through `FromRawFd` (its safe `From` takes a `socket2::Socket`, a crate outside this
//! workspace's dependency list), so this is the one place with `unsafe` code.

use std::os::fd::IntoRawFd;

use glommio::net::TcpStream;

/// Moves `stream`'s descriptor into a glommio stream on the current executor.
///
/// Must run on an executor thread (glommio registers the socket with that executor).
#[allow(unsafe_code)]
pub(crate) fn into_glommio(stream: std::net::TcpStream) -> TcpStream {
    // glommio reads and writes with MSG_DONTWAIT and waits through io_uring, so the
    // descriptor's own blocking mode does not matter; non-blocking is still the
    // expected state for a socket driven by an event loop.
    let _ = stream.set_nonblocking(true);
    let fd = stream.into_raw_fd();
    // SAFETY: `into_raw_fd` gave up ownership of `fd`: it is an open, connected TCP
    // socket that nothing else refers to or will close. `from_raw_fd` takes that
    // ownership over (the glommio stream closes it when dropped), so the descriptor is
    // owned exactly once.
    unsafe { <TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd) }
}
