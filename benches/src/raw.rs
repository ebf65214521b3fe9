//! The limit: a raw glommio echo server and client, with no protocol and no checksum.
//!
//! Messages are records of the same sizes as the Bitcoin frames the other clients send
//! (32 bytes for a ping, 61 for a one-entry `inv`), framed by the smallest header that
//! can tell the server what to do: `[flag: u8][0][length: u16 LE]`. Flag 1 asks for the
//! record back (ping → pong); flag 0 is consumed silently (inventory); flag 2 asks for
//! a reply of the length its first two payload bytes give. On accept the server writes
//! one byte, so the client's "handshake" is exactly TCP connect + accept — unless the
//! run measures the handshake's floor (`peer-bench --raw-handshake`): then the server
//! greets no one, and the client's handshake is the Bitcoin handshake's traffic without
//! its protocol: a record of the client's first write out, one of the server's reply
//! back, one of the client's second write out ([`HANDSHAKE_SIZES`]).
//! Whatever peer-runtime does beyond this — framing checks, double SHA-256, typed
//! decode, the state machine — is the cost the ratio "ours / raw" shows.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

use crate::load::{Client, Conn, Exec, INV_FRAME_LEN, PING_FRAME_LEN};

/// The byte the server writes when it accepts a connection.
pub const HELLO: u8 = 0xA5;
/// Record flag: echo this record back.
pub const ECHO: u8 = 1;
/// Record flag: consume this record.
pub const SINK: u8 = 0;
/// Record flag: answer with a [`SINK`] record of the length (u16 LE) in the first two
/// payload bytes.
pub const REPLY: u8 = 2;
/// The bytes of a peerwire handshake as the client sees them, one write each: its
/// `version` frame out (24-byte header + 102-byte payload with peerwire's user agent);
/// the server's `version`, `wtxidrelay`, `sendaddrv2` and `verack` back (BIP 339 and
/// BIP 155 are negotiated between `version` and `verack`); its own `wtxidrelay`,
/// `sendaddrv2` and `verack` out. (A test checks them against the bytes peer-core
/// really writes.)
pub const HANDSHAKE_SIZES: (u16, u16, u16) = (126, 126 + 3 * 24, 3 * 24);
/// The record header: flag, zero, length (u16 LE, header included).
pub const RECORD_HEADER: usize = 4;

/// Writes one record of `len` bytes (≥ [`RECORD_HEADER`]) with `flag`, its payload filled
/// with `fill`, at the end of `out`.
///
/// ```
/// let mut out = Vec::new();
/// benches::raw::put_record(&mut out, benches::raw::ECHO, 32, 7);
/// assert_eq!(out.len(), 32);
/// assert_eq!(&out[..4], &[1, 0, 32, 0]);
/// ```
pub fn put_record(out: &mut Vec<u8>, flag: u8, len: u16, fill: u8) {
    let len = len.max(RECORD_HEADER as u16);
    out.push(flag);
    out.push(0);
    out.extend_from_slice(&len.to_le_bytes());
    out.resize(out.len() + usize::from(len) - RECORD_HEADER, fill);
}

/// What the server does with a buffer of received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    /// Bytes of whole records consumed from the front.
    pub consumed: usize,
    /// Records seen.
    pub records: u64,
}

/// Scans the whole records at the front of `buf`, appending every echo record to `out`.
/// `Err` if a record claims a length below its own header (the stream is garbage).
///
/// ```
/// use benches::raw::{put_record, scan, ECHO, SINK};
/// let mut buf = Vec::new();
/// put_record(&mut buf, SINK, 61, 0);
/// put_record(&mut buf, ECHO, 32, 9);
/// buf.extend_from_slice(&[1, 0]); // half a header
/// let mut out = Vec::new();
/// let s = scan(&buf, &mut out).unwrap();
/// assert_eq!((s.consumed, s.records, out.len()), (93, 2, 32));
/// ```
pub fn scan(buf: &[u8], out: &mut Vec<u8>) -> Result<Scan, u16> {
    let mut pos = 0;
    let mut records = 0;
    while let Some(head) = buf.get(pos..pos + RECORD_HEADER) {
        let len = u16::from_le_bytes([head[2], head[3]]);
        if usize::from(len) < RECORD_HEADER {
            return Err(len);
        }
        let Some(record) = buf.get(pos..pos + usize::from(len)) else {
            break;
        };
        if head[0] == ECHO {
            out.extend_from_slice(record);
        } else if head[0] == REPLY {
            let asked = match record.get(RECORD_HEADER..RECORD_HEADER + 2) {
                Some(b) => u16::from_le_bytes([b[0], b[1]]),
                None => return Err(len),
            };
            put_record(out, SINK, asked, 0x5a);
        }
        pos += usize::from(len);
        records += 1;
    }
    Ok(Scan {
        consumed: pos,
        records,
    })
}

