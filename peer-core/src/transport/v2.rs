//! BIP324's v2 encrypted transport as a sans-IO state machine.
//!
//! [`V2Transport`] turns received bytes into [`Frame`]s and messages into encrypted
//! packets. It never reads a socket or a clock: the driver hands it the connection's
//! receive buffer (it takes whole packets off the front, zero-copy, as the v1
//! [`FrameDecoder`](wire_codec::FrameDecoder) does) and an output buffer to append to.
//!
//! The handshake is ours, on libsecp256k1 (ElligatorSwift key, x-only ECDH) and
//! `v2_keys` (HKDF session keys and garbage terminators); the packets use `v2_cipher`
//! (FSChaCha20 lengths, FSChaCha20-Poly1305 packets, rekeyed every 224 packets) on
//! ring's AVX2 ChaCha20-Poly1305. The `bip324` crate's `Protocol` stays the independent
//! implementation the tests talk to.
//!
//! ## Why our own handshake states
//! Each handshake state is owned (no borrowed garbage), so it lives in the peer between
//! reads: every public-key computation and ECDH runs exactly once per connection, however
//! the remote splits its bytes. The remote's garbage is kept (split off the receive
//! buffer, no copy) only until the first packet, whose associated data it is.

use std::sync::OnceLock;

use bytes::{Buf, BytesMut};
use rand::{CryptoRng, Rng, RngCore};
use secp256k1::{ellswift::ElligatorSwift, PublicKey, Secp256k1, SecretKey, SignOnly};
use wire_codec::{Command, Frame, FrameHeader, HEADER_LEN};

use crate::error::Error;
use crate::transport::detect::{detect, Detected};
use crate::transport::v2_cipher::{
    begin_packet, DirectionCipher, EXPANSION, LENGTH_LEN, MAX_CONTENTS, TAG_LEN,
};
use crate::transport::v2_keys::SessionKeys;
use crate::transport::v2_messages::{
    decode_message_type, encode_message_type, MAX_MESSAGE_TYPE_LEN,
};

/// BIP324's limit on garbage before the terminator.
pub const MAX_GARBAGE_LEN: usize = 4095;
/// Bytes of an ElligatorSwift-encoded public key.
pub const KEY_LEN: usize = 64;
/// Bytes of a garbage terminator.
pub const TERMINATOR_LEN: usize = crate::transport::v2_keys::TERMINATOR_LEN;
/// Bytes a packet adds to its contents: 3 length bytes, the header byte, the 16-byte tag.
pub const PACKET_OVERHEAD: usize = EXPANSION;

/// Which end of the connection we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// We connected: we send our key first.
    Initiator,
    /// We accepted: the first bytes decide between v1 and v2, then we answer.
    Responder,
}

/// What one [`V2Transport::receive`] call produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A decrypted message. Its header carries magic, command and length; its checksum
    /// field is zero (the packet's tag authenticated it instead).
    Frame(Frame),
    /// Nothing more can be done until more bytes arrive.
    NeedMore,
    /// (Responder only.) The initiator speaks v1: nothing was consumed and nothing sent;
    /// hand the buffer to the v1 frame decoder.
    RemoteIsV1,
}

enum State {
    /// Responder, nothing decided yet (`our_key` is not computed yet). `None`: the
    /// secret key is drawn too once the remote shows v2 (most inbound connections of
    /// a v2-capable server are v1, and drawing it was part of every accepted peer).
    Detecting(Option<Box<KeyExchange>>),
    /// Our key and garbage are sent (or, for an initiator, go out with `start`);
    /// waiting for the remote's key.
    AwaitKey(Box<KeyExchange>),
    /// Our terminator and version packet are sent; reading the remote's garbage,
    /// terminator, decoys and version packet.
    AwaitVersion(Box<Handshaking>),
    /// Session established.
    Ready(Box<Session>),
    /// The responder found a v1 initiator.
    V1,
    /// Something failed; nothing more is decoded.
    Failed,
}

/// Our side of the key exchange. Boxed in the states that hold it: they last one round
/// trip, and inline they would make every established transport 112 bytes bigger.
struct KeyExchange {
    secret: SecretKey,
    our_key: [u8; KEY_LEN],
    garbage: Vec<u8>,
}

