//! Codec benchmarks: peerwire's wire-codec against the `bitcoin` crate (0.32) doing the
//! same work, in the same criterion group, so that ratios come from one run.
//!
//! Every message is generated once from a deterministic xorshift stream, encoded by both
//! libraries, and the two encodings are asserted to be identical before anything is
//! timed.
//!
//! - `decode`: a whole frame from its bytes: header, checksum, typed payload, and the
//!   result dropped. Ours runs [`FrameDecoder::decode`] on a `BytesMut` prepared
//!   outside the timed loop as a connection's read buffer holds it (see
//!   `read_buffer`); theirs runs `RawNetworkMessage::consensus_decode` on a slice.
//! - `payload`: the typed payload decode alone, no framing or checksum (theirs where the
//!   bitcoin crate has a public decoder for the payload type).
//! - `encode`: a frame into a reused buffer. Ours is [`encode_frame`]; theirs is
//!   `RawNetworkMessage::new` + `consensus_encode` (the payload clone that `new` needs is
//!   made outside the timed loop, and the message is dropped outside it).
//!
//! Run: `cargo bench -p wire-codec --bench codec -- --warm-up-time 1 --measurement-time 3`

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bitcoin::consensus::{Decodable, Encodable};
use bitcoin::hashes::Hash as _;
use bitcoin::p2p::message::{NetworkMessage, RawNetworkMessage};
use bitcoin::p2p::message_blockdata::Inventory as BtcInventory;
use bitcoin::p2p::Magic;
use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_main, BatchSize, Criterion, Throughput};
use sha2::{Digest, Sha256};
use wire_codec::message::{
    Addr, Block, BlockHeader, Headers, InvType, InvVect, Inventory, NetAddress, OutPoint, Ping,
    ServiceFlags, Transaction, TxIn, TxOut,
};
use wire_codec::{encode_frame, Context, FrameDecoder, Hash256, Message, Network};

const NET: Network = Network::Mainnet;
const BTC_MAGIC: Magic = Magic::BITCOIN;

/// xorshift64*: deterministic data without a `rand` dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }
    fn hash(&mut self) -> [u8; 32] {
        let mut h = [0u8; 32];
        self.fill(&mut h);
        h
    }
}

fn ctx() -> Context {
    Context::new(NET, 70016)
}

/// One message in both libraries' types, with its (identical) wire bytes.
struct Case {
    name: &'static str,
    ours: Message,
    theirs: NetworkMessage,
    wire: Vec<u8>,
    /// The bitcoin crate's typed decode of the payload alone, where it has a public one.
    their_payload_decode: Option<fn(&[u8])>,
}

impl Case {
    fn new(name: &'static str, ours: Message, theirs: NetworkMessage) -> Case {
        let mut out = BytesMut::new();
        encode_frame(NET.magic(), &ours, &ctx(), &mut out).expect("our encode");
        let mut btc = Vec::new();
        RawNetworkMessage::new(BTC_MAGIC, theirs.clone())
            .consensus_encode(&mut btc)
            .expect("bitcoin encode");
        assert_eq!(
            &out[..],
            &btc[..],
            "{name}: the two libraries encode differently"
        );
        // Both decoders accept the bytes and agree with what was encoded.
        let mut buf = BytesMut::from(&btc[..]);
        let frame = FrameDecoder::new(NET)
            .decode(&mut buf)
            .expect("our frame decode")
            .expect("a whole frame");
        assert_eq!(frame.decode(&ctx()).expect("our decode"), ours);
        let back = RawNetworkMessage::consensus_decode(&mut &btc[..]).expect("bitcoin decode");
        assert_eq!(back.payload(), &theirs);
        Case {
            name,
            ours,
            theirs,
            wire: btc,
            their_payload_decode: None,
        }
    }

    fn with_payload_decode(mut self, f: fn(&[u8])) -> Case {
        self.their_payload_decode = Some(f);
        self
    }
}

/// The bitcoin crate's decode of a payload of type `T`, dropped at once.
fn decode_as<T: Decodable>(payload: &[u8]) {
    let decoded = T::consensus_decode(&mut &payload[..]).unwrap();
    black_box(&decoded);
}

// ---- message generation -------------------------------------------------------------