/// io_uring buffer memory per executor: glommio's 10 MiB default is for storage I/O,
/// which nothing here does, and exceeds an unprivileged 8 MiB `ulimit -l`.
pub const IO_MEMORY: usize = 512 * 1024;

/// Read buffer of a server connection, allocated when its first bytes arrive so that
/// idle connections cost only the socket and the task.
const SERVER_BUF: usize = 16 * 1024;

/// Serves one connection: hello (if `greet`), then echo/consume/reply to records until
/// the client leaves.
async fn serve_conn(mut s: TcpStream, greet: bool) -> io::Result<()> {
    s.set_nodelay(true)?;
    if greet {
        s.write_all(&[HELLO]).await?;
    }
    // Wait for data before allocating the buffer.
    let mut probe = [0u8; 1];
    if s.peek(&mut probe).await? == 0 {
        return Ok(());
    }
    let mut buf = vec![0u8; SERVER_BUF];
    let mut filled = 0;
    let mut out = Vec::new();
    loop {
        let n = s.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let scanned = scan(&buf[..filled], &mut out).map_err(|len| {
            io::Error::new(io::ErrorKind::InvalidData, format!("record length {len}"))
        })?;
        buf.copy_within(scanned.consumed..filled, 0);
        filled -= scanned.consumed;
        if !out.is_empty() {
            s.write_all(&out).await?;
            out.clear();
        }
    }
}

/// Runs the raw echo server on `threads` glommio executors, each with its own
/// `SO_REUSEPORT` listener on `listen` (as peer-runtime does), until the process is
/// killed. Prints `listening <addr>` once every executor is bound. `greet`: write
/// [`HELLO`] to every accepted connection (off for handshake-sized exchanges).
pub fn serve(listen: SocketAddr, threads: usize, greet: bool) -> io::Result<()> {
    let threads = threads.max(1);
    let ready = std::sync::Arc::new(std::sync::Barrier::new(threads + 1));
    let mut handles = Vec::new();
    for i in 0..threads {
        let ready = ready.clone();
        let h = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(i % crate::cpus()))
            .name(&format!("raw-echo-{i}"))
            .io_memory(IO_MEMORY)
            .spawn(move || async move {
                let listener = match TcpListener::bind(listen) {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("raw echo: bind {listen}: {e}");
                        std::process::exit(1);
                    }
                };
                ready.wait();
                loop {
                    match listener.accept().await {
                        Ok(s) => {
                            glommio::spawn_local(async move {
                                let _ = serve_conn(s, greet).await;
                            })
                            .detach();
                        }
                        // Out of descriptors or a transient error: back off and go on.
                        Err(_) => glommio::timer::sleep(Duration::from_millis(10)).await,
                    }
                }
            })
            .map_err(|e| io::Error::other(e.to_string()))?;
        handles.push(h);
    }
    ready.wait();
    println!("listening {listen}");
    for h in handles {
        let _ = h.join();
    }
    Ok(())
}

/// The raw client: records of the sizes of a ping frame and a one-entry `inv` frame.
#[derive(Default)]
pub struct RawClient {
    batches: RefCell<HashMap<u32, Rc<Vec<u8>>>>,
    /// Connect with the handshake's traffic ([`HANDSHAKE_SIZES`]) instead of waiting
    /// for the server's hello (the server must not greet).
    handshake: bool,
}

impl RawClient {
    /// A client whose connects exchange the handshake's traffic (see the module docs).
    pub fn handshake_sized() -> RawClient {
        RawClient {
            handshake: true,
            ..RawClient::default()
        }
    }

    fn batch(&self, n: u32) -> Rc<Vec<u8>> {
        self.batches
            .borrow_mut()
            .entry(n)
            .or_insert_with(|| {
                let mut v = Vec::with_capacity(n as usize * INV_FRAME_LEN as usize);
                for _ in 0..n {
                    put_record(&mut v, SINK, INV_FRAME_LEN as u16, 0x11);
                }
                Rc::new(v)
            })
            .clone()
    }
}

/// One raw connection.
pub struct RawConn {
    stream: TcpStream,
    client: Rc<RawClient>,
}

impl Client for Rc<RawClient> {
    type Conn = RawConn;

