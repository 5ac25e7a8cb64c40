//! Host side of the defmt pipeline: rzcobs-framed defmt frames from the UART,
//! decoded with `defmt-decoder` against the ELF into readable lines.

use anyhow::{anyhow, Context, Result};
use defmt_decoder::{DecodeError, Locations, Table};
use std::{fs, path::Path};

/// Decodes one image's log stream.
pub struct LogDecoder {
    table: &'static Table,
    locations: Locations,
    stream: Box<dyn defmt_decoder::StreamDecoder + Send + Sync + 'static>,
    malformed: usize,
}

/// One decoded log line.
#[derive(Clone, Debug)]
pub struct LogLine {
    /// The formatted message.
    pub message: String,
    /// The full line as printed.
    pub text: String,
}

impl LogDecoder {
    /// Loads the defmt table from `elf`.
    pub fn new(elf: &Path) -> Result<Self> {
        let bytes = fs::read(elf).with_context(|| format!("reading {}", elf.display()))?;
        let table = Table::parse(&bytes)?.ok_or_else(|| anyhow!("{} has no defmt data", elf.display()))?;
        let locations = table.get_locations(&bytes)?;
        // The decoder borrows the table for as long as the run lasts; a run is
        // one process lifetime of xtask at most, so leaking it is harmless.
        let table: &'static Table = Box::leak(Box::new(table));
        Ok(Self { table, locations, stream: table.new_stream_decoder(), malformed: 0 })
    }

    /// Frames that could not be decoded so far.
    pub fn malformed(&self) -> usize {
        self.malformed
    }

    /// Feeds bytes from the UART; returns the lines completed by them.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<LogLine> {
        self.stream.received(bytes);
        let mut lines = Vec::new();
        loop {
            match self.stream.decode() {
                Ok(frame) => {
                    let level =
                        frame.level().map(|l| l.as_str().to_uppercase()).unwrap_or_else(|| "PRINT".into());
                    let message = frame.display_message().to_string();
                    let ts = frame.display_timestamp().map(|t| t.to_string()).unwrap_or_default();
                    let module =
                        self.locations.get(&frame.index()).map(|l| module_of(&l.file)).unwrap_or_default();
                    let text = format!("{ts:>10} {level:<5} {module}: {message}");
                    lines.push(LogLine { message, text });
                }
                Err(DecodeError::UnexpectedEof) => break,
                Err(DecodeError::Malformed) => {
                    self.malformed += 1;
                    if !self.table.encoding().can_recover() {
                        break;
                    }
                }
            }
        }
        lines
    }
}

/// A readable module name from a source path: `.../hypervisor/src/arch/mmu.rs`
/// gives `arch::mmu`, `.../boards/src/dt.rs` gives `boards::dt` (the
/// hypervisor's own crate name is left out).
fn module_of(file: &Path) -> String {
    let s = file.to_string_lossy();
    let Some(at) = s.rfind("/src/") else {
        return s.into_owned();
    };
    let krate = s[..at].rsplit('/').next().unwrap_or_default();
    let rel = s[at + 5..].trim_end_matches(".rs");
    let rel =
        rel.trim_end_matches("/mod").trim_end_matches("main").trim_end_matches("lib").trim_end_matches('/');
    let path = rel.replace('/', "::");
    match (krate, path.is_empty()) {
        ("hypervisor", true) => "main".into(),
        ("hypervisor", false) => path,
        (k, true) => k.into(),
        (k, false) => format!("{k}::{path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::module_of;
    use std::path::Path;

    #[test]
    fn module_names_from_paths() {
        assert_eq!(module_of(Path::new("/w/hypervisor/src/arch/mmu.rs")), "arch::mmu");
        assert_eq!(module_of(Path::new("/w/hypervisor/src/main.rs")), "main");
        assert_eq!(module_of(Path::new("/w/hypervisor/src/selftest/mod.rs")), "selftest");
        assert_eq!(module_of(Path::new("/w/boards/src/dt.rs")), "boards::dt");
        assert_eq!(module_of(Path::new("/w/smmu/src/lib.rs")), "smmu");
    }
}
