//! Reading big-endian 32-bit cells out of property values, without panicking on
//! any length.

/// Most cells one address or size may take here (PCI addresses take 3).
pub(crate) const MAX_CELLS: u32 = 4;

/// A cursor over the cells of a property value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cells<'a> {
    bytes: &'a [u8],
}

impl<'a> Cells<'a> {
    pub(crate) const fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// Whether every cell has been read.
    pub(crate) const fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Cells left (a trailing partial cell does not count).
    pub(crate) const fn remaining(&self) -> usize {
        self.bytes.len() / 4
    }

    /// The next cell.
    pub(crate) fn u32(&mut self) -> Option<u32> {
        let (cell, rest) = self.bytes.split_first_chunk::<4>()?;
        self.bytes = rest;
        Some(u32::from_be_bytes(*cell))
    }

    /// The next `n` cells as one number, most significant first
    /// (`n` <= [`MAX_CELLS`]; `n` = 0 reads nothing and gives 0).
    pub(crate) fn take(&mut self, n: u32) -> Option<u128> {
        if n > MAX_CELLS || self.remaining() < n as usize {
            return None;
        }
        let mut v: u128 = 0;
        for _ in 0..n {
            v = (v << 32) | u128::from(self.u32()?);
        }
        Some(v)
    }

    /// The next `n` cells as a number that must fit 64 bits.
    pub(crate) fn take_u64(&mut self, n: u32) -> Option<u64> {
        self.take(n).and_then(|v| u64::try_from(v).ok())
    }
}

/// A property value as a single `u32` (exactly one cell).
pub(crate) fn as_u32(value: &[u8]) -> Option<u32> {
    let cell: [u8; 4] = value.try_into().ok()?;
    Some(u32::from_be_bytes(cell))
}

/// A property value as a NUL-terminated UTF-8 string.
pub(crate) fn as_str(value: &[u8]) -> Option<&str> {
    let (last, body) = value.split_last()?;
    if *last != 0 || body.contains(&0) {
        return None;
    }
    core::str::from_utf8(body).ok()
}

/// Whether a DT `stringlist` value contains `s`.
pub(crate) fn stringlist_contains(value: &[u8], s: &str) -> bool {
    stringlist(value).any(|c| c == s)
}

/// The strings of a DT `stringlist` value; stops at the first malformed one.
pub(crate) fn stringlist(value: &[u8]) -> impl Iterator<Item = &str> {
    let mut rest = value;
    core::iter::from_fn(move || {
        let nul = rest.iter().position(|&b| b == 0)?;
        let (s, tail) = rest.split_at(nul);
        rest = tail.get(1..).unwrap_or(&[]);
        core::str::from_utf8(s).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_joins_cells_big_endian() {
        let v = [0, 0, 0, 0x40, 0x10, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef];
        let mut c = Cells::new(&v);
        assert_eq!(c.take(2), Some(0x40_1000_0000));
        assert_eq!(c.remaining(), 1);
        assert_eq!(c.take(2), None);
        assert_eq!(c.take(1), Some(0xdead_beef));
        assert!(c.is_empty());
        assert_eq!(c.take(0), Some(0));
    }

    #[test]
    fn take_refuses_oversized_fields() {
        let v = [0xffu8; 24];
        assert_eq!(Cells::new(&v).take(5), None);
        assert_eq!(Cells::new(&v).take(4), Some(u128::MAX));
        assert_eq!(Cells::new(&v).take_u64(3), None);
        assert_eq!(Cells::new(&v).take_u64(2), Some(u64::MAX));
    }

    #[test]
    fn partial_cells_are_not_read() {
        let v = [1, 2, 3];
        let mut c = Cells::new(&v);
        assert_eq!(c.remaining(), 0);
        assert_eq!(c.u32(), None);
    }

    #[test]
    fn strings() {
        assert_eq!(as_str(b"smc\0"), Some("smc"));
        assert_eq!(as_str(b"smc"), None);
        assert_eq!(as_str(b"a\0b\0"), None);
        assert_eq!(as_str(b""), None);
        let list = b"arm,pl011\0arm,primecell\0";
        assert!(stringlist_contains(list, "arm,primecell"));
        assert!(!stringlist_contains(list, "arm,pl01"));
        assert_eq!(stringlist(b"a\0\xff\0b\0").count(), 1);
        assert_eq!(stringlist(b"no-nul").count(), 0);
    }

    #[test]
    fn as_u32_wants_one_cell() {
        assert_eq!(as_u32(&[0, 0, 0, 3]), Some(3));
        assert_eq!(as_u32(&[0, 0, 3]), None);
        assert_eq!(as_u32(&[0, 0, 0, 0, 0, 0, 0, 3]), None);
    }
}