/// After the key exchange, before the remote's version packet.
struct Handshaking {
    session: Session,
    recv_terminator: [u8; TERMINATOR_LEN],
    /// Whether the remote's terminator was found (its garbage is then in `aad`).
    found: bool,
    /// Bytes of the buffer already searched for the terminator.
    scanned: usize,
    /// The remote's garbage: the associated data of its first packet only.
    aad: BytesMut,
}

/// An established session: both ciphers and the next packet's decrypted length.
struct Session {
    send: DirectionCipher,
    recv: DirectionCipher,
    session_id: [u8; 32],
    /// Bytes after the length of the packet whose length was decrypted already.
    pending_len: Option<usize>,
}

impl Session {
    /// Bytes the buffer must hold before the next packet can be read.
    fn need(&self) -> usize {
        LENGTH_LEN + self.pending_len.unwrap_or(0)
    }
}

/// One connection's BIP324 transport.
///
/// A complete exchange between two transports wired to each other in memory:
///
/// ```
/// use bytes::BytesMut;
/// use peer_core::transport::{Received, Side, V2Transport};
/// use wire_codec::Command;
///
/// let magic = [0xfa, 0xbf, 0xb5, 0xda];
/// let mut rng = rand::thread_rng();
/// let mut a = V2Transport::new(Side::Initiator, magic, 4_000_000, &mut rng, 10).unwrap();
/// let mut b = V2Transport::new(Side::Responder, magic, 4_000_000, &mut rng, 20).unwrap();
/// let (mut a_in, mut b_in) = (BytesMut::new(), BytesMut::new());
/// a.start(&mut b_in);
/// // Shuttle bytes until both ends have a session.
/// while !(a.is_ready() && b.is_ready()) {
///     let mut to_a = BytesMut::new();
///     assert_eq!(b.receive(&mut b_in, &mut to_a).unwrap(), Received::NeedMore);
///     a_in.extend_from_slice(&to_a);
///     let mut to_b = BytesMut::new();
///     assert_eq!(a.receive(&mut a_in, &mut to_b).unwrap(), Received::NeedMore);
///     b_in.extend_from_slice(&to_b);
/// }
/// assert_eq!(a.session_id(), b.session_id());
///
/// a.encrypt_message(Command::from_static("ping"), &7u64.to_le_bytes(), &mut b_in).unwrap();
/// let Received::Frame(f) = b.receive(&mut b_in, &mut BytesMut::new()).unwrap() else { panic!() };
/// assert_eq!(f.header.command.as_str(), "ping");
/// assert_eq!(&f.payload[..], &7u64.to_le_bytes());
/// ```
pub struct V2Transport {
    side: Side,
    magic: [u8; 4],
    max_contents: usize,
    state: State,
    decoys: u64,
    ignored: u64,
    /// Responder: random garbage bytes to draw (from the thread's CSPRNG) once the
    /// remote shows v2.
    lazy_garbage: usize,
}

impl core::fmt::Debug for V2Transport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("V2Transport")
            .field("side", &self.side)
            .field("ready", &self.is_ready())
            .field("failed", &self.is_failed())
            .finish_non_exhaustive()
    }
}

/// The signing context the handshake needs (one per process: it holds no secrets).
fn curve() -> &'static Secp256k1<SignOnly> {
    static CURVE: OnceLock<Secp256k1<SignOnly>> = OnceLock::new();
    CURVE.get_or_init(Secp256k1::signing_only)
}

impl V2Transport {
    /// A transport with a fresh secret key from `rng` (which must be cryptographically
    /// secure) and `garbage_len` random garbage bytes (at most [`MAX_GARBAGE_LEN`]).
    /// `max_payload` is the largest message payload accepted.
    pub fn new<R: RngCore + CryptoRng>(
        side: Side,
        magic: [u8; 4],
        max_payload: u32,
        rng: &mut R,
        garbage_len: usize,
    ) -> Result<V2Transport, Error> {
        if garbage_len > MAX_GARBAGE_LEN {
            return Err(Error::V2OwnGarbageTooLong { len: garbage_len });
        }
        let secret = loop {
            let candidate: [u8; 32] = rng.gen();
            if SecretKey::from_slice(&candidate).is_ok() {
                break candidate;
            }
        };
        // A responder draws its garbage only once the first bytes say v2: a v1 client
        // of a v2-capable server costs no garbage.
        if side == Side::Responder {
            let mut t = V2Transport::from_parts(side, magic, max_payload, secret, Vec::new())?;
            t.lazy_garbage = garbage_len;
            return Ok(t);
        }
        let mut garbage = vec![0u8; garbage_len];
        rng.fill_bytes(&mut garbage);
        V2Transport::from_parts(side, magic, max_payload, secret, garbage)
    }

