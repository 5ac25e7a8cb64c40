//! The configuration and guest images built into this image (see
//! `hypervisor/build.rs`).

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// The embedded image the configuration calls `name` (`builtin:<guest>` or
/// the path as written).
pub fn image(name: &str) -> Option<&'static [u8]> {
    IMAGES.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}
