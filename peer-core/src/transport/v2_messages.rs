//! BIP324's message-type encoding: one byte for the 28 common commands, or a zero byte
//! followed by the 12-byte command for everything else.
//!
//! The table is BIP324's (IDs 1–28; 29–255 are unassigned). A received unassigned ID or
//! a malformed long form is not an error: the message is ignored, as Bitcoin Core does,
//! so a peer that assigns new IDs later is not disconnected for it.

use wire_codec::Command;

/// BIP324's short IDs: `SHORT_IDS[id - 1]` is the command of `id`. Kept as commands so a
/// look-up compares 13 bytes per entry (no string conversion per message).
const SHORT_IDS: [Command; 28] = [
    Command::from_static("addr"),
    Command::from_static("block"),
    Command::from_static("blocktxn"),
    Command::from_static("cmpctblock"),
    Command::from_static("feefilter"),
    Command::from_static("filteradd"),
    Command::from_static("filterclear"),
    Command::from_static("filterload"),
    Command::from_static("getblocks"),
    Command::from_static("getblocktxn"),
    Command::from_static("getdata"),
    Command::from_static("getheaders"),
    Command::from_static("headers"),
    Command::from_static("inv"),
    Command::from_static("mempool"),
    Command::from_static("merkleblock"),
    Command::from_static("notfound"),
    Command::from_static("ping"),
    Command::from_static("pong"),
    Command::from_static("sendcmpct"),
    Command::from_static("tx"),
    Command::from_static("getcfilters"),
    Command::from_static("cfilter"),
    Command::from_static("getcfheaders"),
    Command::from_static("cfheaders"),
    Command::from_static("getcfcheckpt"),
    Command::from_static("cfcheckpt"),
    Command::from_static("addrv2"),
];

/// The longest message-type encoding: a zero byte and a 12-byte command.
pub const MAX_MESSAGE_TYPE_LEN: usize = 13;

/// The short ID of `command`, if BIP324 assigns one.
///
/// ```
/// use peer_core::transport::v2_messages::short_id;
/// use wire_codec::Command;
/// assert_eq!(short_id(&Command::from_static("ping")), Some(18));
/// assert_eq!(short_id(&Command::from_static("version")), None);
/// ```
pub fn short_id(command: &Command) -> Option<u8> {
    SHORT_IDS
        .iter()
        .position(|c| c == command)
        .map(|i| i as u8 + 1)
}

/// The command of short ID `id` (1–28), if assigned.
pub fn command_of(id: u8) -> Option<Command> {
    SHORT_IDS.get(usize::from(id).checked_sub(1)?).copied()
}

/// Writes the message-type encoding of `command` into `out` and returns its length
/// (1 or 13).
///
/// ```
/// use peer_core::transport::v2_messages::encode_message_type;
/// use wire_codec::Command;
/// let mut buf = [0u8; 13];
/// assert_eq!(encode_message_type(&Command::from_static("inv"), &mut buf), 1);
/// assert_eq!(buf[0], 14);
/// assert_eq!(encode_message_type(&Command::from_static("verack"), &mut buf), 13);
/// assert_eq!(&buf[..8], b"\0verack\0");
/// ```
pub fn encode_message_type(command: &Command, out: &mut [u8; MAX_MESSAGE_TYPE_LEN]) -> usize {
    match short_id(command) {
        Some(id) => {
            out[0] = id;
            1
        }
        None => {
            out[0] = 0;
            out[1..].copy_from_slice(&command.to_bytes());
            MAX_MESSAGE_TYPE_LEN
        }
    }
}

/// Why a genuine packet's contents carry no message we can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unnamed {
    /// The contents are empty (no message-type byte).
    Empty,
    /// A short ID BIP324 does not assign.
    UnknownId(u8),
    /// The long form is shorter than 13 bytes or its command is not printable ASCII
    /// padded with NULs.
    BadLongForm,
}

/// Reads the message type at the start of a packet's contents: the command and how many
/// bytes the encoding took (the payload follows).
///
/// ```
/// use peer_core::transport::v2_messages::{decode_message_type, Unnamed};
/// let (cmd, used) = decode_message_type(&[18, 1, 2, 3]).unwrap();
/// assert_eq!((cmd.as_str(), used), ("ping", 1));
/// assert_eq!(decode_message_type(&[200]), Err(Unnamed::UnknownId(200)));
/// ```
pub fn decode_message_type(contents: &[u8]) -> Result<(Command, usize), Unnamed> {
    match contents.first() {
        None => Err(Unnamed::Empty),
        Some(0) => {
            let bytes: [u8; 12] = contents
                .get(1..MAX_MESSAGE_TYPE_LEN)
                .and_then(|b| b.try_into().ok())
                .ok_or(Unnamed::BadLongForm)?;
            let cmd = Command::from_wire(bytes).map_err(|_| Unnamed::BadLongForm)?;
            Ok((cmd, MAX_MESSAGE_TYPE_LEN))
        }
        Some(&id) => command_of(id).map(|c| (c, 1)).ok_or(Unnamed::UnknownId(id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_short_id_round_trips_and_is_one_byte() {
        for id in 1..=28u8 {
            let cmd = command_of(id).unwrap();
            assert_eq!(short_id(&cmd), Some(id));
            let mut buf = [0u8; MAX_MESSAGE_TYPE_LEN];
            assert_eq!(encode_message_type(&cmd, &mut buf), 1);
            assert_eq!(decode_message_type(&buf[..1]), Ok((cmd, 1)));
        }
    }

    #[test]
    fn spot_checks_against_the_bip_table() {
        let at = |id| command_of(id).unwrap().as_str().to_owned();
        assert_eq!(at(1), "addr");
        assert_eq!(at(11), "getdata");
        assert_eq!(at(14), "inv");
        assert_eq!(at(21), "tx");
        assert_eq!(at(28), "addrv2");
        assert_eq!(command_of(0), None);
        assert_eq!(command_of(29), None);
        assert_eq!(command_of(255), None);
    }

    #[test]
    fn long_form_round_trips_and_rejects_bad_forms() {
        for name in [
            "version",
            "verack",
            "sendaddrv2",
            "wtxidrelay",
            "sendheaders",
            "x",
        ] {
            let cmd = Command::new(name).unwrap();
            let mut buf = [0u8; MAX_MESSAGE_TYPE_LEN];
            assert_eq!(encode_message_type(&cmd, &mut buf), 13);
            assert_eq!(decode_message_type(&buf), Ok((cmd, 13)));
        }
        assert_eq!(decode_message_type(&[]), Err(Unnamed::Empty));
        assert_eq!(decode_message_type(&[0, b'a']), Err(Unnamed::BadLongForm));
        let mut bad = [0u8; 13];
        bad[1..4].copy_from_slice(b"a\0b");
        assert_eq!(decode_message_type(&bad), Err(Unnamed::BadLongForm));
    }
}
