//! BIP324's v2 encrypted transport as a sans-IO state machine.
//!
//! [`V2Transport`] turns received bytes into [`Frame`]s and messages into encrypted
//! packets. It never reads a socket or a clock: the driver hands it the connection's
//! receive buffer (it takes whole packets off the front, zero-copy, as the v1
//! [`FrameDecoder`](wire_codec::FrameDecoder) does) and an output buffer to append to.
//!
//! The cryptography is the `bip324` crate's: ElligatorSwift key exchange, HKDF session
//! keys, the garbage terminators, FSChaCha20 for lengths and FSChaCha20-Poly1305 for
//! packets, rekeyed every 224 packets by the crate itself.
//!
//! ## Why the handshake is re-derived sometimes
//! The crate's handshake states borrow our garbage and the remote's garbage (both are
//! the authenticated data of the first packet), so they cannot be kept inside a
//! long-lived peer between two reads. This transport therefore keeps only owned facts —
//! its secret key, the remote's key, its own garbage — and runs the crate's handshake
//! from those facts to the state it needs, all inside one call: the key exchange is
//! deterministic given the secret (ElligatorSwift encoding without randomness, as the
//! crate does). The crate's one lifetime-free state (after our version packet) is kept
//! between reads, so a slow garbage terminator costs nothing extra; only when the
//! terminator arrived but a following packet is incomplete is the state lost and
//! re-derived (one ECDH) once the missing bytes are there. The transport knows exactly
//! how many bytes that takes, so a legitimate peer costs at most one re-derivation per
//! decoy packet it splits across reads; more than [`MAX_HANDSHAKE_REPLAYS`] is refused.

use std::sync::OnceLock;

use bip324::{
    GarbageResult, Handshake, InboundCipher, OutboundCipher, PacketType, Role, SentVersion,
    VersionResult, NUM_LENGTH_BYTES,
};
use bytes::{Buf, BytesMut};
use rand::{CryptoRng, Rng, RngCore};
use secp256k1::{ellswift::ElligatorSwift, PublicKey, Secp256k1, SecretKey, SignOnly};
use wire_codec::{Command, Frame, FrameHeader, HEADER_LEN};

use crate::error::Error;
use crate::transport::detect::{detect, Detected};
use crate::transport::v2_messages::{
    decode_message_type, encode_message_type, MAX_MESSAGE_TYPE_LEN,
};

/// BIP324's limit on garbage before the terminator.
pub const MAX_GARBAGE_LEN: usize = 4095;
/// Bytes of an ElligatorSwift-encoded public key.
pub const KEY_LEN: usize = 64;
/// Bytes of a garbage terminator.
pub const TERMINATOR_LEN: usize = 16;
/// Bytes a packet adds to its contents: 3 length bytes, the header byte, the 16-byte tag.
pub const PACKET_OVERHEAD: usize = NUM_LENGTH_BYTES + 1 + 16;
/// How often the handshake may be re-derived (see the module documentation).
pub const MAX_HANDSHAKE_REPLAYS: u8 = 8;
/// Bytes our version packet and terminator take: terminator plus an empty packet.
const VERSION_SEND_LEN: usize = TERMINATOR_LEN + PACKET_OVERHEAD;

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

/// The facts a handshake is (re-)derived from; owned, so it lives in the peer.
struct Keys {
    secret: [u8; 32],
    remote_key: [u8; KEY_LEN],
    garbage: Vec<u8>,
}

enum State {
    /// Responder, nothing decided yet.
    Detecting { secret: [u8; 32], garbage: Vec<u8> },
    /// Our key and garbage are sent (or about to be); waiting for the remote's key.
    AwaitKey {
        secret: [u8; 32],
        garbage: Vec<u8>,
        /// Whether our key and garbage went out already (a responder that has the
        /// initiator's key at hand sends its own from the crate's handshake directly,
        /// saving one public-key computation).
        key_sent: bool,
    },
    /// Our terminator and version packet are sent; reading the remote's garbage,
    /// terminator, decoys and version packet (the bytes stay in the caller's buffer
    /// until the version packet is authenticated).
    AwaitVersion {
        keys: Box<Keys>,
        handshake: Option<Handshake<SentVersion>>,
        need: usize,
        replays: u8,
    },
    /// Session established.
    Ready(Box<Session>),
    /// The responder found a v1 initiator.
    V1,
    /// Something failed; nothing more is decoded.
    Failed,
}

