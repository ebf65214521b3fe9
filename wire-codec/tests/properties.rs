//! Property tests of the codec: every message round-trips at every protocol version it
//! exists in, the frame decoder gives the same frames however its input is split, and
//! decoding arbitrary bytes never panics and never allocates more than a small multiple
//! of the input (measured with a counting allocator).

// The counting allocator below needs `unsafe impl GlobalAlloc`; the crate under test stays
// `forbid(unsafe_code)`. This is the only unsafe code of the test binary.
#![allow(unsafe_code)]

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::Ipv6Addr;

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::Union;
use wire_codec::message::{
    command, Addr, AddrV2, AddrV2Entry, Alert, Block, BlockHeader, BlockLocator, BlockTxn,
    CFCheckpt, CFHeaders, CFilter, CmpctBlock, FeeFilter, FilterAdd, FilterLoad, GetBlockTxn,
    GetCFCheckpt, GetCFilters, Headers, InvType, InvVect, Inventory, MerkleBlock, NetAddress,
    NetworkId, OutPoint, Ping, Pong, PrefilledTx, Reject, RejectCode, SendCmpct, SendTxRcncl,
    ServiceFlags, Transaction, TxIn, TxOut, Version,
};
use wire_codec::{
    encode_frame, Command, Context, Frame, FrameDecoder, Hash256, HeaderKind, Message, Network,
};

// ---------------------------------------------------------------------------------------
// Counting allocator
// ---------------------------------------------------------------------------------------

/// Wraps the system allocator and keeps, per thread, the bytes currently allocated and
/// the peak since the last reset. Per-thread counters keep the measurement of one decode
/// free of whatever the test harness's other threads allocate meanwhile.
///
/// Invariant: every method forwards to `System` with the caller's arguments unchanged and
/// returns its result unchanged; the bookkeeping touches only `const`-initialised
/// thread-locals of `Cell<isize>` (no destructor, no allocation), so it cannot recurse
/// into the allocator or change what memory is handed out.
struct CountingAlloc;

thread_local! {
    static CURRENT: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let _ = CURRENT.try_with(|c| {
        let now = c.get() + delta;
        c.set(now);
        let _ = PEAK.try_with(|p| {
            if now > p.get() {
                p.set(now);
            }
        });
    });
}

// SAFETY: see the invariant on `CountingAlloc`: all requests go to `System` unchanged.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's (valid, non-zero-size) layout.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation of this
        // allocator is).
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; `ptr`/`layout` come from `System`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Counted as if old and new blocks coexisted for a moment (they may, while
            // the contents are copied): the peak is an upper bound.
            note(new_size as isize);
            note(-(layout.size() as isize));
        }
        p
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Runs `f` and returns its result and the peak of bytes allocated on this thread while it
/// ran (above what was allocated before), its result included.
fn peak_alloc<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = CURRENT.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let r = f();
    let peak = PEAK.with(Cell::get);
    (r, usize::try_from(peak - base).unwrap_or(0))
}

/// The allocation bound: a small multiple of the input plus a constant.
fn alloc_bound(input_len: usize) -> usize {
    8 * input_len + 4096
}

// ---------------------------------------------------------------------------------------
// Contexts
// ---------------------------------------------------------------------------------------

/// Protocol versions where the wire format or the message set changes.
const VERSIONS: [u32; 14] = [
    209, 31401, 31402, 60000, 60001, 60002, 70001, 70002, 70011, 70012, 70013, 70014, 70015, 70016,
];

/// Every command this codec knows.
const KNOWN: &[Command] = command::ALL;

fn network() -> impl Strategy<Value = Network> {
    prop::sample::select(Network::ALL.to_vec())
}

fn context() -> impl Strategy<Value = Context> {
    (network(), prop::sample::select(VERSIONS.to_vec()))
        .prop_map(|(net, pver)| Context::new(net, pver))
}

// ---------------------------------------------------------------------------------------
// Message strategies
// ---------------------------------------------------------------------------------------

