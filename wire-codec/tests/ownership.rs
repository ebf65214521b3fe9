//! Decoded values an application may keep do not keep the receive buffer alive: small
//! variable-length fields are copied, small payloads of slice-keeping messages get their
//! own allocation, big payloads stay zero-copy.

use bytes::{Bytes, BytesMut};
use wire_codec::message::{
    AddrV2, AddrV2Entry, NetworkId, OutPoint, ServiceFlags, Transaction, TxIn, TxOut,
};
use wire_codec::{encode_frame, Context, FrameDecoder, Hash256, Message, Network};

const NET: Network = Network::Mainnet;

fn ctx() -> Context {
    Context::new(NET, 70016)
}

/// Whether `inner` points into the read buffer's memory.
fn inside(inner: &[u8], buffer: &std::ops::Range<usize>) -> bool {
    buffer.contains(&(inner.as_ptr() as usize))
}

/// Frames `msgs` into one big read buffer (with 1 MiB of filler frames after them, as
/// a busy read would bring) and decodes them all, keeping the buffer's bytes to check
/// pointers against.
fn decode_all(msgs: &[Message]) -> (Vec<Message>, std::ops::Range<usize>) {
    let mut wire = BytesMut::new();
    for m in msgs {
        encode_frame(NET.magic(), m, &ctx(), &mut wire).unwrap();
    }
    let filler = Message::Unknown {
        command: wire_codec::Command::from_static("filler"),
        payload: Bytes::from(vec![0u8; 1 << 20]),
    };
    encode_frame(NET.magic(), &filler, &ctx(), &mut wire).unwrap();
    let start = wire.as_ptr() as usize;
    let snapshot = start..start + wire.len();
    let mut buf = wire;
    let mut dec = FrameDecoder::new(NET);
    let mut out = Vec::new();
    while let Some(f) = dec.decode(&mut buf).unwrap() {
        out.push(f.decode(&ctx()).unwrap());
    }
    (out, snapshot)
}

fn small_tx() -> Transaction {
    let input = TxIn {
        prevout: OutPoint {
            txid: Hash256([7; 32]),
            vout: 1,
        },
        script_sig: Bytes::from_static(&[0x51; 100]),
        sequence: 0xffff_fffd,
        witness: vec![],
    };
    let output = TxOut {
        value: 50_000,
        script_pubkey: Bytes::from_static(&[0x00, 0x14, 1, 2]),
    };
    Transaction::build(2, &[input], &[output], 0)
}

/// Transactions stay zero-copy slices of their payload (the codec's speed); the
/// codec says which messages keep their payload, for drivers that give small ones
/// their own allocation.
#[test]
fn transactions_stay_zero_copy_and_say_so() {
    let tx = small_tx();
    let (msgs, wire) = decode_all(&[Message::Tx(tx.clone())]);
    let Message::Tx(got) = &msgs[0] else {
        panic!("{:?}", msgs[0])
    };
    assert_eq!(got, &tx);
    assert!(inside(got.raw(), &wire), "the codec copied a transaction");
    use wire_codec::message::command;
    for c in [
        command::TX,
        command::BLOCK,
        command::CMPCTBLOCK,
        command::BLOCKTXN,
    ] {
        assert!(Message::keeps_payload(c), "{c}");
    }
    for c in [
        command::PING,
        command::INV,
        command::ADDR,
        command::ADDRV2,
        command::HEADERS,
        command::REJECT,
        command::VERSION,
    ] {
        assert!(!Message::keeps_payload(c), "{c}");
    }
}

#[test]
fn addrv2_addresses_are_copied() {
    let entries: Vec<AddrV2Entry> = (0..1000u32)
        .map(|i| AddrV2Entry {
            time: i,
            services: ServiceFlags::NETWORK,
            network: NetworkId::IPV6,
            addr: Bytes::copy_from_slice(&[(i % 251) as u8; 16]),
            port: 8333,
        })
        .collect();
    let (msgs, wire) = decode_all(&[Message::AddrV2(AddrV2 { addresses: entries })]);
    let Message::AddrV2(got) = &msgs[0] else {
        panic!()
    };
    assert_eq!(got.addresses.len(), 1000);
    for e in &got.addresses {
        assert!(!inside(&e.addr, &wire));
        assert!(e.addr.is_unique(), "an address shares an allocation");
    }
}

#[test]
fn payloads_stay_zero_copy() {
    let big = Message::Unknown {
        command: wire_codec::Command::from_static("big"),
        payload: Bytes::from(vec![3u8; 200_000]),
    };
    let small = Message::Unknown {
        command: wire_codec::Command::from_static("small"),
        payload: Bytes::from(vec![4u8; 200]),
    };
    let (msgs, wire) = decode_all(&[big, small]);
    for m in &msgs[..2] {
        let Message::Unknown { payload, .. } = m else {
            panic!()
        };
        assert!(inside(payload, &wire), "the codec copied a payload");
    }
}

/// A frame with an empty payload takes no reference to the read buffer: a read that
/// brought only such frames (a peer's `wtxidrelay`, `sendaddrv2` and `verack`) leaves
/// the buffer unshared, so it is not promoted to a shared allocation and what is
/// left of it is still uniquely owned while the frames are kept.
#[test]
fn empty_payloads_leave_the_read_buffer_unshared() {
    let mut wire = BytesMut::new();
    for m in [Message::WtxidRelay, Message::SendAddrV2, Message::Verack] {
        encode_frame(NET.magic(), &m, &ctx(), &mut wire).unwrap();
    }
    let mut buf = wire;
    let mut dec = FrameDecoder::new(NET);
    let mut frames = Vec::new();
    while let Some(f) = dec.decode(&mut buf).unwrap() {
        assert!(f.payload.is_empty());
        frames.push(f);
    }
    assert_eq!(frames.len(), 3);
    assert!(buf.is_empty());
    // Still the original, unshared allocation (a split would have shared it with the
    // frames kept above).
    assert!(std::mem::take(&mut buf).freeze().is_unique());
    let commands: Vec<_> = frames
        .into_iter()
        .map(|f| f.into_message(&ctx()).unwrap())
        .collect();
    assert_eq!(
        commands,
        vec![Message::WtxidRelay, Message::SendAddrV2, Message::Verack]
    );
}
