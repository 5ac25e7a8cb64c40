//! A trapped guest data access, decoded from ESR_EL2's ISS (Arm ARM D24.2.40,
//! "ISS encoding for an exception from a Data Abort").

/// One guest load or store to an emulated address.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
pub struct Access {
    /// Guest-physical address (HPFAR_EL2 page + FAR_EL2 offset).
    pub ipa: u64,
    /// Bytes: 1, 2, 4 or 8 (ISS.SAS).
    pub size: u8,
    /// A store (ISS.WnR).
    pub write: bool,
    /// The general-purpose register (ISS.SRT); 31 is the zero register.
    pub reg: u8,
    /// A load sign-extends (ISS.SSE).
    pub sign_extend: bool,
    /// The register is 64-bit (ISS.SF), else the load zero-extends to 32.
    pub sixty_four: bool,
}

/// Why a trapped access cannot be emulated.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum DecodeError {
    /// ISS.ISV = 0: the instruction is not a single load or store of one
    /// register (e.g. a pair or a post-indexed access), so the hardware gave
    /// no syndrome to emulate it from.
    NoSyndrome,
}

impl Access {
    /// Decodes a data abort's ISS for the access at `ipa`.
    pub fn decode(iss: u64, ipa: u64) -> Result<Self, DecodeError> {
        if iss & (1 << 24) == 0 {
            return Err(DecodeError::NoSyndrome);
        }
        Ok(Self {
            ipa,
            size: 1 << ((iss >> 22) & 3),
            write: iss & (1 << 6) != 0,
            reg: ((iss >> 16) & 0x1f) as u8,
            sign_extend: iss & (1 << 21) != 0,
            sixty_four: iss & (1 << 15) != 0,
        })
    }

    /// The value a store writes, from the saved registers.
    pub fn store_value(&self, x: &[u64; 31]) -> u64 {
        let v = x.get(usize::from(self.reg)).copied().unwrap_or(0);
        v & self.mask()
    }

    /// Puts a load's result into the saved registers, extended as the
    /// instruction would.
    pub fn complete_load(&self, x: &mut [u64; 31], value: u64) {
        let Some(r) = x.get_mut(usize::from(self.reg)) else { return };
        let bits = u32::from(self.size) * 8;
        let mut v = value & self.mask();
        if self.sign_extend && bits < 64 && v >> (bits - 1) & 1 != 0 {
            v |= !self.mask();
        }
        if !self.sixty_four {
            v &= 0xffff_ffff;
        }
        *r = v;
    }

    fn mask(&self) -> u64 {
        match self.size {
            8 => u64::MAX,
            s => (1u64 << (u32::from(s) * 8)) - 1,
        }
    }
}
