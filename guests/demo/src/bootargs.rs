//! The `key=value` words of `/chosen/bootargs`.

/// The value of the first `key=value` word, if any.
pub fn get<'a>(bootargs: &'a str, key: &str) -> Option<&'a str> {
    bootargs.split_ascii_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// A number in hex (`0x` prefix) or decimal.
pub fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Whether the bare word `flag` (no `=value`) is present.
pub fn has(bootargs: &str, flag: &str) -> bool {
    bootargs.split_ascii_whitespace().any(|w| w == flag)
}
