//! What an accepted peer knows of its socket without asking the kernel again: the
//! remote address `accept` reported, the local address of a listener bound to a
//! specific address, and `TCP_NODELAY` inherited from the listener. Each must be what
//! `getpeername`/`getsockname` would say, for a specific and for a wildcard listener.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use peer_runtime::{Direction, PeerHandle, Runtime};
use wire_codec::Network;

fn server(listen: &str) -> Runtime {
    Runtime::builder(Network::Regtest)
        .executors(1)
        .io_memory(128 * 1024)
        .listen(listen.parse().unwrap())
        .start()
        .expect("server starts")
}

/// The inbound peer whose remote address is `remote`, once the server has it.
fn inbound(rt: &Runtime, remote: SocketAddr) -> PeerHandle {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(p) = rt
            .peers()
            .into_iter()
            .find(|p| p.direction() == Direction::Inbound && p.addr() == remote)
        {
            return p;
        }
        assert!(Instant::now() < until, "no inbound peer from {remote}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_specific_listener_gives_accepted_peers_the_kernels_addresses() {
    let rt = server("127.0.0.1:0");
    let port = rt.local_addr().unwrap().port();
    // From another loopback address, so the remote differs from the local one.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.2:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket
        .connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap();
    let client: TcpStream = socket.into();
    let p = inbound(&rt, client.local_addr().unwrap());
    assert_eq!(p.addr(), client.local_addr().unwrap());
    assert_eq!(p.local_addr(), Some(client.peer_addr().unwrap()));
    rt.shutdown();
}

#[test]
fn a_wildcard_listener_asks_the_socket_for_the_local_address() {
    let rt = server("0.0.0.0:0");
    let port = rt.local_addr().unwrap().port();
    let client = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
    let p = inbound(&rt, client.local_addr().unwrap());
    // Not the listener's 0.0.0.0: the address the connection actually reached.
    assert_eq!(p.local_addr(), Some(client.peer_addr().unwrap()));
    assert!(!p.local_addr().unwrap().ip().is_unspecified());
    rt.shutdown();
}
