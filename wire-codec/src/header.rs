//! The 24-byte frame header: magic, command, payload length, checksum.

use core::fmt;

use bytes::BufMut;

use crate::error::{Error, Result};

/// Length of a frame header.
pub const HEADER_LEN: usize = 24;

/// A 12-byte command name: printable ASCII, NUL-padded.
///
/// ```
/// use wire_codec::Command;
/// let c = Command::new("verack").unwrap();
/// assert_eq!(c.as_str(), "verack");
/// assert_eq!(&c.to_bytes()[..7], b"verack\0");
/// assert!(Command::new("much-too-long-command").is_none());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Command {
    bytes: [u8; 12],
    len: u8,
}

impl Command {
    /// A command from a name of at most 12 printable ASCII characters.
    pub const fn new(name: &str) -> Option<Command> {
        let b = name.as_bytes();
        if b.len() > 12 {
            return None;
        }
        let mut bytes = [0u8; 12];
        let mut i = 0;
        while i < b.len() {
            if b[i] < 0x20 || b[i] > 0x7e {
                return None;
            }
            bytes[i] = b[i];
            i += 1;
        }
        Some(Command {
            bytes,
            len: b.len() as u8,
        })
    }

    /// A command known at compile time. Panics (at compile time in const contexts) on a
    /// bad name, so it is only used for the protocol's own names.
    pub const fn from_static(name: &'static str) -> Command {
        match Command::new(name) {
            Some(c) => c,
            None => panic!("invalid command name"),
        }
    }

    /// Parses the header field: printable ASCII up to the first NUL, NULs after it
    /// (Bitcoin Core's `IsCommandValid`).
    pub fn from_wire(bytes: [u8; 12]) -> Result<Command> {
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(12);
        let valid = bytes[..len].iter().all(|&b| (0x20..=0x7e).contains(&b))
            && bytes[len..].iter().all(|&b| b == 0);
        if !valid {
            return Err(Error::InvalidCommand { bytes });
        }
        Ok(Command {
            bytes,
            len: len as u8,
        })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        // Only printable ASCII is ever stored.
        core::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }

    /// The 12 bytes as on the wire.
    pub const fn to_bytes(&self) -> [u8; 12] {
        self.bytes
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Command({:?})", self.as_str())
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
        cmd.copy_from_slice(&b[4..16]);
        Ok(FrameHeader {
            magic: [b[0], b[1], b[2], b[3]],
            command: Command::from_wire(cmd)?,
            length: u32::from_le_bytes([b[16], b[17], b[18], b[19]]),
            checksum: [b[20], b[21], b[22], b[23]],
        })
    }

    /// Appends the 24 bytes.
    pub fn write<B: BufMut>(&self, out: &mut B) {
        out.put_slice(&self.magic);
        out.put_slice(&self.command.to_bytes());
        out.put_u32_le(self.length);
        out.put_slice(&self.checksum);
    }
}