    /// A responder that draws its secret key and its `garbage_len` garbage bytes from
    /// the thread's CSPRNG only once the remote's first bytes show v2: an inbound peer
    /// of a v2-capable server that turns out to speak v1 (most of them) costs neither.
    pub(crate) fn deferred_responder(
        magic: [u8; 4],
        max_payload: u32,
        garbage_len: usize,
    ) -> Result<V2Transport, Error> {
        if garbage_len > MAX_GARBAGE_LEN {
            return Err(Error::V2OwnGarbageTooLong { len: garbage_len });
        }
        Ok(V2Transport {
            side: Side::Responder,
            magic,
            max_contents: max_payload as usize + MAX_MESSAGE_TYPE_LEN,
            state: State::Detecting(None),
            decoys: 0,
            ignored: 0,
            lazy_garbage: garbage_len,
        })
    }

    /// A transport from a given secret key and garbage (deterministic: for tests, fuzzing
    /// and reproducible simulations).
    pub fn from_parts(
        side: Side,
        magic: [u8; 4],
        max_payload: u32,
        secret: [u8; 32],
        garbage: Vec<u8>,
    ) -> Result<V2Transport, Error> {
        if garbage.len() > MAX_GARBAGE_LEN {
            return Err(Error::V2OwnGarbageTooLong { len: garbage.len() });
        }
        let secret = SecretKey::from_slice(&secret).map_err(|_| Error::V2InvalidSecret)?;
        let state = match side {
            // An initiator always needs its key; a responder computes it only once the
            // remote shows v2.
            Side::Initiator => State::AwaitKey(Box::new(KeyExchange {
                secret,
                our_key: our_key(&secret),
                garbage,
            })),
            Side::Responder => State::Detecting(Some(Box::new(KeyExchange {
                secret,
                our_key: [0; KEY_LEN],
                garbage,
            }))),
        };
        Ok(V2Transport {
            side,
            magic,
            max_contents: max_payload as usize + MAX_MESSAGE_TYPE_LEN,
            state,
            decoys: 0,
            ignored: 0,
            lazy_garbage: 0,
        })
    }

    /// Initiator: appends our key and garbage to `out` (call once, right after connecting).
    /// Responder: does nothing (it answers once the first bytes say v2).
    pub fn start(&mut self, out: &mut BytesMut) {
        if let (Side::Initiator, State::AwaitKey(kx)) = (self.side, &self.state) {
            out.extend_from_slice(&kx.our_key);
            out.extend_from_slice(&kx.garbage);
        }
    }

    /// Changes the largest message payload accepted (the peer raises it from the
    /// pre-handshake limit once the version handshake completes, as for v1).
    pub fn set_max_payload(&mut self, max_payload: u32) {
        self.max_contents = max_payload as usize + MAX_MESSAGE_TYPE_LEN;
    }

    /// Which end we are.
    pub fn side(&self) -> Side {
        self.side
    }

    /// Whether the session is established (messages can be encrypted).
    pub fn is_ready(&self) -> bool {
        matches!(self.state, State::Ready(_))
    }

    /// Whether the transport failed (or found a v1 initiator) and decodes nothing more.
    pub fn is_failed(&self) -> bool {
        matches!(self.state, State::Failed)
    }

    /// BIP324's session id, once the session is established: both ends see the same 32
    /// bytes (Bitcoin Core shows them in `getpeerinfo`), for out-of-band comparison.
    pub fn session_id(&self) -> Option<[u8; 32]> {
        match &self.state {
            State::Ready(s) => Some(s.session_id),
            _ => None,
        }
    }

