//! The alternative: a minimal tokio peer on the `bitcoin` crate (0.32), server and client.
//!
//! This is what a Rust user would write today without peerwire: `RawNetworkMessage`
//! for framing, checksums and typed messages, `tokio` tasks and sockets, a handshake of
//! `version`/`verack`, `pong` for every `ping`, and every `inv` decoded. It is written
//! the way a careful user would (a read buffer consumed by offset and compacted once per
//! read, a batch of messages encoded into one write), so that the ratio
//! "ours / tokio+bitcoin" measures the libraries, not a strawman.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bitcoin::consensus::encode::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::p2p::address::Address;
use bitcoin::p2p::message::{NetworkMessage, RawNetworkMessage};
use bitcoin::p2p::message_blockdata::Inventory;
use bitcoin::p2p::message_network::VersionMessage;
use bitcoin::p2p::{Magic, ServiceFlags};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::load::{Client, Conn, Exec};

/// Largest payload accepted (the protocol's 32 MiB): a length above it is an error, not
/// an allocation.
const MAX_PAYLOAD: usize = 32 * 1024 * 1024;

/// A framed bitcoin-crate connection over a tokio stream.
pub struct Framed {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    magic: Magic,
}

fn bad(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl Framed {
    /// Wraps a connected stream.
    pub fn new(stream: TcpStream, magic: Magic) -> Framed {
        Framed {
            stream,
            buf: Vec::new(),
            start: 0,
            magic,
        }
    }

    /// Reads the next message (frame checked and decoded by the `bitcoin` crate).
    pub async fn next(&mut self) -> io::Result<NetworkMessage> {
        loop {
            let avail = &self.buf[self.start..];
            if avail.len() >= 24 {
                let len = u32::from_le_bytes([avail[16], avail[17], avail[18], avail[19]]) as usize;
                if len > MAX_PAYLOAD {
                    return Err(bad(format!("payload of {len} bytes")));
                }
                if avail.len() >= 24 + len {
                    let raw: RawNetworkMessage = deserialize(&avail[..24 + len]).map_err(bad)?;
                    self.start += 24 + len;
                    if *raw.magic() != self.magic {
                        return Err(bad("wrong network magic"));
                    }
                    return Ok(raw.into_payload());
                }
            }
            // Compact once per read, not once per message.
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(16 * 1024);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Writes one message.
    pub async fn send(&mut self, msg: NetworkMessage) -> io::Result<()> {
        let bytes = serialize(&RawNetworkMessage::new(self.magic, msg));
        self.stream.write_all(&bytes).await
    }

    /// Writes bytes that already hold whole encoded messages.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }
}

fn version_message(nonce: u64) -> NetworkMessage {
    let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    NetworkMessage::Version(VersionMessage::new(
        ServiceFlags::NONE,
        now,
        Address::new(&any, ServiceFlags::NONE),
        Address::new(&any, ServiceFlags::NONE),
        nonce,
        "/tokio-bitcoin-baseline:0.1/".into(),
        0,
    ))
}

/// The listen backlog: glommio's (and so peer-runtime's).
const LISTEN_BACKLOG: u32 = 1024;

/// Serves one connection: handshake, pong every ping, decode everything.
async fn serve_conn(stream: TcpStream, nonce: u64) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut conn = Framed::new(stream, Magic::REGTEST);
    let mut sent_version = false;
    loop {
        match conn.next().await? {
            NetworkMessage::Version(_) if !sent_version => {
                conn.send(version_message(nonce)).await?;
                conn.send(NetworkMessage::Verack).await?;
                sent_version = true;
            }
            NetworkMessage::Ping(n) => conn.send(NetworkMessage::Pong(n)).await?,
            // inv and anything else: decoded (above) and dropped, as a seed server would.
            _ => {}
        }
    }
}

/// A tokio listener on `listen` with glommio's backlog. `TcpListener::bind` listens with
/// a backlog of 128 (as std does); glommio and so peer-runtime use 1,024. Every tokio
/// server in the bench (tokio + bitcoin, peer-tokio) uses the same backlog, or a connect
/// storm measures SYN retransmissions instead of the libraries. Call inside a runtime.
pub(crate) fn tokio_listener(listen: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let socket = if listen.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(listen)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Runs the tokio + bitcoin server on a `threads`-worker tokio runtime until the process
/// is killed. Prints `listening <addr>` once bound.
pub fn serve(listen: SocketAddr, threads: usize) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio_listener(listen)?;
        println!("listening {listen}");
        let mut nonce = 0x5eed_u64;
        loop {
            match listener.accept().await {
                Ok((s, _)) => {
                    nonce = nonce.wrapping_add(1);
                    tokio::spawn(serve_conn(s, nonce));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
}

/// The tokio + bitcoin client.
#[derive(Default)]
pub struct BtcClient;

/// Encodes `n` one-entry `inv` messages announcing new transactions (`next` numbers
/// them) into `out`, as a peer announcing fresh inventory does: every message is built
/// and encoded (checksum included) by the `bitcoin` crate, as peerwire's client does
/// with its own; one buffer, reused, holds the batch for one write.
fn encode_inv_batch(out: &mut Vec<u8>, n: u32, next: &mut u64) {
    use bitcoin::consensus::Encodable;
    out.clear();
    for _ in 0..n {
        let mut h = [0x11u8; 32];
        h[..8].copy_from_slice(&next.to_le_bytes());
        *next += 1;
        let inv = Inventory::Transaction(bitcoin::Txid::from_byte_array(h));
        let msg = RawNetworkMessage::new(Magic::REGTEST, NetworkMessage::Inv(vec![inv]));
        msg.consensus_encode(out)
            .expect("encoding into a Vec cannot fail");
    }
}

/// One tokio + bitcoin connection.
pub struct BtcConn {
    framed: Framed,
    /// The flood's write buffer (one batch).
    batch: Vec<u8>,
    /// The number of the next transaction announced.
    next_tx: u64,
}

impl Client for std::rc::Rc<BtcClient> {
    type Conn = BtcConn;

    async fn connect(&self, target: SocketAddr, source: Option<IpAddr>) -> io::Result<BtcConn> {
        let stream = match source {
            None => TcpStream::connect(target).await?,
            Some(ip) => {
                let socket = if target.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()?
                } else {
                    tokio::net::TcpSocket::new_v6()?
                };
                socket.bind(SocketAddr::new(ip, 0))?;
                socket.connect(target).await?
            }
        };
        stream.set_nodelay(true)?;
        let mut framed = Framed::new(stream, Magic::REGTEST);
        framed.send(version_message(0xc1)).await?;
        let (mut got_version, mut got_verack) = (false, false);
        while !(got_version && got_verack) {
            match framed.next().await? {
                NetworkMessage::Version(_) if !got_version => {
                    framed.send(NetworkMessage::Verack).await?;
                    got_version = true;
                }
                NetworkMessage::Verack => got_verack = true,
                _ => {}
            }
        }
        Ok(BtcConn {
            framed,
            batch: Vec::new(),
            next_tx: 0,
        })
    }
}

impl Conn for BtcConn {
    async fn round_trip(&mut self, nonce: u64) -> io::Result<()> {
        self.framed.send(NetworkMessage::Ping(nonce)).await?;
        loop {
            if let NetworkMessage::Pong(n) = self.framed.next().await? {
                if n == nonce {
                    return Ok(());
                }
            }
        }
    }

    async fn flood(&mut self, batch: u32) -> io::Result<u64> {
        encode_inv_batch(&mut self.batch, batch, &mut self.next_tx);
        self.framed.send_raw(&self.batch).await?;
        Ok(self.batch.len() as u64)
    }
}

/// The tokio side of [`Exec`] (a current-thread runtime inside a `LocalSet`).
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioExec;

impl Exec for TokioExec {
    fn spawn(&self, f: impl std::future::Future<Output = ()> + 'static) {
        tokio::task::spawn_local(f);
    }

    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_whole_inv_frames_each_announcing_a_new_transaction() {
        let mut b = Vec::new();
        let mut next = 5;
        encode_inv_batch(&mut b, 3, &mut next);
        assert_eq!(next, 8);
        assert_eq!(b.len(), 3 * crate::load::INV_FRAME_LEN as usize);
        let mut seen = Vec::new();
        for frame in b.chunks(crate::load::INV_FRAME_LEN as usize) {
            let raw: RawNetworkMessage = deserialize(frame).unwrap();
            match raw.payload() {
                NetworkMessage::Inv(v) if v.len() == 1 => seen.push(v[0]),
                other => panic!("expected a one-entry inv, got {other:?}"),
            }
        }
        seen.dedup();
        assert_eq!(seen.len(), 3, "every message announces another transaction");
        // The next batch goes on numbering.
        let first = b[..crate::load::INV_FRAME_LEN as usize].to_vec();
        encode_inv_batch(&mut b, 3, &mut next);
        assert_ne!(&b[..first.len()], &first[..]);
    }

    #[test]
    fn handshake_ping_and_flood_against_the_server() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::task::spawn_local(async move {
                let (s, _) = listener.accept().await.unwrap();
                let _ = serve_conn(s, 1).await;
            });
            let client = std::rc::Rc::new(BtcClient);
            let mut conn = client.connect(addr, None).await.unwrap();
            conn.round_trip(42).await.unwrap();
            assert_eq!(conn.flood(10).await.unwrap(), 610);
            conn.round_trip(43).await.unwrap();
        });
    }
}
