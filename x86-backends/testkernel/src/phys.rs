//! Physical memory, as the boot stub mapped it: identity for the first
//! 4 GiB. Raw pointers from physical addresses are made here only.

/// The end of the identity map (exclusive).
pub const MAPPED_END: u64 = 1 << 32;

/// The bytes at physical `[pa, pa + len)`, or `None` if the range is not
/// identity mapped (or starts at 0, which is no valid reference).
///
/// # Safety
///
/// The range is memory (RAM or ROM, not MMIO) that nothing writes while the
/// slice is alive: firmware tables, the boot command line.
pub unsafe fn bytes(pa: u64, len: usize) -> Option<&'static [u8]> {
    let end = pa.checked_add(len as u64)?;
    if pa == 0 || end > MAPPED_END {
        return None;
    }
    // SAFETY: mapped (checked above), non-null, and immutable for 'static
    // per the contract; u8 needs no alignment.
    Some(unsafe { core::slice::from_raw_parts(pa as usize as *const u8, len) })
}

/// The NUL-terminated string at `pa`, at most `max` bytes long, if it is
/// mapped, terminated within `max` and UTF-8.
///
/// # Safety
///
/// As for [`bytes`], for every byte up to the terminator or `max`.
pub unsafe fn c_str(pa: u64, max: usize) -> Option<&'static str> {
    let mut len = 0;
    loop {
        // SAFETY: per the contract, one byte at a time so that a string
        // near the end of the map is not overread.
        let b = unsafe { bytes(pa + len as u64, 1) }?;
        if b[0] == 0 {
            break;
        }
        len += 1;
        if len == max {
            return None;
        }
    }
    // SAFETY: the `len` bytes just read one by one, under the same contract.
    let s = unsafe { bytes(pa, len) }.unwrap_or(&[]);
    core::str::from_utf8(s).ok()
}
