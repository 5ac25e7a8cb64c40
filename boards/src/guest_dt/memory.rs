//! RAM (`/memory@...`, DT spec §3.4) and the parts of it the guest must not
//! use (`/reserved-memory`, §3.5).

use super::check::{self, AddressMap};
use super::error::GuestDtError;
use super::spec::{GuestDt, Reserved};
use super::writer::{Writer, ROOT_CELLS};
use crate::platform::Region;

/// Checks `memory` and `reserved`; adds RAM to the address map.
pub(super) fn check(spec: &GuestDt<'_>, map: &mut AddressMap) -> Result<(), GuestDtError> {
    if spec.memory.is_empty() {
        return Err(GuestDtError::NoMemory);
    }
    for r in spec.memory {
        check::region("memory", r)?;
        map.add("memory", *r);
    }
    // Reserved regions are carved out of RAM, so they are checked against
    // each other (and the initrd, see `chosen`), not against RAM.
    let mut carved = AddressMap::default();
    for Reserved { name, region } in spec.reserved {
        check::node_name("reserved-memory name", name)?;
        check::region("reserved-memory", region)?;
        check::inside_memory("reserved-memory", region, spec.memory)?;
        carved.add("reserved-memory", *region);
    }
    if let Some(initrd) = &spec.chosen.initrd {
        check::region("initrd", initrd)?;
        check::inside_memory("initrd", initrd, spec.memory)?;
        carved.add("initrd", *initrd);
    }
    carved.check()
}

pub(super) fn write(w: &mut Writer, memory: &[Region]) -> Result<(), GuestDtError> {
    for r in memory {
        w.node_at("memory", r.base, |w| {
            w.string("device_type", "memory")?;
            w.reg(core::slice::from_ref(r))
        })?;
    }
    Ok(())
}

/// `/reserved-memory` with one `no-map` child per entry (nothing if none).
pub(super) fn write_reserved(w: &mut Writer, reserved: &[Reserved<'_>]) -> Result<(), GuestDtError> {
    if reserved.is_empty() {
        return Ok(());
    }
    w.node("reserved-memory", |w| {
        w.u32("#address-cells", ROOT_CELLS)?;
        w.u32("#size-cells", ROOT_CELLS)?;
        w.empty("ranges")?;
        for r in reserved {
            w.node_at(r.name, r.region.base, |w| {
                w.reg(core::slice::from_ref(&r.region))?;
                w.empty("no-map")
            })?;
        }
        Ok(())
    })
}
