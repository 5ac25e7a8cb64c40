//! Interrupt remapping table entries (48882 2.2.5): the 32-bit basic
//! format, and the 128-bit format used with GAEn or XTEn (x2APIC, 32-bit
//! destinations). The table is indexed by MSI data `[10:0]`.
//!
//! 32-bit: RemapEn `[0]`, SupIOPF `[1]`, IntType `[4:2]`, RqEoi `[5]`, DM
//! `[6]`, GuestMode `[7]` (0 here), Destination `[15:8]`, Vector `[23:16]`.
//! 128-bit (GuestMode=0): the same low bits, Destination`[23:0]` at `[31:8]`,
//! Vector at `[71:64]`, Destination`[31:24]` at `[127:120]`.

use core::fmt;

/// IntType: delivery of a remapped interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntType {
    /// 000b: fixed.
    Fixed,
    /// 001b: arbitrated (lowest priority).
    Arbitrated,
    /// Other encodings (not remappable through the table; kept raw).
    Other(u8),
}

impl IntType {
    const fn field(self) -> u64 {
        match self {
            Self::Fixed => 0,
            Self::Arbitrated => 1,
            Self::Other(v) => (v & 7) as u64,
        }
    }

    const fn from_field(v: u64) -> Self {
        match v & 7 {
            0 => Self::Fixed,
            1 => Self::Arbitrated,
            v => Self::Other(v as u8),
        }
    }
}

/// A remapped interrupt (the fields both formats share).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Irte {
    /// RemapEn: the entry is valid (0: the interrupt is target-aborted).
    pub remap_en: bool,
    /// SupIOPF: suppress the IO_PAGE_FAULT for a RemapEn=0 entry.
    pub sup_iopf: bool,
    /// IntType.
    pub int_type: IntType,
    /// RqEoi: request an EOI.
    pub rq_eoi: bool,
    /// DM: destination mode (1 logical).
    pub dm: bool,
    /// Destination APIC ID (8 bits in the 32-bit format, 32 in the 128-bit one).
    pub destination: u32,
    /// Vector.
    pub vector: u8,
}

/// Why an IRTE was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrteError {
    /// The destination does not fit the 32-bit format's 8 bits.
    DestinationTooWide(u32),
    /// GuestMode = 1 (guest virtual APIC entries are not modelled).
    GuestMode,
    /// Reserved bits set.
    Reserved(u64),
}

impl fmt::Display for IrteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DestinationTooWide(d) => write!(f, "IRTE: destination {d:#x} needs the 128-bit format"),
            Self::GuestMode => f.write_str("IRTE: GuestMode entries are not supported"),
            Self::Reserved(b) => write!(f, "IRTE: reserved bits {b:#x} set"),
        }
    }
}

impl Irte {
    /// A valid fixed interrupt to `destination` (physical mode), `vector`.
    pub const fn fixed(destination: u32, vector: u8) -> Self {
        Self {
            remap_en: true,
            sup_iopf: false,
            int_type: IntType::Fixed,
            rq_eoi: false,
            dm: false,
            destination,
            vector,
        }
    }

    /// An invalid entry (RemapEn=0): the interrupt is aborted and logged.
    pub const fn blocked() -> Self {
        Self { remap_en: false, ..Self::fixed(0, 0) }
    }

    const fn low_bits(&self) -> u64 {
        (self.remap_en as u64)
            | ((self.sup_iopf as u64) << 1)
            | (self.int_type.field() << 2)
            | ((self.rq_eoi as u64) << 5)
            | ((self.dm as u64) << 6)
    }

    /// The 32-bit format.
    pub const fn encode32(&self) -> Result<u32, IrteError> {
        if self.destination > 0xff {
            return Err(IrteError::DestinationTooWide(self.destination));
        }
        Ok((self.low_bits() as u32) | (self.destination << 8) | ((self.vector as u32) << 16))
    }

    /// Parses the 32-bit format.
    pub const fn decode32(v: u32) -> Result<Self, IrteError> {
        if v & (1 << 7) != 0 {
            return Err(IrteError::GuestMode);
        }
        if v >> 24 != 0 {
            return Err(IrteError::Reserved((v & 0xff00_0000) as u64));
        }
        Ok(Self::from_low(v as u64, (v >> 8) & 0xff, (v >> 16) as u8))
    }

