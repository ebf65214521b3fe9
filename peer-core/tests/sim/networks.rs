//! Networks beyond the built-in list (btcd's `chaincfg.Params`): simnet, a signet with
//! its own challenge, and any user-given magic, port and limits.

use peer_core::DisconnectReason;
use wire_codec::message::{InvType, InvVect, Inventory, Message};
use wire_codec::{Error as CodecError, Hash256, HeaderKind, Limits, Network, NetworkParams};

use crate::harness::*;

#[test]
fn simnet_and_a_custom_signet_complete_handshakes() {
    for net in [
        Network::simnet(),
        Network::custom_signet(&[0x51]), // OP_TRUE: a trivial challenge
    ] {
        let p = Pair::connected(config(net), config(net));
        assert_eq!(p.a.peer.negotiated_version(), 70016);
        assert_eq!(p.a.peer.config().network, net);
    }
    assert_ne!(
        Network::custom_signet(&[0x51]).magic(),
        Network::Signet.magic()
    );
}

/// A peer of another network (another magic) is refused at its first frame.
#[test]
fn a_custom_magic_refuses_other_networks() {
    let net = Network::custom_signet(&[0x51]);
    let mut p = Pair::new(config(net), config(Network::Signet));
    p.drive();
    assert!(matches!(
        p.b.peer.disconnect_reason(),
        Some(DisconnectReason::Decode(CodecError::BadMagic { .. }))
    ));
}

/// User-given limits are the peer's limits: a smaller inv limit refuses what the
/// default accepts.
#[test]
fn user_limits_apply() {
    let net = Network::custom(NetworkParams {
        name: "tiny",
        magic: [0x11, 0x22, 0x33, 0x44],
        default_port: 40000,
        header_kind: HeaderKind::Bitcoin,
        max_protocol_version: 70016,
        limits: Limits {
            max_inv: 10,
            ..Limits::BITCOIN
        },
    });
    let mut p = Pair::connected(config(net), config(net));
    let inv = |n: usize| {
        Message::Inv(Inventory::new(vec![
            InvVect::new(
                InvType::BLOCK,
                Hash256([1; 32])
            );
            n
        ]))
    };
    p.a.peer.queue_message(inv(10), Some(1));
    p.a.peer.queue_message(inv(11), Some(2));
    p.drive();
    assert_eq!(p.a.rec.sent(), vec![1]);
    assert_eq!(p.a.rec.failed(), vec![2], "11 entries cannot be encoded");
    assert!(!p.b.peer.is_closed());
    // Sent raw by a remote (encoded with the default limits), it is refused on decode.
    let now = p.now;
    let mut big = frame(Network::Mainnet, 70016, &inv(11));
    big[..4].copy_from_slice(&net.magic());
    inject(&mut p.b, &big, now);
    assert!(matches!(
        p.b.peer.disconnect_reason(),
        Some(DisconnectReason::Decode(CodecError::TooManyEntries { .. }))
    ));
}