fn hash() -> impl Strategy<Value = Hash256> {
    any::<[u8; 32]>().prop_map(Hash256)
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

fn net_address(with_time: bool) -> impl Strategy<Value = NetAddress> {
    (any::<u32>(), any::<u64>(), any::<[u8; 16]>(), any::<u16>()).prop_map(
        move |(time, services, ip, port)| NetAddress {
            time: with_time.then_some(time),
            services: ServiceFlags(services),
            ip: Ipv6Addr::from(ip),
            port,
        },
    )
}

fn version_msg() -> impl Strategy<Value = Version> {
    (
        (any::<u32>(), any::<u64>(), any::<i64>()),
        (net_address(false), net_address(false), any::<u64>()),
        // Up to 64 chars of at most 4 bytes: never above the 256-byte limit.
        ("\\PC{0,64}", any::<i32>(), any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(
                (version, services, timestamp),
                (receiver, sender, nonce),
                (ua, h, relay, present),
            )| {
                Version {
                    version,
                    services: ServiceFlags(services),
                    timestamp,
                    receiver,
                    sender,
                    nonce,
                    user_agent: ua,
                    start_height: h,
                    // Without the byte on the wire, relay reads as true (BIP37 default).
                    relay: relay || !present,
                    relay_present: present,
                }
            },
        )
}

fn addrv2_entry() -> impl Strategy<Value = AddrV2Entry> {
    let known = prop::sample::select(vec![1u8, 2, 3, 4, 5, 6]).prop_flat_map(|id| {
        let len = NetworkId(id).address_len().unwrap_or(0);
        (Just(id), vec(any::<u8>(), len..=len))
    });
    let unknown = (7u8..=255, vec(any::<u8>(), 0..=40));
    let network_and_addr = prop_oneof![4 => known, 1 => unknown];
    (any::<u32>(), any::<u64>(), network_and_addr, any::<u16>()).prop_map(
        |(time, services, (id, addr), port)| AddrV2Entry {
            time,
            services: ServiceFlags(services),
            network: NetworkId(id),
            addr: Bytes::from(addr),
            port,
        },
    )
}

fn inventory() -> impl Strategy<Value = Inventory> {
    vec(
        (any::<u32>(), hash()).prop_map(|(k, h)| InvVect::new(InvType(k), h)),
        0..20,
    )
    .prop_map(Inventory::new)
}

fn locator() -> impl Strategy<Value = BlockLocator> {
    (any::<u32>(), vec(hash(), 0..20), hash()).prop_map(|(version, locator, stop)| BlockLocator {
        version,
        locator,
        stop,
    })
}

fn header(kind: HeaderKind) -> impl Strategy<Value = BlockHeader> {
    (
        any::<i32>(),
        hash(),
        hash(),
        hash(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            move |(version, prev_block, merkle_root, claim, time, bits, nonce)| BlockHeader {
                version,
                prev_block,
                merkle_root,
                claim_trie: (kind == HeaderKind::Lbry).then_some(claim),
                time,
                bits,
                nonce,
            },
        )
}

fn reject() -> impl Strategy<Value = Reject> {
    let message = prop_oneof![
        Just("block".to_string()),
        Just("tx".to_string()),
        Just("version".to_string()),
        "\\PC{0,12}",
    ];
    (message, any::<u8>(), "\\PC{0,40}", hash(), any::<bool>()).prop_map(
        |(message, code, reason, h, with_hash)| {
            // The hash is on the wire only after a block or tx reject.
            let hash = (with_hash && Reject::command_has_hash(&message)).then_some(h);
            Reject {
                message,
                code: RejectCode(code),
                reason,
                hash,
            }
        },
    )
}

/// A transaction that can be read back: at least one input (a zero input count is the
/// BIP144 marker), witness stacks optional.
fn transaction() -> impl Strategy<Value = Transaction> {
    let input = (
        hash(),
        any::<u32>(),
        bytes(40),
        any::<u32>(),
        vec(bytes(40), 0..3),
    )
        .prop_map(|(txid, vout, script_sig, sequence, witness)| TxIn {
            prevout: OutPoint { txid, vout },
            script_sig,
            sequence,
            witness,
        });
    let output = (any::<i64>(), bytes(40)).prop_map(|(value, script_pubkey)| TxOut {
        value,
        script_pubkey,
    });
    (
        any::<i32>(),
        vec(input, 1..4),
        vec(output, 0..4),
        any::<u32>(),
    )
        .prop_map(|(version, inputs, outputs, lock_time)| {
            Transaction::build(version, &inputs, &outputs, lock_time)
        })
}

/// Strictly increasing absolute indexes below `max`.
fn indexes(max: u64, n: usize) -> impl Strategy<Value = Vec<u64>> {
    vec(0u64..200, 0..n).prop_map(move |gaps| {
        let mut next = 0u64;
        let mut out = Vec::new();
        for g in gaps {
            let i = next + g;
            if i >= max {
                break;
            }
            out.push(i);
            next = i + 1;
        }
        out
    })
}

/// Messages whose payloads do not contain transactions.
fn plain_message(ctx: Context) -> BoxedStrategy<Message> {
    Union::new(plain_arms(ctx)).boxed()
}

/// Messages that carry transactions (`tx`, `block`, `cmpctblock`, `blocktxn`).
fn tx_message(ctx: Context) -> BoxedStrategy<Message> {
    Union::new(tx_arms(ctx)).boxed()
}

/// One strategy per message type without transactions (one for unknown commands).
fn plain_arms(ctx: Context) -> Vec<BoxedStrategy<Message>> {
    let pver = ctx.version;
    let kind = ctx.header_kind;
    let with_time = pver >= wire_codec::version::NET_ADDRESS_TIME;
    let arms: Vec<BoxedStrategy<Message>> = vec![
        version_msg()
            .prop_map(|v| Message::Version(Box::new(v)))
            .boxed(),
        Just(Message::Verack).boxed(),
        // Up to BIP31 (60000) ping has no nonce; it reads back as 0.
        any::<u64>()
            .prop_map(move |n| {
                let nonce = if pver > wire_codec::version::BIP0031 {
                    n
                } else {
                    0
                };
                Message::Ping(Ping { nonce })
            })
            .boxed(),
        any::<u64>()
            .prop_map(|nonce| Message::Pong(Pong { nonce }))
            .boxed(),
        Just(Message::GetAddr).boxed(),
        vec(net_address(with_time), 0..20)
            .prop_map(|addresses| Message::Addr(Addr { addresses }))
            .boxed(),
        vec(addrv2_entry(), 0..20)
            .prop_map(|addresses| Message::AddrV2(AddrV2 { addresses }))
            .boxed(),
        Just(Message::SendAddrV2).boxed(),
        inventory().prop_map(Message::Inv).boxed(),
        inventory().prop_map(Message::GetData).boxed(),
        inventory().prop_map(Message::NotFound).boxed(),
        locator().prop_map(Message::GetBlocks).boxed(),
        locator().prop_map(Message::GetHeaders).boxed(),
        vec(header(kind), 0..10)
            .prop_map(|headers| Message::Headers(Headers { headers }))
            .boxed(),
        Just(Message::MemPool).boxed(),
        reject().prop_map(|r| Message::Reject(Box::new(r))).boxed(),
        Just(Message::SendHeaders).boxed(),
        any::<i64>()
            .prop_map(|feerate| Message::FeeFilter(FeeFilter { feerate }))
            .boxed(),
        (bytes(300), 0u32..=50, any::<u32>(), any::<u8>())
            .prop_map(|(filter, hash_funcs, tweak, flags)| {
                Message::FilterLoad(FilterLoad {
                    filter,
                    hash_funcs,
                    tweak,
                    flags,
                })
            })
            .boxed(),
        bytes(520)
            .prop_map(|data| Message::FilterAdd(FilterAdd { data }))
            .boxed(),
        Just(Message::FilterClear).boxed(),
        (header(kind), any::<u32>(), vec(hash(), 0..10), bytes(20))
            .prop_map(|(header, total_transactions, hashes, flags)| {
                Message::MerkleBlock(Box::new(MerkleBlock {
                    header,
                    total_transactions,
                    hashes,
                    flags,
                }))
            })
            .boxed(),
        (any::<u8>(), any::<u32>(), hash())
            .prop_map(|(filter_type, start_height, stop_hash)| {
                Message::GetCFilters(GetCFilters {
                    filter_type,
                    start_height,
                    stop_hash,
                })
            })
            .boxed(),
        (any::<u8>(), any::<u32>(), hash())
            .prop_map(|(filter_type, start_height, stop_hash)| {
                Message::GetCFHeaders(GetCFilters {
                    filter_type,
                    start_height,
                    stop_hash,
                })
            })
            .boxed(),
        (any::<u8>(), hash(), bytes(300))
            .prop_map(|(filter_type, block_hash, filter)| {
                Message::CFilter(CFilter {
                    filter_type,
                    block_hash,
                    filter,
                })
            })
            .boxed(),
        (any::<u8>(), hash(), hash(), vec(hash(), 0..20))
            .prop_map(|(filter_type, stop_hash, prev, filter_hashes)| {
                Message::CFHeaders(Box::new(CFHeaders {
                    filter_type,
                    stop_hash,
                    previous_filter_header: prev,
                    filter_hashes,
                }))
            })
            .boxed(),
        (any::<u8>(), hash())
            .prop_map(|(filter_type, stop_hash)| {
                Message::GetCFCheckpt(GetCFCheckpt {
                    filter_type,
                    stop_hash,
                })
            })
            .boxed(),
        (any::<u8>(), hash(), vec(hash(), 0..20))
            .prop_map(|(filter_type, stop_hash, filter_headers)| {
                Message::CFCheckpt(CFCheckpt {
                    filter_type,
                    stop_hash,
                    filter_headers,
                })
            })
            .boxed(),
        Just(Message::WtxidRelay).boxed(),
        (any::<bool>(), any::<u64>())
            .prop_map(|(announce, version)| Message::SendCmpct(SendCmpct { announce, version }))
            .boxed(),
        (hash(), indexes(60_000, 30))
            .prop_map(|(block_hash, indexes)| {
                Message::GetBlockTxn(GetBlockTxn {
                    block_hash,
                    indexes,
                })
            })
            .boxed(),
        (bytes(100), bytes(80))
            .prop_map(|(payload, signature)| Message::Alert(Alert { payload, signature }))
            .boxed(),
        (any::<u32>(), any::<u64>())
            .prop_map(|(version, salt)| Message::SendTxRcncl(SendTxRcncl { version, salt }))
            .boxed(),
        ("[ -~]{1,12}", bytes(100))
            .prop_filter_map("a known command", |(name, payload)| {
                let command = Command::new(&name)?;
                Message::min_version(command)
                    .is_none()
                    .then_some(Message::Unknown { command, payload })
            })
            .boxed(),
    ];
    arms
}

/// One strategy per message type that carries transactions.
fn tx_arms(ctx: Context) -> Vec<BoxedStrategy<Message>> {
    let kind = ctx.header_kind;
    let arms: Vec<BoxedStrategy<Message>> = vec![
        transaction().prop_map(Message::Tx).boxed(),
        (header(kind), vec(transaction(), 0..5))
            .prop_map(|(header, txs)| Message::Block(Box::new(Block::new(header, txs))))
            .boxed(),
        (
            header(kind),
            any::<u64>(),
            vec(any::<[u8; 6]>(), 0..20),
            indexes(1_000, 4),
            vec(transaction(), 4),
        )
            .prop_map(|(header, nonce, short_ids, idx, txs)| {
                let prefilled = idx
                    .into_iter()
                    .zip(txs)
                    .map(|(index, tx)| PrefilledTx { index, tx })
                    .collect();
                Message::CmpctBlock(Box::new(CmpctBlock {
                    header,
                    nonce,
                    short_ids,
                    prefilled,
                }))
            })
            .boxed(),
        (hash(), vec(transaction(), 0..5))
            .prop_map(|(block_hash, transactions)| {
                Message::BlockTxn(BlockTxn {
                    block_hash,
                    transactions,
                })
            })
            .boxed(),
    ];
    arms
}

/// A context and a message that exists at its protocol version.
fn message_at_version(
    messages: fn(Context) -> BoxedStrategy<Message>,
) -> impl Strategy<Value = (Context, Message)> {
    context().prop_flat_map(move |ctx| {
        messages(ctx)
            .prop_filter("exists at this version", move |m| {
                Message::min_version(m.command()).map_or(true, |min| min <= ctx.version)
            })
            .prop_map(move |m| (ctx, m))
    })
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

/// decode(encode(m)) == m, through the payload API and through a whole frame, and the
/// encoding is canonical (encoding the decoded message gives the same bytes).
fn assert_round_trip(ctx: &Context, msg: &Message) -> Result<(), TestCaseError> {
    let mut payload = BytesMut::new();
    msg.encode_payload(&mut payload, ctx)
        .map_err(|e| TestCaseError::fail(format!("encode {msg:?}: {e}")))?;
    let payload = payload.freeze();
    let back = Message::decode(msg.command(), payload.clone(), ctx)
        .map_err(|e| TestCaseError::fail(format!("decode {:?}: {e}", msg.command())))?;
    prop_assert_eq!(&back, msg);

    let mut again = BytesMut::new();
    back.encode_payload(&mut again, ctx)
        .map_err(|e| TestCaseError::fail(format!("re-encode: {e}")))?;
    prop_assert_eq!(&again[..], &payload[..]);

    let magic = [0xfa, 0xbf, 0xb5, 0xda];
    let mut wire = BytesMut::new();
    let n = encode_frame(magic, msg, ctx, &mut wire)
        .map_err(|e| TestCaseError::fail(format!("encode_frame: {e}")))?;
    prop_assert_eq!(n, wire.len());
    let mut dec = FrameDecoder::with_limits(magic, u32::MAX);
    let frame = dec
        .decode(&mut wire)
        .map_err(|e| TestCaseError::fail(format!("frame: {e}")))?;
    let frame = frame.ok_or_else(|| TestCaseError::fail("frame incomplete"))?;
    prop_assert!(wire.is_empty());
    prop_assert_eq!(frame.header.command, msg.command());
    prop_assert_eq!(&frame.payload[..], &payload[..]);
    prop_assert_eq!(
        &frame
            .decode(ctx)
            .map_err(|e| TestCaseError::fail(format!("frame decode: {e}")))?,
        msg
    );
    Ok(())
}

/// Takes every frame off `buf`; stops at the first error (returned) or when no whole
/// frame is left.
fn drain(dec: &mut FrameDecoder, buf: &mut BytesMut, out: &mut Vec<Frame>) -> Option<String> {
    loop {
        match dec.decode(buf) {
            Ok(Some(f)) => out.push(f),
            Ok(None) => return None,
            Err(e) => return Some(e.to_string()),
        }
    }
}

/// Decodes `payload` as `command` and, when that succeeds, checks that the message
/// re-encodes to something that decodes to the same message.
fn decode_any(command: Command, payload: &Bytes, ctx: &Context) -> Result<(), TestCaseError> {
    if let Ok(msg) = Message::decode(command, payload.clone(), ctx) {
        let mut out = BytesMut::new();
        msg.encode_payload(&mut out, ctx).map_err(|e| {
            TestCaseError::fail(format!(
                "{command}: decoded {msg:?} but cannot re-encode: {e}"
            ))
        })?;
        let back = Message::decode(command, out.freeze(), ctx).map_err(|e| {
            TestCaseError::fail(format!(
                "{command}: re-encoded message does not decode: {e}"
            ))
        })?;
        prop_assert_eq!(back, msg);
    }
    Ok(())
}

/// Every message type, at every protocol version of [`VERSIONS`] it exists in, with both
/// header layouts (Bitcoin mainnet, LBRY mainnet): 16 random instances of each
/// combination round-trip. Combinations are enumerated, not sampled, so none is missed.
#[test]
fn every_message_type_round_trips_at_every_version_it_exists_in() {
    use proptest::test_runner::{Config, TestRunner};
    use std::collections::BTreeSet;

    let mut covered = BTreeSet::new();
    for net in [Network::Mainnet, Network::LbryMainnet] {
        for pver in VERSIONS {
            let ctx = Context::new(net, pver);
            for arm in plain_arms(ctx).into_iter().chain(tx_arms(ctx)) {
                let mut runner = TestRunner::new(Config {
                    cases: 16,
                    failure_persistence: None,
                    ..Config::default()
                });
                let seen = Cell::new(None);
                let result = runner.run(&arm, |msg| {
                    let known = Message::min_version(msg.command());
                    if known.is_some_and(|min| min > pver) {
                        return Ok(());
                    }
                    seen.set(Some((known.is_some(), msg.command())));
                    assert_round_trip(&ctx, &msg)
                });
                if let Err(e) = result {
                    panic!("{net} at {pver}: {e}");
                }
                if let Some((true, command)) = seen.get() {
                    covered.insert((command.as_str().to_string(), pver, net.name()));
                }
            }
        }
    }
    // Every known command was exercised wherever it exists.
    for net in [Network::Mainnet, Network::LbryMainnet] {
        for pver in VERSIONS {
            for &command in KNOWN {
                let exists = Message::min_version(command).is_some_and(|min| min <= pver);
                let key = (command.as_str().to_string(), pver, net.name());
                assert_eq!(
                    covered.contains(&key),
                    exists,
                    "{command} at {pver} on {net}: exists {exists}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Every message without transactions, at every version it exists in, on every
    /// network (LBRY ones with their 112-byte headers).
    #[test]
    fn messages_round_trip((ctx, msg) in message_at_version(plain_message)) {
        assert_round_trip(&ctx, &msg)?;
    }

    /// Messages that carry transactions.
    #[test]
    fn transaction_messages_round_trip((ctx, msg) in message_at_version(tx_message)) {
        assert_round_trip(&ctx, &msg)?;
    }

    /// However a stream of frames is cut into reads, the decoder returns the same frames.
    #[test]
    fn frame_decoder_ignores_read_boundaries(
        msgs in vec(plain_message(Context::new(Network::Mainnet, 70016)), 1..6),
        cuts in vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let ctx = Context::new(Network::Mainnet, 70016);
        let mut stream = BytesMut::new();
        for m in &msgs {
            encode_frame(Network::Mainnet.magic(), m, &ctx, &mut stream).expect("encodes");
        }
        let stream = stream.freeze();

        let mut whole = Vec::new();
        let mut buf = BytesMut::from(&stream[..]);
        prop_assert_eq!(drain(&mut FrameDecoder::new(Network::Mainnet), &mut buf, &mut whole), None);
        prop_assert!(buf.is_empty());
        prop_assert_eq!(whole.len(), msgs.len());

        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        let mut dec = FrameDecoder::new(Network::Mainnet);
        let mut buf = BytesMut::new();
        let mut pieces = Vec::new();
        for w in points.windows(2) {
            buf.extend_from_slice(&stream[w[0]..w[1]]);
            prop_assert_eq!(drain(&mut dec, &mut buf, &mut pieces), None);
        }
        prop_assert!(buf.is_empty());
        prop_assert!(dec.pending_header().is_none());
        prop_assert_eq!(&pieces, &whole);
        for (f, m) in pieces.iter().zip(&msgs) {
            prop_assert_eq!(&f.decode(&ctx).expect("decodes"), m);
        }
    }

    /// Arbitrary bytes as a stream (half the time behind a valid header for a known
    /// command, so the payload decoders are reached): no panic, and every frame that
    /// comes out decodes, or fails cleanly, or re-encodes to an equal message.
    #[test]
    fn arbitrary_streams_never_panic(
        data in vec(any::<u8>(), 0..600),
        net in network(),
        framed in any::<bool>(),
        which in any::<prop::sample::Index>(),
    ) {
        let ctx = Context::new(net, net.max_protocol_version());
        let mut dec = FrameDecoder::new(net);
        let mut buf = BytesMut::new();
        if framed {
            buf.extend_from_slice(&net.magic());
            buf.extend_from_slice(&which.get(KNOWN).to_bytes());
            buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
            buf.extend_from_slice(&wire_codec::checksum(&data));
        }
        buf.extend_from_slice(&data);
        let mut frames = Vec::new();
        let _ = drain(&mut dec, &mut buf, &mut frames);
        prop_assert!(!framed || frames.len() == 1, "a valid frame was not returned");
        for f in &frames {
            decode_any(f.header.command, &f.payload, &ctx)?;
        }
    }

    /// Arbitrary payloads under every known command, at several versions: no panic, and a
    /// payload that decodes re-encodes to an equal message.
    #[test]
    fn arbitrary_payloads_never_panic(data in vec(any::<u8>(), 0..400), ctx in context()) {
        let payload = Bytes::from(data);
        for &command in KNOWN {
            decode_any(command, &payload, &ctx)?;
        }
    }

    /// Payloads that start with a plausible structure (a small count or length first),
    /// so the decoders get past the first field more often than with uniform bytes.
    #[test]
    fn structured_payloads_never_panic(
        first in 0u8..8,
        rest in vec(prop_oneof![3 => 0u8..4, 1 => any::<u8>()], 0..400),
        ctx in context(),
    ) {
        let mut data = vec![first];
        data.extend_from_slice(&rest);
        let payload = Bytes::from(data);
        for &command in KNOWN {
            decode_any(command, &payload, &ctx)?;
        }
    }

    /// One decode of arbitrary bytes, under every known command, allocates at most
    /// 8 × the payload length + 4 KiB (counting allocator, this thread only).
    #[test]
    fn decoding_allocates_a_small_multiple_of_the_input(
        data in vec(prop_oneof![3 => 0u8..4, 1 => any::<u8>()], 0..2000),
        ctx in context(),
    ) {
        let payload = Bytes::from(data);
        for &command in KNOWN {
            let (_msg, peak) = peak_alloc(|| Message::decode(command, payload.clone(), &ctx));
            prop_assert!(
                peak <= alloc_bound(payload.len()),
                "{} allocated {} bytes for a {}-byte payload", command, peak, payload.len()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Allocation bounds on worst cases
// ---------------------------------------------------------------------------------------

/// Asserts that `payload` decodes as `command` within the allocation bound; returns the
/// peak.
fn check_alloc(command: Command, payload: Vec<u8>, ctx: &Context) -> usize {
    let payload = Bytes::from(payload);
    let (res, peak) = peak_alloc(|| Message::decode(command, payload.clone(), ctx));
    println!(
        "{command}: {peak} bytes allocated decoding {} bytes ({:.2}x)",
        payload.len(),
        peak as f64 / payload.len() as f64
    );
    assert!(
        peak <= alloc_bound(payload.len()),
        "{command}: {peak} bytes allocated for a {}-byte payload ({:?})",
        payload.len(),
        res.as_ref().map(|m| m.command())
    );
    if let Err(e) = res {
        panic!("{command}: the worst-case payload does not decode: {e}");
    }
    peak
}

fn compact(n: u64) -> Vec<u8> {
    let mut v = Vec::new();
    wire_codec::compact_size::write(&mut v, n);
    v
}

/// The densest lists the limits allow: each entry as small as the wire allows, which is
/// where the in-memory form is largest relative to the input.
#[test]
fn densest_lists_stay_within_the_allocation_bound() {
    let ctx = Context::new(Network::Mainnet, 70016);

    // 1,000 addrv2 entries of 9 bytes (empty address of an unknown network).
    let mut p = compact(1000);
    for _ in 0..1000 {
        p.extend_from_slice(&[0, 0, 0, 0, 0, 0xf0, 0, 0, 0]);
    }
    let peak = check_alloc(command::ADDRV2, p.clone(), &ctx);
    assert!(
        peak > 9 * 1000,
        "the entries themselves were counted ({peak})"
    );

    // 2,000 headers, 50,000 inventory entries, 1,000 addresses, 500 locator hashes.
    let mut p = compact(2000);
    p.extend_from_slice(&vec![0u8; 2000 * 81]);
    check_alloc(command::HEADERS, p, &ctx);
    let mut p = compact(50_000);
    p.extend_from_slice(&vec![1u8; 50_000 * 36]);
    check_alloc(command::INV, p, &ctx);
    let mut p = compact(1000);
    p.extend_from_slice(&vec![1u8; 1000 * 30]);
    check_alloc(command::ADDR, p, &ctx);
    let mut p = vec![0, 0, 0, 0];
    p.extend(compact(500));
    p.extend_from_slice(&vec![7u8; 500 * 32 + 32]);
    check_alloc(command::GETHEADERS, p, &ctx);

    // A getblocktxn with every index a one-byte difference.
    let mut p = vec![0u8; 32];
    p.extend(compact(60_000));
    p.extend_from_slice(&vec![0u8; 60_000]);
    check_alloc(command::GETBLOCKTXN, p, &ctx);

    // A transaction whose witness has many empty items, and a block of minimal
    // transactions.
    let mut tx = vec![1, 0, 0, 0, 0, 1, 1];
    tx.extend_from_slice(&[0; 36]);
    tx.extend_from_slice(&[0, 0xff, 0xff, 0xff, 0xff, 0]);
    tx.extend(compact(10_000));
    tx.extend_from_slice(&vec![0u8; 10_000]);
    tx.extend_from_slice(&[0; 4]);
    check_alloc(command::TX, tx, &ctx);
    let mut one = vec![1, 0, 0, 0, 1];
    one.extend_from_slice(&[0; 36]);
    one.extend_from_slice(&[0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0]);
    let mut block = vec![0u8; 80];
    block.extend(compact(5_000));
    for _ in 0..5_000 {
        block.extend_from_slice(&one);
    }
    check_alloc(command::BLOCK, block, &ctx);
}

/// Lists that announce the maximum count but hold nothing allocate (almost) nothing:
/// counts are checked against the bytes present before anything is reserved.
#[test]
fn announced_counts_are_not_trusted() {
    let ctx = Context::new(Network::Mainnet, 70016);
    for (command, prefix) in [
        (command::INV, compact(50_000)),
        (command::ADDR, compact(1_000)),
        (command::ADDRV2, compact(1_000)),
        (command::HEADERS, compact(2_000)),
        (
            command::CFCHECKPT,
            [vec![0u8; 33], compact(100_000)].concat(),
        ),
        (command::BLOCK, [vec![0u8; 80], compact(100_000)].concat()),
        (command::TX, [vec![1, 0, 0, 0], compact(90_000)].concat()),
    ] {
        let payload = Bytes::from(prefix);
        let (res, peak) = peak_alloc(|| Message::decode(command, payload.clone(), &ctx));
        assert!(res.is_err(), "{command}: a count with no entries must fail");
        assert!(
            peak <= 4096,
            "{command}: {peak} bytes allocated for an empty list announcing many entries"
        );
    }
}

/// The frame decoder reserves nothing for a header announcing a huge payload, and
/// buffering a header with only a few payload bytes does not grow the buffer.
#[test]
fn frame_decoder_reserves_nothing() {
    let net = Network::Mainnet;
    let mut header = Vec::new();
    header.extend_from_slice(&net.magic());
    header.extend_from_slice(&command::BLOCK.to_bytes());
    header.extend_from_slice(&3_999_999u32.to_le_bytes());
    header.extend_from_slice(&[0; 4]);
    let mut buf = BytesMut::from(&header[..]);
    buf.extend_from_slice(&[0; 10]);
    let mut dec = FrameDecoder::new(net);
    let (res, peak) = peak_alloc(|| dec.decode(&mut buf));
    assert!(matches!(res, Ok(None)));
    assert!(
        peak <= 256,
        "{peak} bytes allocated while waiting for a payload"
    );
    assert_eq!(dec.bytes_needed(&buf), 3_999_999 - 10);
}
