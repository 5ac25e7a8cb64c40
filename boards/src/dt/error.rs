//! What can go wrong reading a device tree, and where. Fields are integers,
//! `&'static str` and a fixed-size [`NodePath`], so the error is `Copy`, needs
//! no heap and logs as structured `defmt` fields.

use core::fmt;

use dtoolkit::error::{FdtErrorKind, FdtParseError};

/// Longest node path an error keeps; a longer one keeps its first bytes and
/// shows `...`.
pub const NODE_PATH_MAX: usize = 80;

/// The path of a node (`/soc/serial@7e201000`), copied out of the blob so the
/// error does not borrow it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NodePath {
    buf: [u8; NODE_PATH_MAX],
    len: u8,
    truncated: bool,
}

impl NodePath {
    /// The root, `/`.
    pub const ROOT: Self = {
        let mut buf = [0u8; NODE_PATH_MAX];
        buf[0] = b'/';
        Self { buf, len: 1, truncated: false }
    };

    /// Builds `/a/b/c` from the names below the root (the root's own name,
    /// the empty string, is skipped).
    pub(crate) fn from_names<'n>(names: impl Iterator<Item = &'n str>) -> Self {
        let mut p = Self { buf: [0; NODE_PATH_MAX], len: 0, truncated: false };
        for name in names.filter(|n| !n.is_empty()) {
            if !p.push(name.as_bytes()) {
                p.truncated = true;
                break;
            }
        }
        if p.len == 0 && !p.truncated {
            return Self::ROOT;
        }
        p
    }

    /// Appends `/name`, or nothing if it does not fit whole.
    fn push(&mut self, name: &[u8]) -> bool {
        let start = usize::from(self.len);
        let end = start + 1 + name.len();
        let Some(dst) = self.buf.get_mut(start..end) else {
            return false;
        };
        dst[0] = b'/';
        dst[1..].copy_from_slice(name);
        // Fits: end <= NODE_PATH_MAX < 256.
        self.len = end as u8;
        true
    }

    /// The path (without the truncation mark).
    pub fn as_str(&self) -> &str {
        // Only whole `&str` names are ever pushed, so this is valid UTF-8.
        core::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("?")
    }

    /// Whether the path was too long to keep whole.
    pub const fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl fmt::Display for NodePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        if self.truncated {
            f.write_str("/...")?;
        }
        Ok(())
    }
}

impl fmt::Debug for NodePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for NodePath {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=str}", self.as_str());
        if self.truncated {
            defmt::write!(f, "/...");
        }
    }
}

/// Why a device tree was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DtError {
    /// Fewer bytes than the 40-byte FDT header.
    HeaderTooShort {
        /// Bytes available.
        len: usize,
    },
    /// The first word is not 0xd00dfeed.
    BadMagic {
        /// The word found (big-endian).
        found: u32,
    },
    /// The header's version range does not include 17, the version parsed.
    UnsupportedVersion {
        /// `version`.
        version: u32,
        /// `last_comp_version`.
        last_compatible: u32,
    },
    /// `totalsize` is smaller than the header or larger than
    /// [`crate::dt::MAX_TOTAL_SIZE`].
    BadTotalSize {
        /// `totalsize`.
        total_size: u32,
    },
    /// The slice is shorter than the header's `totalsize`.
    Truncated {
        /// `totalsize`.
        header_says: usize,
        /// The slice's length.
        blob_has: usize,
    },
    /// The structure or strings block is malformed (dtoolkit's validation).
    Structure {
        /// What is wrong.
        kind: &'static str,
        /// Byte offset in the blob.
        offset: usize,
    },
    /// A node the hypervisor cannot run without is absent.
    MissingNode {
        /// Which (`/cpus`, `/memory`, the interrupt controller).
        node: &'static str,
    },
    /// A property is missing or malformed.
    BadProperty {
        /// The node holding it.
        node: NodePath,
        /// The property.
        property: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// More entries than a fixed-capacity list of [`crate::Platform`] holds.
    TooMany {
        /// Which list.
        list: &'static str,
        /// Its capacity.
        capacity: usize,
    },
    /// A bound on the work done was hit (tree depth, nodes visited).
    Limit {
        /// Which bound.
        what: &'static str,
        /// Its value.
        limit: usize,
    },
}