/// A P2WPKH spend: empty script_sig, a 72-byte signature and a 33-byte key as witness.
fn segwit_tx(rng: &mut Rng, inputs: usize) -> (Transaction, bitcoin::Transaction) {
    let mut ins = Vec::new();
    let mut btc_ins = Vec::new();
    for _ in 0..inputs {
        let txid = rng.hash();
        let vout = rng.u32() % 4;
        let mut sig = rng.bytes(72);
        sig[0] = 0x30;
        let mut key = rng.bytes(33);
        key[0] = 0x02;
        ins.push(TxIn {
            prevout: OutPoint {
                txid: Hash256(txid),
                vout,
            },
            script_sig: Bytes::new(),
            sequence: 0xffff_fffd,
            witness: vec![Bytes::from(sig.clone()), Bytes::from(key.clone())],
        });
        btc_ins.push(bitcoin::TxIn {
            previous_output: bitcoin::OutPoint {
                txid: bitcoin::Txid::from_byte_array(txid),
                vout,
            },
            script_sig: bitcoin::ScriptBuf::new(),
            sequence: bitcoin::Sequence(0xffff_fffd),
            witness: bitcoin::Witness::from_slice(&[sig, key]),
        });
    }
    let mut outs = Vec::new();
    let mut btc_outs = Vec::new();
    for _ in 0..2 {
        let value = (rng.next() % 100_000_000) as i64;
        let mut script = vec![0x00, 0x14];
        script.extend_from_slice(&rng.bytes(20));
        outs.push(TxOut {
            value,
            script_pubkey: Bytes::from(script.clone()),
        });
        btc_outs.push(bitcoin::TxOut {
            value: bitcoin::Amount::from_sat(value as u64),
            script_pubkey: bitcoin::ScriptBuf::from_bytes(script),
        });
    }
    let ours = Transaction::build(2, &ins, &outs, 0);
    let theirs = bitcoin::Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: btc_ins,
        output: btc_outs,
    };
    (ours, theirs)
}

fn header(rng: &mut Rng, merkle_root: [u8; 32]) -> (BlockHeader, bitcoin::block::Header) {
    let prev = rng.hash();
    let (time, bits, nonce) = (rng.u32(), rng.u32(), rng.u32());
    let ours = BlockHeader {
        version: 0x2000_0000,
        prev_block: Hash256(prev),
        merkle_root: Hash256(merkle_root),
        claim_trie: None,
        time,
        bits,
        nonce,
    };
    let theirs = bitcoin::block::Header {
        version: bitcoin::block::Version::from_consensus(0x2000_0000),
        prev_blockhash: bitcoin::BlockHash::from_byte_array(prev),
        merkle_root: bitcoin::TxMerkleNode::from_byte_array(merkle_root),
        time,
        bits: bitcoin::CompactTarget::from_consensus(bits),
        nonce,
    };
    (ours, theirs)
}

fn ping_case(rng: &mut Rng) -> Case {
    let nonce = rng.next();
    Case::new(
        "ping",
        Message::Ping(Ping { nonce }),
        NetworkMessage::Ping(nonce),
    )
    .with_payload_decode(decode_as::<u64>)
}

fn tx_case(rng: &mut Rng) -> Case {
    let (ours, theirs) = segwit_tx(rng, 1);
    Case::new("tx", Message::Tx(ours), NetworkMessage::Tx(theirs))
        .with_payload_decode(decode_as::<bitcoin::Transaction>)
}

fn inv_case(rng: &mut Rng) -> Case {
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..1000 {
        let h = rng.hash();
        ours.push(InvVect::new(InvType::WITNESS_TX, Hash256(h)));
        theirs.push(BtcInventory::WitnessTransaction(
            bitcoin::Txid::from_byte_array(h),
        ));
    }
    Case::new(
        "inv",
        Message::Inv(Inventory::new(ours)),
        NetworkMessage::Inv(theirs),
    )
    .with_payload_decode(decode_as::<Vec<BtcInventory>>)
}

