//! A raw remote for the runtime's tests: a plain `std::net::TcpStream` that completes a
//! handshake, then writes the frames a test gives it and reads only when asked.
//! Each test crate that includes it uses part of it.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::BytesMut;
use wire_codec::message::{NetAddress, ServiceFlags, Version};
use wire_codec::{encode_frame, Command, Context, FrameDecoder, Message, Network};

const WAIT: Duration = Duration::from_secs(60);

/// A raw remote: handshakes, then writes frames and reads only when asked.
pub struct Raw {
    stream: TcpStream,
    decoder: FrameDecoder,
    buf: BytesMut,
}

pub const NET: Network = Network::Regtest;

pub fn frame(msg: &Message) -> BytesMut {
    let mut out = BytesMut::new();
    encode_frame(NET.magic(), msg, &Context::new(NET, 70016), &mut out).expect("encodes");
    out
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut raw = Raw {
            stream,
            decoder: FrameDecoder::new(NET),
            buf: BytesMut::new(),
        };
        raw.handshake();
        raw
    }

    pub fn local(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    pub fn send(&mut self, msg: &Message) {
        self.stream.write_all(&frame(msg)).expect("write");
    }

    /// The next frame's command and payload length; `None` once the server closed.
    pub fn recv(&mut self) -> Option<(Command, usize)> {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(f)) => return Some((f.header.command, f.payload.len())),
                Ok(None) => {}
                Err(e) => panic!("server sent a bad frame: {e}"),
            }
            let mut chunk = vec![0u8; 256 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read from server: {e}"),
            }
        }
    }

    pub fn handshake(&mut self) {
        let services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
        self.send(&Message::Version(Box::new(Version {
            version: 70016,
            services,
            timestamp: 1_700_000_000,
            receiver: NetAddress::unspecified(ServiceFlags::NETWORK),
            sender: NetAddress::unspecified(services),
            nonce: 7,
            user_agent: "/backpressure:0.1/".into(),
            start_height: 0,
            relay: true,
            relay_present: true,
        })));
        let (mut version, mut verack) = (false, false);
        while !version || !verack {
            let (cmd, _) = self.recv().expect("server closed during the handshake");
            match cmd.as_str() {
                "version" => {
                    version = true;
                    self.send(&Message::Verack);
                }
                "verack" => verack = true,
                _ => {}
            }
        }
    }

    /// Writes bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends `n` getaddr frames in one write (never reading).
    pub fn flood_getaddr(&mut self, n: usize) {
        let one = frame(&Message::GetAddr);
        let mut all = Vec::with_capacity(one.len() * n);
        for _ in 0..n {
            all.extend_from_slice(&one);
        }
        self.stream.write_all(&all).expect("write getaddrs");
    }
}