impl DtError {
    /// A short, fixed name for the kind of error (for a log line or a test).
    pub const fn what(&self) -> &'static str {
        match self {
            DtError::HeaderTooShort { .. } => "header too short",
            DtError::BadMagic { .. } => "bad magic",
            DtError::UnsupportedVersion { .. } => "unsupported version",
            DtError::BadTotalSize { .. } => "bad totalsize",
            DtError::Truncated { .. } => "truncated",
            DtError::Structure { .. } => "malformed structure",
            DtError::MissingNode { .. } => "missing node",
            DtError::BadProperty { .. } => "bad property",
            DtError::TooMany { .. } => "too many entries",
            DtError::Limit { .. } => "limit reached",
        }
    }

    /// Wraps dtoolkit's validation error, keeping its kind and offset.
    pub(crate) fn from_parse(e: &FdtParseError) -> Self {
        let kind = match e.kind {
            FdtErrorKind::InvalidMagic => "invalid magic",
            FdtErrorKind::UnsupportedVersion(_) => "unsupported version",
            FdtErrorKind::InvalidLength => "invalid length",
            FdtErrorKind::InvalidHeader(what) => what,
            FdtErrorKind::BadToken(_) => "bad token",
            FdtErrorKind::InvalidOffset => "offset out of bounds",
            FdtErrorKind::InvalidString => "invalid string",
            FdtErrorKind::InvalidNodeName => "invalid node name",
            FdtErrorKind::InvalidPropertyName => "invalid property name",
            FdtErrorKind::MemReserveNotTerminated => "memory reservation block not terminated",
            FdtErrorKind::MemReserveInvalid => "invalid memory reservation entry",
            _ => "structure error",
        };
        DtError::Structure { kind, offset: parse_error_offset(e) }
    }
}

/// dtoolkit 0.4 keeps the offset private but prints it last
/// (`"{kind} at offset {offset}"`): keep the last run of decimal digits.
fn parse_error_offset(e: &FdtParseError) -> usize {
    struct LastNumber {
        current: Option<usize>,
        last: usize,
    }
    impl fmt::Write for LastNumber {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for c in s.chars() {
                match c.to_digit(10) {
                    Some(d) => {
                        let v = self.current.unwrap_or(0);
                        self.current = Some(v.saturating_mul(10).saturating_add(d as usize));
                    }
                    None => {
                        if let Some(v) = self.current.take() {
                            self.last = v;
                        }
                    }
                }
            }
            Ok(())
        }
    }
    let mut sink = LastNumber { current: None, last: 0 };
    let _ = fmt::write(&mut sink, format_args!("{e}"));
    sink.current.unwrap_or(sink.last)
}

impl fmt::Display for DtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DtError::HeaderTooShort { len } => {
                write!(f, "device tree: {len} bytes, fewer than the 40-byte header")
            }
            DtError::BadMagic { found } => {
                write!(f, "device tree: bad magic {found:#010x} (want 0xd00dfeed)")
            }
            DtError::UnsupportedVersion { version, last_compatible } => write!(
                f,
                "device tree: version {version} (compatible back to {last_compatible}) does not include 17"
            ),
            DtError::BadTotalSize { total_size } => write!(
                f,
                "device tree: header totalsize {total_size} is below 40 or above {}",
                super::MAX_TOTAL_SIZE
            ),
            DtError::Truncated { header_says, blob_has } => {
                write!(f, "device tree: truncated, header says {header_says} bytes, blob has {blob_has}")
            }
            DtError::Structure { kind, offset } => {
                write!(f, "device tree: {kind} at offset {offset:#x}")
            }
            DtError::MissingNode { node } => write!(f, "device tree: no {node} node"),
            DtError::BadProperty { node, property, reason } => {
                write!(f, "device tree: {node}: property `{property}`: {reason}")
            }
            DtError::TooMany { list, capacity } => {
                write!(f, "device tree: more {list} than the {capacity} this build keeps")
            }
            DtError::Limit { what, limit } => {
                write!(f, "device tree: {what} exceeds the limit of {limit}")
            }
        }
    }
}

impl core::error::Error for DtError {}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;

    #[test]
    fn node_path_joins_names_below_root() {
        let p = NodePath::from_names(["", "soc", "serial@7e201000"].into_iter());
        assert_eq!(p.as_str(), "/soc/serial@7e201000");
        assert!(!p.is_truncated());
        assert_eq!(NodePath::from_names([""].into_iter()).as_str(), "/");
    }

    #[test]
    fn node_path_truncates_whole_names() {
        let long = "a-node-name-of-thirty-one-chars";
        let p = NodePath::from_names(core::iter::repeat_n(long, 5));
        assert!(p.is_truncated());
        assert_eq!(p.as_str().len(), 2 * (long.len() + 1));
        assert!(p.to_string().ends_with("/..."));
    }

    #[test]
    fn display_names_the_property_and_node() {
        let e = DtError::BadProperty {
            node: NodePath::from_names(["", "cpus", "cpu@0"].into_iter()),
            property: "reg",
            reason: "wrong length",
        };
        assert_eq!(e.to_string(), "device tree: /cpus/cpu@0: property `reg`: wrong length");
        assert_eq!(e.what(), "bad property");
    }

    #[test]
    fn parse_errors_keep_dtoolkit_offset() {
        // A header whose magic is wrong: dtoolkit reports offset 0; with a
        // bad version it reports offset 20 (the field's offset).
        let mut h = [0u8; 40];
        h[..4].copy_from_slice(&0xd00d_feedu32.to_be_bytes());
        h[4..8].copy_from_slice(&40u32.to_be_bytes());
        h[20..24].copy_from_slice(&99u32.to_be_bytes());
        h[24..28].copy_from_slice(&98u32.to_be_bytes());
        let e = dtoolkit::fdt::Fdt::new(&h).unwrap_err();
        assert_eq!(DtError::from_parse(&e), DtError::Structure { kind: "unsupported version", offset: 20 });
    }
}
