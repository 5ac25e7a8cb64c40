//! The file as serde reads it: every value kept with its span, most keys
//! optional so that a missing one is reported beside the others instead of
//! ending the parse, and unknown keys refused.

use super::alloc::{string::String, vec::Vec};
use core::fmt;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;

/// A number written as a TOML integer or as a string (`"64M"`, `"0x1000"`),
/// parsed later so a bad one is one error among others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Num {
    /// A TOML integer (TOML integers are signed 64-bit).
    Int(i64),
    /// A string.
    Text(String),
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string such as \"64M\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
                Ok(Num::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
                i64::try_from(v).map(Num::Int).map_err(|_| E::custom("integer out of range"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Num, E> {
                Ok(Num::Text(v.into()))
            }
        }
        d.deserialize_any(V)
    }
}

/// `[[partition]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPartition {
    pub name: Option<Spanned<String>>,
    pub cpus: Option<Spanned<Vec<Spanned<i64>>>>,
    pub kernel: Option<Spanned<String>>,
    pub initramfs: Option<Spanned<String>>,
    pub bootargs: Option<Spanned<String>>,
    pub console: Option<Spanned<String>>,
    pub fault_policy: Option<Spanned<String>>,
    #[serde(default)]
    pub memory: Vec<Spanned<RawMemory>>,
    #[serde(default)]
    pub device: Vec<Spanned<RawDevice>>,
}

/// `[[partition.memory]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMemory {
    pub guest: Option<Spanned<Num>>,
    pub host: Option<Spanned<Num>>,
    pub size: Option<Spanned<Num>>,
}

/// `[[partition.device]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDevice {
    pub name: Option<Spanned<String>>,
    pub pci: Option<Spanned<String>>,
    pub mmio: Option<Spanned<Vec<Spanned<RawMmio>>>>,
    pub irqs: Option<Spanned<Vec<Spanned<i64>>>>,
    pub dma: Option<Spanned<bool>>,
    pub bounce: Option<Spanned<bool>>,
    pub uart: Option<Spanned<String>>,
}

/// One `mmio = [{ base, size }]` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMmio {
    pub base: Option<Spanned<Num>>,
    pub size: Option<Spanned<Num>>,
}