    /// Decoy packets received and skipped.
    pub fn decoys_received(&self) -> u64 {
        self.decoys
    }

    /// Genuine packets ignored because their message type is unassigned or malformed.
    pub fn ignored_messages(&self) -> u64 {
        self.ignored
    }

    /// How many more bytes `buf` needs before [`receive`](Self::receive) can progress
    /// (at least 1 while waiting).
    pub fn bytes_needed(&self, buf: &BytesMut) -> usize {
        let want = match &self.state {
            State::Detecting(_) => crate::transport::V1_PREFIX_LEN,
            State::AwaitKey(_) => KEY_LEN,
            State::AwaitVersion(h) if h.found => h.session.need(),
            State::AwaitVersion(h) => h.scanned + 1,
            State::Ready(s) => s.need(),
            State::V1 | State::Failed => 0,
        };
        want.saturating_sub(buf.len()).max(1)
    }

    /// Takes what it can from the front of `buf` (the connection's received bytes) and
    /// returns the next message, appending any handshake bytes to send to `out`. Call it
    /// again until it returns [`Received::NeedMore`].
    ///
    /// An error is final: the connection must be closed, and every later call fails with
    /// [`Error::V2Failed`] without looking at the bytes.
    pub fn receive(&mut self, buf: &mut BytesMut, out: &mut BytesMut) -> Result<Received, Error> {
        match self.step(buf, out) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    fn step(&mut self, buf: &mut BytesMut, out: &mut BytesMut) -> Result<Received, Error> {
        loop {
            match &mut self.state {
                State::Failed => return Err(Error::V2Failed),
                State::V1 => return Ok(Received::RemoteIsV1),
                State::Detecting(kx) => match detect(self.magic, buf) {
                    Detected::NeedMore => return Ok(Received::NeedMore),
                    Detected::V1 => {
                        self.state = State::V1;
                        return Ok(Received::RemoteIsV1);
                    }
                    Detected::V2 => {
                        let kx = kx.get_or_insert_with(|| {
                            Box::new(KeyExchange {
                                secret: random_secret(&mut rand::thread_rng()),
                                our_key: [0; KEY_LEN],
                                garbage: Vec::new(),
                            })
                        });
                        if self.lazy_garbage > 0 {
                            kx.garbage.resize(self.lazy_garbage, 0);
                            rand::thread_rng().fill_bytes(&mut kx.garbage);
                        }
                        kx.our_key = our_key(&kx.secret);
                        out.extend_from_slice(&kx.our_key);
                        out.extend_from_slice(&kx.garbage);
                        let State::Detecting(Some(kx)) =
                            core::mem::replace(&mut self.state, State::Failed)
                        else {
                            return Err(Error::V2Failed);
                        };
                        self.state = State::AwaitKey(kx);
                    }
                },
                State::AwaitKey(kx) => {
                    let KeyExchange {
                        secret,
                        our_key,
                        garbage,
                    } = &**kx;
                    let Some(remote) = buf.get(..KEY_LEN) else {
                        return Ok(Received::NeedMore);
                    };
                    // A v1 node's bytes start with the network magic (as the `bip324`
                    // crate checks too); a key does so with probability 2^-32.
                    if remote[..4] == self.magic {
                        return Err(Error::V2RemoteSpeaksV1);
                    }
                    let mut remote_key = [0u8; KEY_LEN];
                    remote_key.copy_from_slice(remote);
                    buf.advance(KEY_LEN);
                    let initiator = self.side == Side::Initiator;
                    let keys =
                        SessionKeys::derive(secret, our_key, &remote_key, initiator, self.magic);
                    let mut session = Session {
                        send: keys.sender(),
                        recv: keys.receiver(),
                        session_id: keys.session_id,
                        pending_len: None,
                    };
                    // Our terminator, then our version packet (empty contents) with our
                    // garbage as its associated data.
                    out.extend_from_slice(&keys.send_terminator);
                    session
                        .send
                        .encrypt(garbage, false, &[], out)
                        .map_err(|_| Error::V2Failed)?;
                    self.state = State::AwaitVersion(Box::new(Handshaking {
                        session,
                        recv_terminator: keys.recv_terminator,
                        found: false,
                        scanned: 0,
                        aad: BytesMut::new(),
                    }));
                }
                State::AwaitVersion(h) => {
                    if !finish_handshake(h, buf, self.max_contents, &mut self.decoys)? {
                        return Ok(Received::NeedMore);
                    }
                    let State::AwaitVersion(h) = core::mem::replace(&mut self.state, State::Failed)
                    else {
                        return Err(Error::V2Failed);
                    };
                    self.state = State::Ready(Box::new(h.session));
                }
                State::Ready(session) => match read_packet(session, buf, self.max_contents, &[])? {
                    None => return Ok(Received::NeedMore),
                    Some(Packet::Decoy) => self.decoys += 1,
                    Some(Packet::Genuine(mut pkt)) => {
                        match decode_message_type(&pkt[PLAINTEXT_START..]) {
                            Ok((command, used)) => {
                                pkt.advance(PLAINTEXT_START + used);
                                let payload = pkt.freeze();
                                let header = FrameHeader {
                                    magic: self.magic,
                                    command,
                                    length: payload.len() as u32,
                                    checksum: [0; 4],
                                };
                                return Ok(Received::Frame(Frame { header, payload }));
                            }
                            Err(_) => self.ignored += 1,
                        }
                    }
                },
            }
        }
    }

    /// Encrypts one message (command and payload) as one packet appended to `out`: the
    /// message type and payload are copied once, into `out`, and encrypted there.
    pub fn encrypt_message(
        &mut self,
        command: Command,
        payload: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), Error> {
        // Refused before anything is copied (the exact check is `finish_message`'s).
        check_contents(1usize.saturating_add(payload.len()))?;
        let start = self.begin_message(command, payload.len(), out)?;
        out.extend_from_slice(payload);
        self.finish_message(out, start)
    }

    /// Encrypts one v1 frame (24-byte header and payload, as the v1 encoder writes it) as
    /// one packet appended to `out`: the command is read from the header, the payload
    /// copied once (header and checksum are not sent).
    pub fn encrypt_frame(&mut self, frame: &[u8], out: &mut BytesMut) -> Result<(), Error> {
        let Some(header) = frame.get(..HEADER_LEN) else {
            return Err(Error::V2NotReady);
        };
        let mut cmd = [0u8; 12];
        cmd.copy_from_slice(&header[4..16]);
        let command = Command::from_wire(cmd).map_err(|_| Error::V2NotReady)?;
        let payload = &frame[HEADER_LEN..];
        check_contents(1usize.saturating_add(payload.len()))?;
        let start = self.begin_message(command, payload.len(), out)?;
        out.extend_from_slice(payload);
        self.finish_message(out, start)
    }

    /// Starts a message's packet at the end of `out` (placeholders for the length and
    /// header byte, then the message type) and returns where it starts. The caller
    /// writes the payload straight after it — e.g. a message encoder, so the payload is
    /// written once and never copied — then calls [`finish_message`](Self::finish_message).
    /// Nothing changes in the session until then.
    pub(crate) fn begin_message(
        &mut self,
        command: Command,
        payload_hint: usize,
        out: &mut BytesMut,
    ) -> Result<usize, Error> {
        if !matches!(self.state, State::Ready(_)) {
            return Err(Error::V2NotReady);
        }
        let mut mt = [0u8; MAX_MESSAGE_TYPE_LEN];
        let n = encode_message_type(&command, &mut mt);
        let start = begin_packet(out, n.saturating_add(payload_hint));
        out.extend_from_slice(&mt[..n]);
        Ok(start)
    }

    /// Encrypts in place the packet [`begin_message`](Self::begin_message) started at
    /// `start`. On an error the packet is cut off `out` (nothing of it is sent).
    pub(crate) fn finish_message(&mut self, out: &mut BytesMut, start: usize) -> Result<(), Error> {
        let State::Ready(session) = &mut self.state else {
            out.truncate(start);
            return Err(Error::V2NotReady);
        };
        let contents = out.len().saturating_sub(start + PLAINTEXT_START);
        if let Err(e) = check_contents(contents) {
            out.truncate(start);
            return Err(e);
        }
        session
            .send
            .seal_packet(&[], false, out, start)
            .map_err(|_| Error::V2Failed)
    }
}

/// Reads the remote's garbage, terminator, decoys and version packet; true once the
/// version packet authenticated (the session is then established).
fn finish_handshake(
    h: &mut Handshaking,
    buf: &mut BytesMut,
    max_contents: usize,
    decoys: &mut u64,
) -> Result<bool, Error> {
    if !h.found {
        let window = buf.len().min(MAX_GARBAGE_LEN + TERMINATOR_LEN);
        let from = h.scanned.saturating_sub(TERMINATOR_LEN - 1);
        let at = buf[from..window]
            .windows(TERMINATOR_LEN)
            .position(|w| w == h.recv_terminator);
        match at {
            Some(i) => {
                h.aad = buf.split_to(from + i);
                buf.advance(TERMINATOR_LEN);
                h.found = true;
            }
            None if window == MAX_GARBAGE_LEN + TERMINATOR_LEN => {
                return Err(Error::V2GarbageTooLong)
            }
            None => {
                h.scanned = window;
                return Ok(false);
            }
        }
    }
    loop {
        // The remote's garbage authenticates its first packet only.
        let packet = read_packet(&mut h.session, buf, max_contents, &h.aad)?;
        if packet.is_some() && !h.aad.is_empty() {
            h.aad = BytesMut::new();
        }
        match packet {
            None => return Ok(false),
            Some(Packet::Decoy) => *decoys += 1,
            // The version packet's contents are reserved for future features: ignored.
            Some(Packet::Genuine(_)) => return Ok(true),
        }
    }
}

/// One packet after the terminator.
enum Packet {
    Decoy,
    /// The decrypted packet: 3 length bytes, the header byte, contents (tag cut off).
    Genuine(BytesMut),
}

/// Where the contents start in a decrypted packet (after length and header byte).
const PLAINTEXT_START: usize = LENGTH_LEN + 1;

fn check_len(rest: usize, max_contents: usize) -> Result<(), Error> {
    let len = rest.saturating_sub(PACKET_OVERHEAD - LENGTH_LEN);
    if len > max_contents {
        return Err(Error::V2PacketTooLarge {
            len,
            max: max_contents,
        });
    }
    Ok(())
}

fn check_contents(len: usize) -> Result<(), Error> {
    if len > MAX_CONTENTS {
        return Err(Error::V2PacketTooLarge {
            len,
            max: MAX_CONTENTS,
        });
    }
    Ok(())
}

/// Takes the next whole packet off `buf`, authenticated and decrypted in place.
fn read_packet(
    session: &mut Session,
    buf: &mut BytesMut,
    max_contents: usize,
    aad: &[u8],
) -> Result<Option<Packet>, Error> {
    let rest = match session.pending_len {
        Some(rest) => rest,
        None => {
            let Some(len_bytes) = buf.get(..LENGTH_LEN) else {
                return Ok(None);
            };
            let rest = session
                .recv
                .decrypt_length([len_bytes[0], len_bytes[1], len_bytes[2]]);
            check_len(rest, max_contents)?;
            session.pending_len = Some(rest);
            rest
        }
    };
    if buf.len() < LENGTH_LEN + rest {
        return Ok(None);
    }
    session.pending_len = None;
    let mut pkt = buf.split_to(LENGTH_LEN + rest);
    let decoy = session
        .recv
        .open(aad, &mut pkt[LENGTH_LEN..])
        .map_err(|_| Error::V2TagMismatch)?;
    if decoy {
        return Ok(Some(Packet::Decoy));
    }
    pkt.truncate(LENGTH_LEN + rest - TAG_LEN);
    Ok(Some(Packet::Genuine(pkt)))
}

/// Our ElligatorSwift key (encoded without randomness, as the `bip324` crate does).
/// A valid secret key from `rng` (a uniformly random 32 bytes is one but with
/// probability about 2^-128).
fn random_secret<R: RngCore + CryptoRng>(rng: &mut R) -> SecretKey {
    loop {
        let candidate: [u8; 32] = rng.gen();
        if let Ok(key) = SecretKey::from_slice(&candidate) {
            return key;
        }
    }
}

fn our_key(secret: &SecretKey) -> [u8; KEY_LEN] {
    ElligatorSwift::from_pubkey(PublicKey::from_secret_key(curve(), secret)).to_array()
}

#[cfg(test)]
mod v2_vectors_test;

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const MAGIC: [u8; 4] = [0xfa, 0xbf, 0xb5, 0xda];