    const fn from_low(v: u64, destination: u32, vector: u8) -> Self {
        Self {
            remap_en: v & 1 != 0,
            sup_iopf: v & 2 != 0,
            int_type: IntType::from_field(v >> 2),
            rq_eoi: v & (1 << 5) != 0,
            dm: v & (1 << 6) != 0,
            destination,
            vector,
        }
    }

    /// The 128-bit format (GuestMode = 0): words `[63:0]`, `[127:64]`.
    pub const fn encode128(&self) -> [u64; 2] {
        [
            self.low_bits() | (((self.destination & 0xff_ffff) as u64) << 8),
            (self.vector as u64) | (((self.destination >> 24) as u64) << 56),
        ]
    }

    /// Parses the 128-bit format; GuestMode=1 entries are refused.
    pub const fn decode128(w: [u64; 2]) -> Result<Self, IrteError> {
        if w[0] & (1 << 7) != 0 {
            return Err(IrteError::GuestMode);
        }
        let rsvd0 = w[0] & !0xffff_ff7f;
        let rsvd1 = w[1] & 0x00ff_ffff_ffff_ff00;
        if rsvd0 != 0 || rsvd1 != 0 {
            return Err(IrteError::Reserved(rsvd0 | rsvd1));
        }
        let dest = (((w[0] >> 8) & 0xff_ffff) | ((w[1] >> 56) << 24)) as u32;
        Ok(Self::from_low(w[0], dest, w[1] as u8))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Bit positions from the IRTE figures (2.2.5).

    #[test]
    fn basic_format() {
        // RemapEn [0], Destination [15:8], Vector [23:16].
        assert_eq!(Irte::fixed(0x12, 0x34).encode32(), Ok(1 | (0x12 << 8) | (0x34 << 16)));
        // SupIOPF [1], IntType [4:2] = 001b, RqEoi [5], DM [6].
        let mut e = Irte::fixed(1, 0x40);
        e.sup_iopf = true;
        e.int_type = IntType::Arbitrated;
        e.rq_eoi = true;
        e.dm = true;
        assert_eq!(e.encode32(), Ok(1 | 2 | (1 << 2) | (1 << 5) | (1 << 6) | (1 << 8) | (0x40 << 16)));
        assert_eq!(Irte::decode32(e.encode32().unwrap()), Ok(e));
        assert_eq!(Irte::blocked().encode32(), Ok(0));
        assert_eq!(Irte::fixed(0x100, 0).encode32(), Err(IrteError::DestinationTooWide(0x100)));
        assert_eq!(Irte::decode32(1 << 7), Err(IrteError::GuestMode));
        assert_eq!(Irte::decode32(1 << 24), Err(IrteError::Reserved(1 << 24)));
    }

    #[test]
    fn x2apic_format() {
        // Destination[23:0] [31:8], Vector [71:64], Destination[31:24] [127:120].
        let e = Irte::fixed(0xaabb_ccdd, 0xef);
        assert_eq!(e.encode128(), [1 | (0xbb_ccdd << 8), 0xef | (0xaa << 56)]);
        assert_eq!(Irte::decode128(e.encode128()), Ok(e));
        assert_eq!(Irte::decode128([1 << 7, 0]), Err(IrteError::GuestMode));
        assert_eq!(Irte::decode128([1 << 32, 0]), Err(IrteError::Reserved(1 << 32)));
        assert_eq!(Irte::decode128([0, 1 << 8]), Err(IrteError::Reserved(1 << 8)));
    }

    proptest! {
        #[test]
        fn round_trips(dest: u32, vector: u8, bits in 0u64..128) {
            let mut e = Irte::fixed(dest, vector);
            e.remap_en = bits & 1 != 0;
            e.sup_iopf = bits & 2 != 0;
            e.int_type = IntType::from_field(bits >> 2);
            e.rq_eoi = bits & 32 != 0;
            e.dm = bits & 64 != 0;
            prop_assert_eq!(Irte::decode128(e.encode128()), Ok(e));
            if dest <= 0xff {
                prop_assert_eq!(Irte::decode32(e.encode32().unwrap()), Ok(e));
            }
        }
    }
}
