//! The deterministic 64-bit patterns the roles write and look for.
//!
//! A word's value is derived from its byte offset inside the pattern region,
//! not from its absolute address: the victim knows its region by guest
//! address, the DMA owner only by the victim's physical address, and the
//! offset is the same in both spaces. Each kind has its own seed, so a
//! victim word, a DMA owner word and a sentinel are never confused.

/// The victim's pattern.
const VICTIM_SEED: u64 = 0x7669_6374_696d_0001; // "victim"
/// What the DMA owner writes (inside its RAM and into the peer).
const OWNER_SEED: u64 = 0x6f77_6e65_7200_0002; // "owner"
/// What the DMA owner leaves in edu's buffer before reading the peer.
const SENTINEL_SEED: u64 = 0x7365_6e74_696e_0003; // "sentin"
/// What the guard pages around the DMA destination hold.
pub const GUARD: u64 = 0xa5a5_a5a5_a5a5_a5a5;

/// SplitMix64's finaliser: a bijective mix, so distinct offsets give
/// distinct words.
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The victim's word at byte offset `off` of its pattern region.
pub const fn victim(off: u64) -> u64 {
    mix(VICTIM_SEED ^ off)
}

/// The DMA owner's word at byte offset `off`.
pub const fn owner(off: u64) -> u64 {
    mix(OWNER_SEED ^ off)
}

/// The sentinel word at byte offset `off`.
pub const fn sentinel(off: u64) -> u64 {
    mix(SENTINEL_SEED ^ off)
}