    #[test]
    fn our_key_is_what_the_bip324_crate_sends() {
        struct Fixed([u8; 32]);
        impl bip324::FillBytes for Fixed {
            fn fill_bytes(&mut self, dest: &mut [u8; 32]) {
                *dest = self.0;
            }
        }
        let secret = [7u8; 32];
        let hs = bip324::Handshake::new_with_rng(
            MAGIC,
            bip324::Role::Initiator,
            &mut Fixed(secret),
            curve(),
        )
        .unwrap();
        let mut buf = [0u8; KEY_LEN];
        let _ = hs.send_key(None, &mut buf).unwrap();
        assert_eq!(buf, our_key(&SecretKey::from_slice(&secret).unwrap()));
    }

    /// A deferred responder holds no key until the remote shows v2; then it sends a
    /// key and exactly the garbage it was given, and the session completes. Two of them
    /// draw different keys. Over v1 it never draws one.
    #[test]
    fn a_deferred_responder_draws_its_key_only_for_a_v2_initiator() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut keys = Vec::new();
        for garbage in [0usize, 9, 300] {
            let mut b = V2Transport::deferred_responder(MAGIC, 4_000_000, garbage).unwrap();
            assert!(matches!(b.state, State::Detecting(None)));
            let mut a = V2Transport::new(Side::Initiator, MAGIC, 4_000_000, &mut rng, 5).unwrap();
            let mut b_in = BytesMut::new();
            a.start(&mut b_in);
            let mut to_a = BytesMut::new();
            assert_eq!(b.receive(&mut b_in, &mut to_a).unwrap(), Received::NeedMore);
            // Key, garbage, then terminator and version packet.
            assert!(to_a.len() >= KEY_LEN + garbage);
            keys.push(to_a[..KEY_LEN].to_vec());
            let mut a_in = to_a;
            while !(a.is_ready() && b.is_ready()) {
                let mut to_b = BytesMut::new();
                assert_eq!(a.receive(&mut a_in, &mut to_b).unwrap(), Received::NeedMore);
                b_in.extend_from_slice(&to_b);
                let mut to_a = BytesMut::new();
                assert_eq!(b.receive(&mut b_in, &mut to_a).unwrap(), Received::NeedMore);
                a_in.extend_from_slice(&to_a);
            }
            assert_eq!(a.session_id(), b.session_id());
        }
        assert!(keys[0] != keys[1] && keys[1] != keys[2]);

