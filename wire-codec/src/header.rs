//! The 24-byte frame header: magic, command, payload length, checksum.

use bytes::BufMut;

use crate::command::Command;
use crate::error::Result;

/// Length of a frame header.
pub const HEADER_LEN: usize = 24;

/// The layout of the 24 bytes — the one place it is written. Everything that reads or
/// writes a header field (the parser, the frame decoder's early checks, the frame
/// encoder's patching of length and checksum) takes the field's bytes from here.
pub mod layout {
    use core::ops::Range;
    /// Network magic, wire order.
    pub const MAGIC: Range<usize> = 0..4;
    /// Command name, NUL-padded ASCII.
    pub const COMMAND: Range<usize> = 4..16;
    /// Payload length, little-endian `u32`.
    pub const LENGTH: Range<usize> = 16..20;
    /// First four bytes of the payload's double SHA-256.
    pub const CHECKSUM: Range<usize> = 20..24;

    /// The four bytes at `range` of a header.
    #[inline]
    pub fn field4(b: &[u8; super::HEADER_LEN], range: Range<usize>) -> [u8; 4] {
        let mut out = [0u8; 4];
        out.copy_from_slice(&b[range]);
        out
    }

    /// The magic of a header.
    #[inline]
    pub fn magic(b: &[u8; super::HEADER_LEN]) -> [u8; 4] {
        field4(b, MAGIC)
    }

    /// The payload length a header announces.
    #[inline]
    pub fn length(b: &[u8; super::HEADER_LEN]) -> u32 {
        u32::from_le_bytes(field4(b, LENGTH))
    }

    /// The raw command field of a header.
    #[inline]
    pub fn command(b: &[u8]) -> Option<[u8; 12]> {
        b.get(COMMAND)?.try_into().ok()
    }
}

/// A parsed frame header.
///
/// ```
/// use wire_codec::{FrameHeader, Command, Network};
/// let mut wire = Vec::new();
/// let h = FrameHeader { magic: Network::Mainnet.magic(), command: Command::from_static("ping"),
///                       length: 8, checksum: [1, 2, 3, 4] };
/// h.write(&mut wire);
/// assert_eq!(wire.len(), 24);
/// assert_eq!(FrameHeader::parse(wire[..].try_into().unwrap()).unwrap(), h);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Network magic, wire order.
    pub magic: [u8; 4],
    /// The command.
    pub command: Command,
    /// Payload length in bytes.
    pub length: u32,
    /// First four bytes of the payload's double SHA-256.
    pub checksum: [u8; 4],
}

impl FrameHeader {
    /// Parses 24 bytes. Only the command's form is checked here; magic and length are
    /// checked by the frame decoder, which knows the stream's network and limits.
    pub fn parse(b: &[u8; HEADER_LEN]) -> Result<FrameHeader> {
        let mut cmd = [0u8; 12];
        cmd.copy_from_slice(&b[layout::COMMAND]);
        Ok(FrameHeader {
            magic: layout::magic(b),
            command: Command::from_wire(cmd)?,
            length: layout::length(b),
            checksum: layout::field4(b, layout::CHECKSUM),
        })
    }

    /// The 24 bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[layout::MAGIC].copy_from_slice(&self.magic);
        b[layout::COMMAND].copy_from_slice(&self.command.to_bytes());
        b[layout::LENGTH].copy_from_slice(&self.length.to_le_bytes());
        b[layout::CHECKSUM].copy_from_slice(&self.checksum);
        b
    }

    /// Appends the 24 bytes.
    pub fn write<B: BufMut>(&self, out: &mut B) {
        out.put_slice(&self.to_bytes());
    }
}