fn addr_case(rng: &mut Rng) -> Case {
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..1000 {
        let ip = Ipv4Addr::from(rng.u32());
        let sa = SocketAddr::new(IpAddr::V4(ip), (rng.u32() % 65536) as u16);
        let time = rng.u32();
        let services = ServiceFlags::NETWORK | ServiceFlags::WITNESS;
        let mut a = NetAddress::from_socket_addr(sa, services);
        a.time = Some(time);
        ours.push(a);
        theirs.push((
            time,
            bitcoin::p2p::Address::new(&sa, bitcoin::p2p::ServiceFlags::from(services.0)),
        ));
    }
    Case::new(
        "addr",
        Message::Addr(Addr { addresses: ours }),
        NetworkMessage::Addr(theirs),
    )
    .with_payload_decode(decode_as::<Vec<(u32, bitcoin::p2p::Address)>>)
}

fn headers_case(rng: &mut Rng) -> Case {
    let (ours, theirs): (Vec<_>, Vec<_>) = (0..2000)
        .map(|_| {
            let root = rng.hash();
            header(rng, root)
        })
        .unzip();
    Case::new(
        "headers",
        Message::Headers(Headers { headers: ours }),
        NetworkMessage::Headers(theirs),
    )
}

/// perf-limits.md §2: 2,000 segwit transactions, inputs cycling 1,1,1,1,1,2,2,3,5,10,
/// two P2WPKH outputs each, two-item witnesses (about 950 kB).
fn block_case(rng: &mut Rng) -> Case {
    const MIX: [usize; 10] = [1, 1, 1, 1, 1, 2, 2, 3, 5, 10];
    let (txs, btc_txs): (Vec<_>, Vec<_>) = (0..2000).map(|i| segwit_tx(rng, MIX[i % 10])).unzip();
    let root = Block::merkle_root_of(txs.iter().map(Transaction::txid).collect());
    let (h, btc_h) = header(rng, root.0);
    let block = Block::new(h, txs);
    assert!(block.merkle_root_matches());
    let theirs = bitcoin::Block {
        header: btc_h,
        txdata: btc_txs,
    };
    assert!(
        theirs.check_merkle_root(),
        "the bitcoin crate agrees on the merkle root"
    );
    assert_eq!(
        block.witness_merkle_root().0,
        theirs
            .witness_root()
            .expect("has a coinbase slot")
            .to_byte_array()
    );
    Case::new(
        "block",
        Message::Block(Box::new(block)),
        NetworkMessage::Block(theirs),
    )
    .with_payload_decode(decode_as::<bitcoin::Block>)
}

// ---- benchmarks -------------------------------------------------------------------

/// `wire` in a buffer as a connection's read buffer holds it in steady state. Splitting
/// frames off a `BytesMut` turns its storage into shared (reference-counted) storage the
/// first time; a live connection pays that once per buffer, not once per frame, so it
/// is paid here, outside the timed loop.
fn read_buffer(wire: &[u8]) -> BytesMut {
    let mut buf = BytesMut::with_capacity(wire.len());
    buf.extend_from_slice(wire);
    drop(buf.split_to(0));
    buf
}

fn bench_case(c: &mut Criterion, case: &Case) {
    let ctx = ctx();
    let mut g = c.benchmark_group(case.name);
    g.throughput(Throughput::Bytes(case.wire.len() as u64));
    let large = case.wire.len() > 100_000;
    let batch = if large {
        BatchSize::LargeInput
    } else {
        BatchSize::SmallInput
    };

    let mut decoder = FrameDecoder::new(NET);
    g.bench_function("decode/peerwire", |b| {
        b.iter_batched(
            || read_buffer(&case.wire),
            |mut buf| {
                let frame = decoder.decode(&mut buf).unwrap().unwrap();
                let msg = frame.into_message(&ctx).unwrap();
                black_box(&msg);
                buf
            },
            batch,
        )
    });
    g.bench_function("decode/bitcoin", |b| {
        b.iter_batched(
            || (),
            |()| {
                let m = RawNetworkMessage::consensus_decode(&mut &case.wire[..]).unwrap();
                black_box(&m);
            },
            batch,
        )
    });

    // The typed payload decode alone (no framing, no checksum): where the two differ most.
    let payload = Bytes::copy_from_slice(&case.wire[24..]);
    // The floor both libraries pay on every decode and encode: double SHA-256 of the
    // payload. ratio ceiling = bitcoin / (this + our work above it); when the bitcoin
    // crate's own work above the floor is small, no decoder can reach a large ratio.
    g.bench_function("checksum/sha256d", |b| {
        b.iter(|| black_box(wire_codec::checksum(black_box(&payload))))
    });
    let command = case.ours.command();
    g.bench_function("payload/peerwire", |b| {
        b.iter(|| {
            let msg = Message::decode(command, black_box(payload.clone()), &ctx).unwrap();
            black_box(&msg);
        })
    });
    if let Some(theirs) = case.their_payload_decode {
        g.bench_function("payload/bitcoin", |b| {
            b.iter(|| theirs(black_box(&payload)))
        });
    }

    let mut out = BytesMut::with_capacity(case.wire.len() + 64);
    g.bench_function("encode/peerwire", |b| {
        b.iter(|| {
            out.clear();
            encode_frame(NET.magic(), black_box(&case.ours), &ctx, &mut out).unwrap()
        })
    });
    let mut vec = Vec::with_capacity(case.wire.len() + 64);
    g.bench_function("encode/bitcoin", |b| {
        b.iter_batched(
            || case.theirs.clone(),
            |payload| {
                vec.clear();
                let raw = RawNetworkMessage::new(BTC_MAGIC, payload);
                raw.consensus_encode(&mut vec).unwrap();
                raw
            },
            batch,
        )
    });
    g.finish();
}

