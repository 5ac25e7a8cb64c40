//! The arm64 `Image` header (Linux `Documentation/arch/arm64/booting.rst`):
//! where a kernel wants to sit above a 2 MiB-aligned base and how much
//! memory it needs there, including its .bss.

/// The header, as the loader uses it.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
pub struct ImageHeader {
    /// Offset from a 2 MiB-aligned base at which the image must be placed.
    pub text_offset: u64,
    /// Bytes the image occupies from there, .bss included (0 in old
    /// kernels: then the file size, plus a generous margin).
    pub image_size: u64,
}

/// Why an image was refused.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum ImageError {
    /// Shorter than the 64-byte header.
    TooShort,
    /// No "ARM\x64" magic at offset 0x38.
    BadMagic,
    /// Flags bit 0: a big-endian kernel.
    BigEndian,
    /// text_offset or image_size out of any sensible range.
    BadGeometry,
}

const MAGIC: u32 = 0x644d_5241;

fn le64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

impl ImageHeader {
    /// Reads the header at the start of `image`.
    pub fn parse(image: &[u8]) -> Result<Self, ImageError> {
        if image.len() < 64 {
            return Err(ImageError::TooShort);
        }
        let magic = u32::from_le_bytes([image[0x38], image[0x39], image[0x3a], image[0x3b]]);
        if magic != MAGIC {
            return Err(ImageError::BadMagic);
        }
        let text_offset = le64(image, 8);
        let image_size = le64(image, 16);
        let flags = le64(image, 24);
        if flags & 1 != 0 {
            return Err(ImageError::BigEndian);
        }
        if text_offset >= 2 << 20 || text_offset % 4096 != 0 || image_size > 1 << 32 {
            return Err(ImageError::BadGeometry);
        }
        let image_size = if image_size == 0 { image.len() as u64 + (1 << 20) } else { image_size };
        Ok(Self { text_offset, image_size: image_size.max(image.len() as u64) })
    }
}