    async fn connect(&self, target: SocketAddr, source: Option<IpAddr>) -> io::Result<RawConn> {
        let mut stream = match source {
            None => TcpStream::connect(target)
                .await
                .map_err(|e| io::Error::other(e.to_string()))?,
            Some(ip) => peer_runtime::dial::connect_from(SocketAddr::new(ip, 0), target)
                .await
                .map_err(io::Error::other)?,
        };
        stream
            .set_nodelay(true)
            .map_err(|e| io::Error::other(e.to_string()))?;
        if self.handshake {
            let (version, reply, verack) = HANDSHAKE_SIZES;
            let mut out = Vec::with_capacity(usize::from(version));
            put_record(&mut out, REPLY, version, 0);
            out[RECORD_HEADER..RECORD_HEADER + 2].copy_from_slice(&reply.to_le_bytes());
            stream.write_all(&out).await?;
            let mut back = vec![0u8; usize::from(reply)];
            stream.read_exact(&mut back).await?;
            if back[..RECORD_HEADER] != [SINK, 0, reply.to_le_bytes()[0], reply.to_le_bytes()[1]] {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "not a greeting-less raw echo server",
                ));
            }
            out.clear();
            put_record(&mut out, SINK, verack, 0);
            stream.write_all(&out).await?;
        } else {
            let mut hello = [0u8; 1];
            stream.read_exact(&mut hello).await?;
            if hello[0] != HELLO {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "not the raw echo server",
                ));
            }
        }
        Ok(RawConn {
            stream,
            client: self.clone(),
        })
    }
}

impl Conn for RawConn {
    async fn round_trip(&mut self, nonce: u64) -> io::Result<()> {
        let mut rec = [0u8; PING_FRAME_LEN as usize];
        rec[0] = ECHO;
        rec[2..4].copy_from_slice(&(PING_FRAME_LEN as u16).to_le_bytes());
        rec[24..32].copy_from_slice(&nonce.to_le_bytes());
        self.stream.write_all(&rec).await?;
        let mut back = [0u8; PING_FRAME_LEN as usize];
        self.stream.read_exact(&mut back).await?;
        if back[24..32] != rec[24..32] {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "echo of another record",
            ));
        }
        Ok(())
    }

    async fn flood(&mut self, batch: u32) -> io::Result<u64> {
        let b = self.client.batch(batch);
        self.stream.write_all(&b).await?;
        Ok(b.len() as u64)
    }
}

/// The glommio side of [`Exec`].
#[derive(Clone, Copy, Debug, Default)]
pub struct GlommioExec;

impl Exec for GlommioExec {
    fn spawn(&self, f: impl std::future::Future<Output = ()> + 'static) {
        glommio::spawn_local(f).detach();
    }