/// Framing and checksum of a 1 MiB payload against the bound: double SHA-256 of the
/// same bytes with `sha2`.
fn bench_frame(c: &mut Criterion) {
    let mut rng = Rng(0x5eed_f4a3);
    let payload = rng.bytes(1 << 20);
    let msg = Message::Unknown {
        command: wire_codec::Command::from_static("blob"),
        payload: Bytes::from(payload.clone()),
    };
    let mut wire = BytesMut::new();
    encode_frame(NET.magic(), &msg, &ctx(), &mut wire).unwrap();
    let wire = wire.freeze();

    let mut g = c.benchmark_group("frame_1MiB");
    g.throughput(Throughput::Bytes(payload.len() as u64));
    let mut decoder = FrameDecoder::with_limits(NET.magic(), 2 << 20);
    g.bench_function("frame+checksum/peerwire", |b| {
        b.iter_batched(
            || read_buffer(&wire),
            |mut buf| {
                let frame = decoder.decode(&mut buf).unwrap().unwrap();
                black_box(&frame);
                buf
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("sha256d/sha2", |b| {
        b.iter(|| Sha256::digest(Sha256::digest(black_box(&payload[..]))))
    });
    g.finish();
}

/// Small frames as a live connection sees them: 1,000 pings back to back in one read
/// buffer, decoded one after the other (the per-frame setup of the single-frame groups
/// is gone, so this is the steady-state cost per small message).
fn bench_stream(c: &mut Criterion, ping: &Case) {
    const N: usize = 1000;
    let ctx = ctx();
    let stream: Vec<u8> = ping
        .wire
        .iter()
        .copied()
        .cycle()
        .take(ping.wire.len() * N)
        .collect();
    let mut g = c.benchmark_group("ping_stream_x1000");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    let mut decoder = FrameDecoder::new(NET);
    g.bench_function("decode/peerwire", |b| {
        b.iter_batched(
            || read_buffer(&stream),
            |mut buf| {
                for _ in 0..N {
                    let frame = decoder.decode(&mut buf).unwrap().unwrap();
                    let msg = frame.into_message(&ctx).unwrap();
                    black_box(&msg);
                }
                buf
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("decode/bitcoin", |b| {
        b.iter(|| {
            let mut rest = &stream[..];
            for _ in 0..N {
                let m = RawNetworkMessage::consensus_decode(&mut rest).unwrap();
                black_box(&m);
            }
        })
    });
    g.finish();
}

fn bench_messages(c: &mut Criterion) {
    let mut rng = Rng(0x0bad_5eed_cafe_f00d);
    let cases = [
        ping_case(&mut rng),
        tx_case(&mut rng),
        inv_case(&mut rng),
        addr_case(&mut rng),
        headers_case(&mut rng),
        block_case(&mut rng),
    ];
    for case in &cases {
        bench_case(c, case);
    }
    bench_stream(c, &cases[0]);
}

/// Every group, with the command line's criterion options.
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    bench_frame(&mut c);
    bench_messages(&mut c);
}

criterion_main!(benches);
