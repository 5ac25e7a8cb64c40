//! Who owns which physical memory: the image, the device tree the loader
//! handed over, reserved regions, and the hypervisor heap carved from RAM.

use boards::Platform;

extern "C" {
    static __image_start: u8;
    static __rodata_start: u8;
    static __data_start: u8;
    static __image_end: u8;
}

/// A physical range `[start, end)`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl defmt::Format for Range {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=u64:#x}..{=u64:#x}", self.start, self.end)
    }
}

impl Range {
    fn overlaps(&self, other: &Range) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// The image's sections, for the W^X map.
#[derive(Clone, Copy, defmt::Format)]
pub struct ImageLayout {
    /// Code: read-only, executable.
    pub text: Range,
    /// Constants: read-only.
    pub rodata: Range,
    /// Data, .bss, stacks: read-write.
    pub data: Range,
}

/// The image as linked.
pub fn image() -> ImageLayout {
    // SAFETY: linker-script symbols; only their addresses are taken.
    let (s, r, d, e) = unsafe {
        (
            &__image_start as *const u8 as u64,
            &__rodata_start as *const u8 as u64,
            &__data_start as *const u8 as u64,
            &__image_end as *const u8 as u64,
        )
    };
    ImageLayout {
        text: Range { start: s, end: r },
        rodata: Range { start: r, end: d },
        data: Range { start: d, end: e },
    }
}

/// Bytes of heap the hypervisor takes.
pub const HEAP_SIZE: u64 = 16 << 20;

/// Why no heap could be placed.
#[derive(Clone, Copy, defmt::Format)]
pub struct NoRoomForHeap;

/// Places the heap: the first 2 MiB-aligned stretch of RAM after the image
/// that overlaps neither the DT blob nor any reserved region.
pub fn place_heap(platform: &Platform<'_>, dtb: Range) -> Result<Range, NoRoomForHeap> {
    let img = image();
    let image = Range { start: img.text.start, end: img.data.end };
    let align = 2 << 20;
    for ram in platform.memory.iter() {
        let Some(ram_end) = ram.end() else { continue };
        let mut start = ram.base.max(image.end).next_multiple_of(align);
        while start.checked_add(HEAP_SIZE).is_some_and(|e| e <= ram_end) {
            let cand = Range { start, end: start + HEAP_SIZE };
            let blocker = core::iter::once(dtb)
                .chain(core::iter::once(image))
                .chain(
                    platform
                        .reserved
                        .iter()
                        .map(|r| Range { start: r.base, end: r.base.saturating_add(r.size) }),
                )
                .find(|r| r.overlaps(&cand));
            match blocker {
                None => return Ok(cand),
                Some(b) => start = b.end.next_multiple_of(align),
            }
        }
    }
    Err(NoRoomForHeap)
}
