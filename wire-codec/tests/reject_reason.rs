//! The reject reason's length limit (Core's MAX_REJECT_MESSAGE_LENGTH, 111) is enforced:
//! a longer one from the wire is refused, and ours are cut to it when encoded.

use bytes::BytesMut;
use wire_codec::message::{Reject, RejectCode};
use wire_codec::{encode_frame, Context, Error, FrameDecoder, Message, Network};

fn ctx() -> Context {
    Context::new(Network::Mainnet, 70016)
}

fn reject(reason: &str) -> Message {
    Message::Reject(Box::new(Reject {
        message: "tx".into(),
        code: RejectCode::MALFORMED,
        reason: reason.into(),
        hash: None,
    }))
}

fn round_trip(msg: &Message) -> Result<Message, Error> {
    let mut wire = BytesMut::new();
    encode_frame(Network::Mainnet.magic(), msg, &ctx(), &mut wire).unwrap();
    let f = FrameDecoder::new(Network::Mainnet)
        .decode(&mut wire)?
        .unwrap();
    f.decode(&ctx())
}

#[test]
fn our_long_reasons_are_cut_to_the_limit() {
    let long = "é".repeat(100); // 200 bytes of two-byte characters
    let Message::Reject(back) = round_trip(&reject(&long)).unwrap() else {
        panic!()
    };
    assert!(back.reason.len() <= ctx().limits.max_reject_reason);
    assert_eq!(back.reason.len(), 110, "cut at a character boundary");
    let Message::Reject(short) = round_trip(&reject("ok")).unwrap() else {
        panic!()
    };
    assert_eq!(short.reason, "ok");
}

#[test]
fn a_longer_reason_from_the_wire_is_refused() {
    // Hand-encoded: message "tx", code, a 112-byte reason.
    let mut payload = vec![2, b't', b'x', 0x01, 112];
    payload.extend(std::iter::repeat(b'a').take(112));
    let r = Message::decode(wire_codec::message::command::REJECT, payload.into(), &ctx());
    assert!(
        matches!(
            r,
            Err(Error::TooLong {
                what: "reject reason",
                len: 112,
                max: 111
            })
        ),
        "{r:?}"
    );
}