    async fn sleep(&self, d: Duration) {
        glommio::timer::sleep(d).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The raw client against the raw server: connect + accept, echo round trips, and a
    /// sink flood closed by an echo barrier.
    #[test]
    fn client_and_server_over_loopback() {
        every_phase(true, RawClient::default());
    }

    /// The same with handshake-sized connects against a server that does not greet.
    #[test]
    fn handshake_sized_connects_over_loopback() {
        every_phase(false, RawClient::handshake_sized());
    }

    /// A handshake-sized client cannot mistake a greeting server for a silent one.
    #[test]
    fn a_handshake_sized_client_notices_a_greeting_server() {
        let addr = start_server(true);
        let client = Rc::new(RawClient::handshake_sized());
        let res = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(IO_MEMORY)
            .make()
            .unwrap()
            .run(async move { client.connect(addr, None).await.map(|_| ()) });
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    /// The handshake the raw client imitates is byte for byte as long as peerwire's.
    #[test]
    fn handshake_sizes_are_peerwires() {
        use peer_core::{Config, Listener, Peer};
        use std::time::Instant;
        struct NoOne;
        impl Listener for NoOne {}
        // The seed-server's configuration (the defaults); both ends in one process.
        let cfg = || {
            let mut c = Config::new(wire_codec::Network::Regtest);
            c.allow_self_connections = true;
            std::sync::Arc::new(c)
        };
        let now = Instant::now();
        let addr: SocketAddr = "127.0.0.1:18444".parse().unwrap();
        let mut out = Peer::new_outbound(cfg(), addr, now, 1_700_000_000, 1);
        let mut inb = Peer::new_inbound(cfg(), addr, now, 1_700_000_000, 2);
        let sent = |p: &mut Peer| {
            let n = p.transmit().len();
            p.advance_transmit(n, now);
            n
        };
        let relay = |from: &mut Peer, to: &mut Peer| {
            let mut bytes = bytes::BytesMut::from(from.transmit());
            let n = bytes.len();
            from.advance_transmit(n, now);
            to.handle_read(&mut bytes, now);
            while let Some(ev) = to.poll_event() {
                peer_core::dispatch(to, ev, &mut NoOne, now);
            }
            n
        };
        let version = relay(&mut out, &mut inb);
        let reply = relay(&mut inb, &mut out);
        let verack = sent(&mut out);
        let (v, r, a) = HANDSHAKE_SIZES;
        assert_eq!(
            (version, reply, verack),
            (usize::from(v), usize::from(r), usize::from(a))
        );
    }

    /// Starts a raw server on a free port (on its own threads) and waits until it accepts.
    fn start_server(greet: bool) -> SocketAddr {
        let port = crate::spawn::free_port("127.0.0.1".parse().unwrap()).unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        std::thread::spawn(move || serve(addr, 1, greet));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(std::time::Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        addr
    }

    fn every_phase(greet: bool, client: RawClient) {
        use crate::load::{drive, Plan};
        use crate::protocol::{Command, Report};
        let addr = start_server(greet);
        let (tx, rx) = std::sync::mpsc::channel();
        let short = Duration::from_millis(150);
        for c in [
            Command::Connect,
            Command::Ping { duration: short },
            Command::Flood {
                duration: short,
                batch: 32,
            },
            Command::Close,
        ] {
            tx.send(c).unwrap();
        }
        let reports = Rc::new(RefCell::new(Vec::new()));
        let sink = reports.clone();
        let plan = Plan {
            targets: vec![addr],
            count: 10,
            window: 3,
            nonce_base: 0,
            // Connections from another loopback address work the same.
            source: Some(IpAddr::from([127, 0, 0, 4])),
            v2: false,
        };
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(IO_MEMORY)
            .make()
            .unwrap()
            .run(drive(
                Rc::new(Rc::new(client)),
                GlommioExec,
                plan,
                rx,
                move |r| sink.borrow_mut().push(r),
            ));
        let done: Vec<_> = reports
            .borrow()
            .iter()
            .filter_map(|r| match r {
                Report::Done(o) => Some(o.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(done.len(), 4);
        assert_eq!((done[0].ok, done[0].failed), (10, 0));
        assert_eq!((done[1].ok, done[1].failed), (10, 0));
        assert!(done[1].ops >= 10);
        assert_eq!((done[2].ok, done[2].failed), (10, 0));
        assert_eq!(done[2].bytes, done[2].ops * INV_FRAME_LEN);
        assert_eq!(done[2].ops % 32, 0);
    }

    #[test]
    fn a_short_length_is_garbage() {
        let mut out = Vec::new();
        assert_eq!(scan(&[1, 0, 3, 0, 9, 9], &mut out), Err(3));
        assert!(out.is_empty());
        // A reply request too short to say how much it wants is garbage too.
        assert_eq!(scan(&[REPLY, 0, 5, 0, 9], &mut out), Err(5));
    }

    #[test]
    fn a_reply_request_gets_a_sink_record_of_the_length_asked() {
        let mut buf = Vec::new();
        put_record(&mut buf, REPLY, 126, 0);
        buf[RECORD_HEADER..RECORD_HEADER + 2].copy_from_slice(&150u16.to_le_bytes());
        let mut out = Vec::new();
        let s = scan(&buf, &mut out).unwrap();
        assert_eq!((s.consumed, s.records), (126, 1));
        assert_eq!(out.len(), 150);
        assert_eq!(&out[..RECORD_HEADER], &[SINK, 0, 150, 0]);
    }

    proptest! {
        #[test]
        fn scanning_in_any_split_gives_the_same_echo(lens in proptest::collection::vec((4u16..300, any::<bool>()), 1..40),
                                                      cut in 0usize..10_000) {
            let mut stream = Vec::new();
            let mut expected = Vec::new();
            for (i, (len, echo)) in lens.iter().enumerate() {
                let flag = if *echo { ECHO } else { SINK };
                put_record(&mut stream, flag, *len, i as u8);
                if *echo {
                    put_record(&mut expected, flag, *len, i as u8);
                }
            }
            let cut = cut % (stream.len() + 1);
            // Feed in two pieces, keeping the unconsumed tail as the server does.
            let mut out = Vec::new();
            let mut pending = stream[..cut].to_vec();
            let first = scan(&pending, &mut out).unwrap();
            pending.drain(..first.consumed);
            pending.extend_from_slice(&stream[cut..]);
            let second = scan(&pending, &mut out).unwrap();
            prop_assert_eq!(second.consumed, pending.len());
            prop_assert_eq!(first.records + second.records, lens.len() as u64);
            prop_assert_eq!(out, expected);
        }
    }
}