/// An established session: both ciphers and the next packet's decrypted length.
struct Session {
    inbound: InboundCipher,
    outbound: OutboundCipher,
    session_id: [u8; 32],
    pending_len: Option<usize>,
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

/// Hands the crate's handshake the secret we already chose.
struct FixedSecret([u8; 32]);

impl bip324::FillBytes for FixedSecret {
    fn fill_bytes(&mut self, dest: &mut [u8; 32]) {
        *dest = self.0;
    }
}

fn role(side: Side) -> Role {
    match side {
        Side::Initiator => Role::Initiator,
        Side::Responder => Role::Responder,
    }
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
        SecretKey::from_slice(&secret).map_err(|_| Error::V2InvalidSecret)?;
        let state = match side {
            Side::Initiator => State::AwaitKey {
                secret,
                garbage,
                key_sent: true,
            },
            Side::Responder => State::Detecting { secret, garbage },
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
        if let (
            Side::Initiator,
            State::AwaitKey {
                secret, garbage, ..
            },
        ) = (self.side, &self.state)
        {
            write_key_and_garbage(secret, garbage, out);
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
            State::Detecting { .. } => crate::transport::V1_PREFIX_LEN,
            State::AwaitKey { .. } => KEY_LEN,
            State::AwaitVersion { need, .. } => *need,
            State::Ready(s) => NUM_LENGTH_BYTES + s.pending_len.unwrap_or(0),
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
                State::Detecting { secret, garbage } => match detect(self.magic, buf) {
                    Detected::NeedMore => return Ok(Received::NeedMore),
                    Detected::V1 => {
                        self.state = State::V1;
                        return Ok(Received::RemoteIsV1);
                    }
                    Detected::V2 => {
                        if self.lazy_garbage > 0 {
                            garbage.resize(self.lazy_garbage, 0);
                            rand::thread_rng().fill_bytes(garbage);
                        }
                        // With the initiator's whole key here, the crate's handshake
                        // writes ours in the same call (one public key instead of two).
                        let key_sent = buf.len() < KEY_LEN;
                        if key_sent {
                            write_key_and_garbage(secret, garbage, out);
                        }
                        self.state = State::AwaitKey {
                            secret: *secret,
                            garbage: core::mem::take(garbage),
                            key_sent,
                        };
                    }
                },
                State::AwaitKey {
                    secret,
                    garbage,
                    key_sent,
                } => {
                    if buf.len() < KEY_LEN {
                        return Ok(Received::NeedMore);
                    }
                    let mut remote_key = [0u8; KEY_LEN];
                    remote_key.copy_from_slice(&buf[..KEY_LEN]);
                    buf.advance(KEY_LEN);
                    let keys = Box::new(Keys {
                        secret: *secret,
                        remote_key,
                        garbage: core::mem::take(garbage),
                    });
                    let mut sent = [0u8; VERSION_SEND_LEN];
                    let key_out = (!*key_sent).then_some(&mut *out);
                    let handshake = derive(self.side, self.magic, &keys, &mut sent, key_out)?;
                    out.extend_from_slice(&sent);
                    self.state = State::AwaitVersion {
                        keys,
                        handshake: Some(handshake),
                        need: 0,
                        replays: 0,
                    };
                }
                State::AwaitVersion { .. } => {
                    if !self.finish_handshake(buf)? {
                        return Ok(Received::NeedMore);
                    }
                }
                State::Ready(session) => match read_packet(session, buf, self.max_contents)? {
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

    /// Reads the remote's garbage, terminator, decoys and version packet; true once the
    /// session is established.
    fn finish_handshake(&mut self, buf: &mut BytesMut) -> Result<bool, Error> {
        let State::AwaitVersion {
            keys,
            handshake,
            need,
            replays,
        } = &mut self.state
        else {
            return Ok(false);
        };
        if buf.len() < *need {
            return Ok(false);
        }
        let hs = match handshake.take() {
            Some(hs) => hs,
            None => {
                *replays += 1;
                if *replays > MAX_HANDSHAKE_REPLAYS {
                    return Err(Error::V2HandshakeFragmented {
                        replays: *replays - 1,
                    });
                }
                derive(
                    self.side,
                    self.magic,
                    keys,
                    &mut [0u8; VERSION_SEND_LEN],
                    None,
                )?
            }
        };
        let outcome = match hs.receive_garbage(&buf[..]) {
            Err(bip324::Error::NoGarbageTerminator) => return Err(Error::V2GarbageTooLong),
            Err(_) => return Err(Error::V2GarbageTooLong),
            Ok(GarbageResult::NeedMoreData(hs)) => {
                *handshake = Some(hs);
                *need = buf.len() + 1;
                return Ok(false);
            }
            Ok(GarbageResult::FoundGarbage {
                handshake: mut hs,
                consumed_bytes,
            }) => {
                let mut pos = consumed_bytes;
                loop {
                    let Some(len_bytes) = buf.get(pos..pos + NUM_LENGTH_BYTES) else {
                        break Outcome::Incomplete(pos + NUM_LENGTH_BYTES);
                    };
                    let len_bytes: [u8; NUM_LENGTH_BYTES] =
                        len_bytes.try_into().map_err(|_| Error::V2Failed)?;
                    let rest = hs
                        .decrypt_packet_len(len_bytes)
                        .map_err(|_| Error::V2TagMismatch)?;
                    check_len(rest, self.max_contents)?;
                    let end = pos + NUM_LENGTH_BYTES + rest;
                    let Some(packet) = buf.get(pos + NUM_LENGTH_BYTES..end) else {
                        break Outcome::Incomplete(end);
                    };
                    let mut packet = packet.to_vec();
                    match hs.receive_version(&mut packet) {
                        Err(_) => return Err(Error::V2TagMismatch),
                        Ok(VersionResult::Decoy(next)) => {
                            self.decoys += 1;
                            hs = next;
                            pos = end;
                        }
                        Ok(VersionResult::Complete { cipher }) => {
                            break Outcome::Complete(cipher, end);
                        }
                    }
                }
            }
        };
        match outcome {
            Outcome::Incomplete(n) => {
                *need = n;
                Ok(false)
            }
            Outcome::Complete(cipher, end) => {
                buf.advance(end);
                let session_id = *cipher.id();
                let (inbound, outbound) = cipher.into_split();
                self.state = State::Ready(Box::new(Session {
                    inbound,
                    outbound,
                    session_id,
                    pending_len: None,
                }));
                Ok(true)
            }
        }
    }

    /// Encrypts one message (command and payload) as one packet appended to `out`.
    pub fn encrypt_message(
        &mut self,
        command: Command,
        payload: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), Error> {
        let State::Ready(session) = &mut self.state else {
            return Err(Error::V2NotReady);
        };
        let mut mt = [0u8; MAX_MESSAGE_TYPE_LEN];
        let n = encode_message_type(&command, &mut mt);
        let mut contents = Vec::with_capacity(n + payload.len());
        contents.extend_from_slice(&mt[..n]);
        contents.extend_from_slice(payload);
        encrypt_contents(&mut session.outbound, &contents, out);
        Ok(())
    }

    /// Encrypts one v1 frame (24-byte header and payload, as the v1 encoder writes it) as
    /// one packet appended to `out`. The header's last bytes are overwritten with the
    /// message type so the contents are contiguous: the payload is copied once.
    pub fn encrypt_frame(&mut self, frame: &mut [u8], out: &mut BytesMut) -> Result<(), Error> {
        let State::Ready(session) = &mut self.state else {
            return Err(Error::V2NotReady);
        };
        let Some(header) = frame.get(..HEADER_LEN) else {
            return Err(Error::V2NotReady);
        };
        let mut cmd = [0u8; 12];
        cmd.copy_from_slice(&header[4..16]);
        let command = Command::from_wire(cmd).map_err(|_| Error::V2NotReady)?;
        let mut mt = [0u8; MAX_MESSAGE_TYPE_LEN];
        let n = encode_message_type(&command, &mut mt);
        let start = HEADER_LEN - n;
        frame[start..HEADER_LEN].copy_from_slice(&mt[..n]);
        encrypt_contents(&mut session.outbound, &frame[start..], out);
        Ok(())
    }
}

/// What the handshake's packet loop ended with.
enum Outcome {
    /// More bytes are needed: the buffer must reach this length.
    Incomplete(usize),
    /// The version packet authenticated; the handshake took this many bytes.
    Complete(bip324::CipherSession, usize),
}

/// One packet after the handshake.
enum Packet {
    Decoy,
    /// The decrypted packet: 3 length bytes, the header byte, contents (tag cut off).
    Genuine(BytesMut),
}

/// Where the contents start in a decrypted packet (after length and header byte).
const PLAINTEXT_START: usize = NUM_LENGTH_BYTES + 1;

fn check_len(rest: usize, max_contents: usize) -> Result<(), Error> {
    let len = rest.saturating_sub(PACKET_OVERHEAD - NUM_LENGTH_BYTES);
    if len > max_contents {
        return Err(Error::V2PacketTooLarge {
            len,
            max: max_contents,
        });
    }
    Ok(())
}

fn read_packet(
    session: &mut Session,
    buf: &mut BytesMut,
    max_contents: usize,
) -> Result<Option<Packet>, Error> {
    let rest = match session.pending_len {
        Some(rest) => rest,
        None => {
            let Some(len_bytes) = buf.get(..NUM_LENGTH_BYTES) else {
                return Ok(None);
            };
            let len_bytes: [u8; NUM_LENGTH_BYTES] =
                len_bytes.try_into().map_err(|_| Error::V2Failed)?;
            let rest = session.inbound.decrypt_packet_len(len_bytes);
            check_len(rest, max_contents)?;
            session.pending_len = Some(rest);
            rest
        }
    };
    if buf.len() < NUM_LENGTH_BYTES + rest {
        return Ok(None);
    }
    session.pending_len = None;
    let mut pkt = buf.split_to(NUM_LENGTH_BYTES + rest);
    let packet_type = session
        .inbound
        .decrypt_in_place(&mut pkt[NUM_LENGTH_BYTES..], None)
        .map_err(|_| Error::V2TagMismatch)?
        .0;
    match packet_type {
        PacketType::Decoy => Ok(Some(Packet::Decoy)),
        PacketType::Genuine => {
            pkt.truncate(NUM_LENGTH_BYTES + rest - 16);
            Ok(Some(Packet::Genuine(pkt)))
        }
    }
}

fn encrypt_contents(outbound: &mut OutboundCipher, contents: &[u8], out: &mut BytesMut) {
    let start = out.len();
    let len = OutboundCipher::encryption_buffer_len(contents.len());
    out.resize(start + len, 0);
    // The buffer has exactly the length the crate asks for: encryption cannot fail.
    let _ = outbound.encrypt(contents, &mut out[start..], PacketType::Genuine, None);
}

/// Our ElligatorSwift key, as the crate's handshake will encode it (no randomness).
fn our_key(secret: &[u8; 32]) -> [u8; KEY_LEN] {
    match SecretKey::from_slice(secret) {
        Ok(sk) => ElligatorSwift::from_pubkey(PublicKey::from_secret_key(curve(), &sk)).to_array(),
        // Checked at construction.
        Err(_) => [0u8; KEY_LEN],
    }
}

fn write_key_and_garbage(secret: &[u8; 32], garbage: &[u8], out: &mut BytesMut) {
    out.extend_from_slice(&our_key(secret));
    out.extend_from_slice(garbage);
}

/// Runs the crate's handshake from owned facts to the state after our version packet,
/// writing our terminator and version packet into `sent` (and our key and garbage into
/// `key_out` when they were not sent yet).
fn derive(
    side: Side,
    magic: [u8; 4],
    keys: &Keys,
    sent: &mut [u8; VERSION_SEND_LEN],
    key_out: Option<&mut BytesMut>,
) -> Result<Handshake<SentVersion>, Error> {
    let hs = Handshake::new_with_rng(magic, role(side), &mut FixedSecret(keys.secret), curve())
        .map_err(|_| Error::V2InvalidSecret)?;
    let garbage = (!keys.garbage.is_empty()).then_some(&keys.garbage[..]);
    let mut scratch = vec![0u8; KEY_LEN + keys.garbage.len()];
    let hs = hs
        .send_key(garbage, &mut scratch)
        .map_err(|_| Error::V2OwnGarbageTooLong {
            len: keys.garbage.len(),
        })?;
    if let Some(out) = key_out {
        out.extend_from_slice(&scratch);
    }
    let hs = hs.receive_key(keys.remote_key).map_err(|e| match e {
        bip324::Error::V1Protocol => Error::V2RemoteSpeaksV1,
        _ => Error::V2InvalidSecret,
    })?;
    hs.send_version(sent, None).map_err(|_| Error::V2Failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const MAGIC: [u8; 4] = [0xfa, 0xbf, 0xb5, 0xda];

    #[test]
    fn our_key_is_what_the_crate_sends() {
        let secret = [7u8; 32];
        let hs = Handshake::new_with_rng(MAGIC, Role::Initiator, &mut FixedSecret(secret), curve())
            .unwrap();
        let mut buf = [0u8; KEY_LEN];
        let _ = hs.send_key(None, &mut buf).unwrap();
        assert_eq!(buf, our_key(&secret));
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
