//! Opening outbound connections from a chosen local address.
//!
//! Why: the kernel gives each local IP address one range of ephemeral ports (28,232 by
//! default), so one machine can open only that many connections from one address to a
//! given server. A load generator or a multi-homed node picks the source address
//! itself: `127.0.0.2`, `127.0.0.3`, … on loopback each bring a whole new port range.
//! std cannot bind a socket before connecting it, so this uses `socket2` (glommio's own
//! socket type) and hands the socket to glommio.

use std::io;
use std::net::SocketAddr;

use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use socket2::{Domain, Protocol, Socket, Type};

use crate::error::Error;

/// Linux's "operation now in progress": a non-blocking connect that has started.
const EINPROGRESS: i32 = 115;

/// Connects to `remote` from `local` (port 0: any free port) on the current glommio
/// executor, and returns once the TCP handshake is complete.
///
/// Errors: [`Error::LocalBind`] when `local` cannot be used (not an address of this
/// machine, port taken, address family unlike `remote`'s), [`Error::Connect`] when the
/// remote refuses or the network fails. There is no timeout here: race the future
/// against a timer (the runtime's connects do, with [`Limits::connect_timeout`]).
///
/// With port 0 the port is picked when binding, before the remote is known, so the
/// kernel cannot steer clear of a four-tuple the remote still holds in TIME_WAIT from an
/// earlier connection; the remote may then drop the SYN, and the connect takes a
/// retransmission (1 s) longer. Thousands of connections to one server from one
/// address, opened and closed again and again, meet that; a node's outbound peers (one
/// connection per remote) hardly do.
///
/// ```
/// use peer_runtime::dial::connect_from;
///
/// let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let remote = server.local_addr().unwrap();
/// glommio::LocalExecutor::default().run(async move {
///     let stream = connect_from("127.0.0.2:0".parse().unwrap(), remote).await.unwrap();
///     assert_eq!(stream.local_addr().unwrap().ip().to_string(), "127.0.0.2");
/// });
/// let (_, seen) = server.accept().unwrap();
/// assert_eq!(seen.ip().to_string(), "127.0.0.2");
/// ```
///
/// [`Limits::connect_timeout`]: crate::Limits::connect_timeout
pub async fn connect_from(local: SocketAddr, remote: SocketAddr) -> Result<TcpStream, Error> {
    let bind_failed = |source: io::Error| Error::LocalBind { local, source };
    let domain = if remote.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP)).map_err(bind_failed)?;
    socket.set_nonblocking(true).map_err(bind_failed)?;
    socket.bind(&local.into()).map_err(bind_failed)?;
    match socket.connect(&remote.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(EINPROGRESS) => {}
        Err(source) => {
            return Err(Error::Connect {
                addr: remote,
                source,
            })
        }
    }
    let mut stream = TcpStream::from(socket);
    // A zero-length send returns once the socket is connected: while it is connecting
    // the send would block, so glommio waits for writability through io_uring and
    // retries; a refused or failed connect makes it return the socket's error.
    stream.write(&[]).await.map_err(|source| Error::Connect {
        addr: remote,
        source,
    })?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::connect_from;
    use crate::error::Error;
    use std::net::SocketAddr;

    fn run<T: 'static>(f: impl std::future::Future<Output = T> + 'static) -> T {
        glommio::LocalExecutor::default().run(f)
    }

    #[test]
    fn the_server_sees_the_chosen_source_address() {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let remote = server.local_addr().unwrap();
        for last in [1u8, 7, 200] {
            let local: SocketAddr = format!("127.0.0.{last}:0").parse().unwrap();
            let ours = run(async move { connect_from(local, remote).await.unwrap().local_addr() })
                .unwrap();
            let (_, seen) = server.accept().unwrap();
            assert_eq!(seen, ours);
            assert_eq!(seen.ip(), local.ip());
            assert_ne!(seen.port(), 0);
        }
    }

    #[test]
    fn a_refused_connect_is_a_connect_error() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap(); // the listener is dropped: nothing listens there
        let err = run(async move { connect_from("127.0.0.3:0".parse().unwrap(), closed).await })
            .unwrap_err();
        match err {
            Error::Connect { addr, source } => {
                assert_eq!(addr, closed);
                assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
            }
            other => panic!("expected a connect error, got {other}"),
        }
    }

    #[test]
    fn an_address_this_machine_does_not_have_is_a_bind_error() {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let remote = server.local_addr().unwrap();
        // TEST-NET-1 (RFC 5737): never assigned to a host.
        let local: SocketAddr = "192.0.2.1:0".parse().unwrap();
        let err = run(async move { connect_from(local, remote).await }).unwrap_err();
        assert!(
            matches!(err, Error::LocalBind { local: l, .. } if l == local),
            "{err}"
        );
    }

    #[test]
    fn a_port_in_use_is_a_bind_error() {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let remote = server.local_addr().unwrap();
        // The server's own address and port are taken.
        let err = run(async move { connect_from(remote, remote).await }).unwrap_err();
        match err {
            Error::LocalBind { source, .. } => {
                assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse)
            }
            other => panic!("expected a bind error, got {other}"),
        }
    }
}