        let mut b = V2Transport::deferred_responder(MAGIC, 4_000_000, 100).unwrap();
        let mut v1 = BytesMut::from(&crate::transport::detect::v1_prefix(MAGIC)[..]);
        let mut out = BytesMut::new();
        assert_eq!(b.receive(&mut v1, &mut out).unwrap(), Received::RemoteIsV1);
        assert!(out.is_empty() && matches!(b.state, State::V1));
        assert_eq!(
            V2Transport::deferred_responder(MAGIC, 1000, MAX_GARBAGE_LEN + 1).err(),
            Some(Error::V2OwnGarbageTooLong {
                len: MAX_GARBAGE_LEN + 1
            })
        );
    }

    #[test]
    fn garbage_limit_and_bad_secret_are_refused() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert_eq!(
            V2Transport::new(Side::Initiator, MAGIC, 1000, &mut rng, 4096).err(),
            Some(Error::V2OwnGarbageTooLong { len: 4096 })
        );
        assert_eq!(
            V2Transport::from_parts(Side::Initiator, MAGIC, 1000, [0u8; 32], vec![]).err(),
            Some(Error::V2InvalidSecret)
        );
        assert_eq!(
            V2Transport::from_parts(Side::Initiator, MAGIC, 1000, [0xffu8; 32], vec![]).err(),
            Some(Error::V2InvalidSecret)
        );
    }
}
