//! `/chosen` (DT spec §3.6) and `/aliases` (§3.3): the command line, the
//! console and the initramfs. The initrd region itself is checked with RAM
//! (see `memory`).

use super::check;
use super::error::GuestDtError;
use super::spec::Chosen;
use super::writer::Writer;

pub(super) fn check(chosen: &Chosen<'_>) -> Result<(), GuestDtError> {
    if let Some(bootargs) = chosen.bootargs {
        check::text("bootargs", bootargs)?;
    }
    Ok(())
}

/// `stdout` is the console's node path, if there is a console. With a PCIe
/// host, `linux,pci-probe-only` tells the guest to keep the BARs the
/// hypervisor assigned (its configuration space cannot move them).
pub(super) fn write(
    w: &mut Writer,
    chosen: &Chosen<'_>,
    stdout: Option<&str>,
    pci: bool,
) -> Result<(), GuestDtError> {
    w.node("chosen", |w| {
        if let Some(bootargs) = chosen.bootargs {
            w.string("bootargs", bootargs)?;
        }
        if let Some(path) = stdout {
            w.string("stdout-path", path)?;
        }
        if let Some(initrd) = &chosen.initrd {
            // Checked not to wrap.
            let end = initrd.base.saturating_add(initrd.size);
            w.u64("linux,initrd-start", initrd.base)?;
            w.u64("linux,initrd-end", end)?;
        }
        if pci {
            w.u32("linux,pci-probe-only", 1)?;
        }
        Ok(())
    })?;
    if let Some(path) = stdout {
        // `serial0` makes the console ttyAMA0 whatever else the guest finds.
        w.node("aliases", |w| w.string("serial0", path))?;
    }
    Ok(())
}
