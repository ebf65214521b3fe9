//! The 12-byte command name of a frame: what kind of message its payload is.

use core::fmt;

use crate::error::{Error, Result};

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
