//! The rules a configuration must keep, on the typed model, so they hold for
//! a configuration built in code as much as for a parsed one (which adds
//! line numbers). Each rule is one function; each error names the partition
//! or device, the offending value, and the board fact it contradicts.

use super::alloc::{collections::BTreeMap, format, string::String, vec::Vec};
use super::error::{ErrorKind, Sink, Span};
use super::model::{iommu_group_of, Config, Console, DeviceKind, KernelSource, Partition};
use super::source::{DevSpans, MemSpans, PartSpans};
use crate::platform::Region;
use core::ops::Range;

/// Stage-2 and SMMU page size: memory and MMIO are given out in these.
pub const PAGE: u64 = 0x1000;

/// Longest `bootargs` (Linux arm64 `COMMAND_LINE_SIZE` is 2048 with the NUL).
pub const MAX_BOOTARGS: usize = 2047;

/// Lowest and highest SPI INTID (GICv3 §2.2.1).
pub const SPI_INTIDS: core::ops::RangeInclusive<u32> = 32..=1019;

struct V<'a, 's> {
    cfg: &'a Config,
    sink: &'a mut Sink<'s>,
}

pub(crate) fn validate(cfg: &Config, sink: &mut Sink<'_>) {
    let mut v = V { cfg, sink };
    if cfg.partitions.is_empty() && cfg.source.is_none() {
        v.sink.push(
            ErrorKind::NoPartitions,
            None,
            "no partitions: a configuration needs at least one".into(),
        );
    }
    for (i, p) in cfg.partitions.iter().enumerate() {
        v.names(i, p);
        v.cpus_of(i, p);
        v.kernel(i, p);
        v.memory_of(i, p);
        v.console(i, p);
        v.device_values(i, p);
    }
    v.unique_names();
    v.cpus_shared();
    v.host_overlaps();
    v.pci_owners();
    v.mmio_overlaps();
    v.irqs();
    v.dma();
}

fn ranges_overlap(a: &Range<u64>, b: &Range<u64>) -> bool {
    a.start < b.end && b.start < a.end
}

fn round_out(r: &Region) -> Option<Range<u64>> {
    let end = r.base.checked_add(r.size)?.checked_next_multiple_of(PAGE)?;
    Some(r.base & !(PAGE - 1)..end)
}

fn valid_name(s: &str) -> bool {
    (1..=31).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl V<'_, '_> {
    fn part(&self, i: usize) -> Option<&PartSpans> {
        self.cfg.source.as_ref().and_then(|s| s.parts.get(i))
    }

    fn mem(&self, i: usize, j: usize) -> Option<&MemSpans> {
        self.part(i).and_then(|p| p.memory.get(j))
    }

    fn dev(&self, i: usize, j: usize) -> Option<&DevSpans> {
        self.part(i).and_then(|p| p.devices.get(j))
    }

    /// `(on line N)` for a span, when the configuration has text.
    fn line_note(&self, span: Option<&Span>) -> String {
        match (self.cfg.source.as_ref(), span) {
            (Some(s), Some(sp)) => format!(" (line {})", s.lines.locate(sp.start).line),
            _ => String::new(),
        }
    }

    fn push(&mut self, kind: ErrorKind, span: Option<Span>, msg: String) {
        self.sink.push(kind, span.as_ref(), msg);
    }

    fn who(&self, i: usize) -> String {
        match self.cfg.partitions.get(i) {
            Some(p) if !p.name.is_empty() => format!("partition \"{}\"", p.name),
            _ => format!("partition #{}", i + 1),
        }
    }

    /// Whether a parsed configuration left this key out (already reported).
    fn absent(&self, i: usize, key: impl Fn(&PartSpans) -> bool) -> bool {
        self.part(i).is_some_and(|p| !key(p))
    }

    fn names(&mut self, i: usize, p: &Partition) {
        if !self.absent(i, |s| s.name.is_some()) && !valid_name(&p.name) {
            let span = self.part(i).and_then(|s| s.name.clone());
            self.push(
                ErrorKind::BadName,
                span,
                format!("partition name \"{}\" must be 1 to 31 characters of a-z, 0-9 and '-'", p.name),
            );
        }
        for (j, d) in p.devices.iter().enumerate() {
            if !d.name.is_empty() && !valid_name(&d.name) {
                let span = self.dev(i, j).and_then(|s| s.name.clone());
                self.push(
                    ErrorKind::BadName,
                    span,
                    format!("device name \"{}\" must be 1 to 31 characters of a-z, 0-9 and '-'", d.name),
                );
            }
        }
    }

    fn unique_names(&mut self) {
        let mut parts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut devs: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        let cfg = self.cfg;
        for (i, p) in cfg.partitions.iter().enumerate() {
            if !p.name.is_empty() {
                if let Some(&first) = parts.get(p.name.as_str()) {
                    let first_span = self.part(first).and_then(|s| s.name.clone());
                    let note = self.line_note(first_span.as_ref());
                    let span = self.part(i).and_then(|s| s.name.clone());
                    self.push(
                        ErrorKind::DuplicateName,
                        span,
                        format!("partition name \"{}\" is already used{note}", p.name),
                    );
                } else {
                    parts.insert(&p.name, i);
                }
            }
            for (j, d) in p.devices.iter().enumerate() {
                if d.name.is_empty() {
                    continue;
                }
                if let Some(&(fi, fj)) = devs.get(d.name.as_str()) {
                    let first_span = self.dev(fi, fj).and_then(|s| s.name.clone());
                    let note = self.line_note(first_span.as_ref());
                    let span = self.dev(i, j).and_then(|s| s.name.clone());
                    self.push(
                        ErrorKind::DuplicateName,
                        span,
                        format!(
                            "device name \"{}\" is already used by {}{note}; device names are unique across the configuration",
                            d.name,
                            self.who(fi)
                        ),
                    );
                } else {
                    devs.insert(&d.name, (i, j));
                }
            }
        }
    }

    fn cpus_of(&mut self, i: usize, p: &Partition) {
        let who = self.who(i);
        let board = self.cfg.board;
        if p.cpus.is_empty() && !self.absent(i, |s| s.cpus.is_some() && !s.cpus_dropped) {
            let span = self.part(i).map(|s| s.cpus.clone().unwrap_or_else(|| s.table.clone()));
            self.push(
                ErrorKind::NoCpus,
                span,
                format!("{who} has no CPUs: give it at least one, e.g. cpus = [0]"),
            );
        }
        for (k, &c) in p.cpus.iter().enumerate() {
            if c >= board.cpus {
                let span = self.part(i).and_then(|s| s.cpu.get(k).cloned());
                self.push(
                    ErrorKind::CpuOutOfRange,
                    span,
                    format!(
                        "{who}: CPU {c} does not exist: board {} has CPUs 0..={}",
                        board.name,
                        board.cpus.saturating_sub(1)
                    ),
                );
            }
        }
    }

    fn cpus_shared(&mut self) {
        let mut owner: BTreeMap<u32, (usize, usize)> = BTreeMap::new();
        let cfg = self.cfg;
        for (i, p) in cfg.partitions.iter().enumerate() {
            for (k, &c) in p.cpus.iter().enumerate() {
                match owner.get(&c) {
                    None => {
                        owner.insert(c, (i, k));
                    }
                    Some(&(fi, fk)) => {
                        let span = self.part(i).and_then(|s| s.cpu.get(k).cloned());
                        let first = self.part(fi).and_then(|s| s.cpu.get(fk).cloned());
                        let note = self.line_note(first.as_ref());
                        let msg = if fi == i {
                            format!("{}: CPU {c} is listed twice", self.who(i))
                        } else {
                            format!(
                                "CPU {c} is given to {} and already to {}{note}: a CPU belongs to one partition",
                                self.who(i),
                                self.who(fi)
                            )
                        };
                        self.push(ErrorKind::CpuShared, span, msg);
                    }
                }
            }
        }
    }

    fn kernel(&mut self, i: usize, p: &Partition) {
        let who = self.who(i);
        let span = self.part(i).and_then(|s| s.kernel.clone());
        if !self.absent(i, |s| s.kernel.is_some()) {
            match &p.kernel {
                KernelSource::Builtin(b) if !valid_builtin(b) => {
                    self.push(
                        ErrorKind::BadValue,
                        span,
                        format!("{who}: kernel \"builtin:{b}\" does not name a built-in guest (letters, digits, '-', '_')"),
                    );
                }
                KernelSource::Path(path) if path.is_empty() => {
                    self.push(ErrorKind::BadValue, span, format!("{who}: kernel path is empty"));
                }
                _ => {}
            }
        }
        if p.initramfs.as_deref() == Some("") {
            let span = self.part(i).and_then(|s| s.initramfs.clone());
            self.push(ErrorKind::BadValue, span, format!("{who}: initramfs path is empty"));
        }
        if let Some(args) = &p.bootargs {
            if args.len() > MAX_BOOTARGS || args.contains('\0') {
                let span = self.part(i).and_then(|s| s.bootargs.clone());
                self.push(
                    ErrorKind::BadValue,
                    span,
                    format!(
                        "{who}: bootargs must be at most {MAX_BOOTARGS} bytes without NUL ({} bytes given)",
                        args.len()
                    ),
                );
            }
        }
    }

    fn memory_of(&mut self, i: usize, p: &Partition) {
        let who = self.who(i);
        let board = self.cfg.board;
        if p.memory.is_empty() && !self.part(i).is_some_and(|s| s.memory_dropped) {
            let span = self.part(i).map(|s| s.table.clone());
            self.push(
                ErrorKind::NoMemory,
                span,
                format!("{who} has no memory: add a [[partition.memory]] with host and size"),
            );
        }
        let mut good: Vec<(usize, Range<u64>)> = Vec::new();
        for (j, m) in p.memory.iter().enumerate() {
            let sp = self.mem(i, j).cloned();
            let table = sp.as_ref().map(|s| s.table.clone());
            let at =
                |f: fn(&MemSpans) -> Option<Span>| sp.as_ref().and_then(|s| f(s).or(Some(s.table.clone())));
            let mut ok = true;
            if m.size == 0 {
                self.push(
                    ErrorKind::ZeroSize,
                    at(|s| s.size.clone()),
                    format!("{who}: memory at host {} has size 0", m.host),
                );
                ok = false;
            }
            // A guest base equal to the host base (the default) is reported
            // once, as the host base.
            for (what, v, span, check) in [
                ("host base", m.host.0, at(|s| s.host.clone()), true),
                ("guest base", m.guest.0, at(|s| s.guest.clone().or(s.host.clone())), m.guest.0 != m.host.0),
                ("size", m.size, at(|s| s.size.clone()), true),
            ] {
                if check && v % PAGE != 0 {
                    self.push(
                        ErrorKind::Misaligned,
                        span,
                        format!("{who}: memory {what} {v:#x} is not a multiple of 4 KiB"),
                    );
                    ok = false;
                }
            }
            let (Some(host), Some(guest)) = (m.host_range(), m.guest_range()) else {
                self.push(
                    ErrorKind::Overflow,
                    table,
                    format!(
                        "{who}: memory at host {} / guest {} with size {:#x} runs past the top of the address space",
                        m.host, m.guest, m.size
                    ),
                );
                continue;
            };
            if !ok {
                continue;
            }
            let inside = board
                .partition_ram
                .iter()
                .any(|r| r.end().is_some_and(|e| host.start >= r.base && host.end <= e));
            if !inside {
                let avail = board
                    .partition_ram
                    .iter()
                    .map(|r| format!("{:#x}..{:#x}", r.base, r.base.saturating_add(r.size)))
                    .collect::<Vec<_>>()
                    .join(", ");
                self.push(
                    ErrorKind::OutsidePartitionRam,
                    at(|s| s.host.clone()),
                    format!(
                        "{who}: memory at host {:#x}..{:#x} is outside the RAM board {} leaves to partitions ({avail})",
                        host.start, host.end, board.name
                    ),
                );
            }
            for &(k, ref other) in &good {
                if ranges_overlap(&guest, other) {
                    let first = self.mem(i, k).and_then(|s| s.guest.clone().or(s.host.clone()));
                    let note = self.line_note(first.as_ref());
                    self.push(
                        ErrorKind::GuestOverlap,
                        at(|s| s.guest.clone().or(s.host.clone())),
                        format!(
                            "{who}: guest memory {:#x}..{:#x} overlaps its guest memory {:#x}..{:#x}{note}",
                            guest.start, guest.end, other.start, other.end
                        ),
                    );
                }
            }
            good.push((j, guest));
        }
        // Assigned MMIO is mapped at its own address, so it must not sit
        // where the guest has RAM.
        for (j, d) in p.devices.iter().enumerate() {
            let DeviceKind::Mmio { regions, .. } = &d.kind else { continue };
            for (k, r) in regions.iter().enumerate() {
                let Some(rr) = round_out(r) else { continue };
                if let Some((_, g)) = good.iter().find(|(_, g)| ranges_overlap(&rr, g)) {
                    let span = self.dev(i, j).and_then(|s| s.mmio.get(k).cloned());
                    self.push(
                        ErrorKind::GuestOverlap,
                        span,
                        format!(
                            "{who}: device \"{}\" MMIO {:#x}..{:#x} is mapped at its own address, inside the partition's guest memory {:#x}..{:#x}",
                            d.name, rr.start, rr.end, g.start, g.end
                        ),
                    );
                }
            }
        }
    }

    /// Good host ranges of every partition, with where they came from.
    fn host_ranges(&self) -> Vec<(usize, usize, Range<u64>)> {
        let mut v = Vec::new();
        for (i, p) in self.cfg.partitions.iter().enumerate() {
            for (j, m) in p.memory.iter().enumerate() {
                if m.size == 0 {
                    continue;
                }
                if let Some(r) = m.host_range() {
                    v.push((i, j, r));
                }
            }
        }
        v
    }

    fn host_overlaps(&mut self) {
        let all = self.host_ranges();
        for (n, (i, j, r)) in all.iter().enumerate() {
            if let Some((fi, fj, f)) = all[..n].iter().find(|(_, _, f)| ranges_overlap(r, f)) {
                let span = self.mem(*i, *j).and_then(|s| s.host.clone().or(Some(s.table.clone())));
                let first = self.mem(*fi, *fj).and_then(|s| s.host.clone());
                let note = self.line_note(first.as_ref());
                let whose = if fi == i { String::from("its own") } else { format!("{}'s", self.who(*fi)) };
                self.push(
                    ErrorKind::HostOverlap,
                    span,
                    format!(
                        "{}: host memory {:#x}..{:#x} overlaps {whose} host memory {:#x}..{:#x}{note}",
                        self.who(*i),
                        r.start,
                        r.end,
                        f.start,
                        f.end
                    ),
                );
            }
        }
    }

    fn console(&mut self, i: usize, p: &Partition) {
        let Console::Device(name) = &p.console else { return };
        let who = self.who(i);
        let span = self.part(i).and_then(|s| s.console.clone());
        match p.device(name) {
            None if self.part(i).is_some_and(|s| s.devices_dropped) => {}
            None => self.push(
                ErrorKind::BadConsole,
                span,
                format!("{who}: console \"{name}\" is neither \"virtual\" nor a device of this partition"),
            ),
            Some(d) if d.uart.is_none() => self.push(
                ErrorKind::BadConsole,
                span,
                format!("{who}: console device \"{name}\" is not a UART (mark it with uart = \"pl011\")"),
            ),
            Some(_) => {}
        }
    }

    fn device_values(&mut self, i: usize, p: &Partition) {
        for (j, d) in p.devices.iter().enumerate() {
            let sp = self.dev(i, j).cloned();
            if let DeviceKind::Mmio { regions, .. } = &d.kind {
                if regions.is_empty() {
                    self.push(
                        ErrorKind::BadDevice,
                        sp.as_ref().map(|s| s.table.clone()),
                        format!("device \"{}\": `mmio` lists no region", d.name),
                    );
                }
                for (k, r) in regions.iter().enumerate() {
                    let span = sp.as_ref().and_then(|s| s.mmio.get(k).cloned());
                    if r.size == 0 {
                        self.push(
                            ErrorKind::ZeroSize,
                            span,
                            format!("device \"{}\": MMIO region at {:#x} has size 0", d.name, r.base),
                        );
                    } else if round_out(r).is_none() {
                        self.push(
                            ErrorKind::Overflow,
                            span,
                            format!(
                                "device \"{}\": MMIO region at {:#x} with size {:#x} runs past the top of the address space",
                                d.name, r.base, r.size
                            ),
                        );
                    }
                }
            }
            if d.bounce && !d.dma {
                let span = sp.as_ref().and_then(|s| s.bounce.clone());
                self.push(
                    ErrorKind::BadDevice,
                    span,
                    format!("device \"{}\" has bounce = true but does not master DMA (dma = false)", d.name),
                );
            }
        }
    }

    fn pci_owners(&mut self) {
        let board = self.cfg.board;
        let cfg = self.cfg;
        let mut seen: Vec<(usize, usize)> = Vec::new();
        for (i, p) in cfg.partitions.iter().enumerate() {
            for (j, d) in p.devices.iter().enumerate() {
                let DeviceKind::Pci(bdf) = d.kind else { continue };
                let span = self.dev(i, j).and_then(|s| s.pci.clone());
                let same = seen.iter().find(|&&(fi, fj)| cfg.partitions[fi].devices[fj].kind == d.kind);
                let group = iommu_group_of(board, bdf);
                let split = seen.iter().find(|&&(fi, fj)| {
                    fi != i
                        && matches!(cfg.partitions[fi].devices[fj].kind,
                            DeviceKind::Pci(o) if iommu_group_of(board, o) == group)
                });
                if let Some(&(fi, fj)) = same {
                    let first = &cfg.partitions[fi].devices[fj];
                    let note = self.line_note(self.dev(fi, fj).and_then(|s| s.pci.as_ref()));
                    self.push(
                        ErrorKind::PciShared,
                        span,
                        format!(
                            "PCI function {bdf} (device \"{}\" of {}) is already assigned as device \"{}\" of {}{note}",
                            d.name,
                            self.who(i),
                            first.name,
                            self.who(fi)
                        ),
                    );
                } else if let Some(&(fi, fj)) = split {
                    let first = &cfg.partitions[fi].devices[fj];
                    let DeviceKind::Pci(fb) = first.kind else { continue };
                    let note = self.line_note(self.dev(fi, fj).and_then(|s| s.pci.as_ref()));
                    self.push(
                        ErrorKind::IommuGroupSplit,
                        span,
                        format!(
                            "device \"{}\" ({bdf}) of {} shares an IOMMU group with device \"{}\" ({fb}) of {}{note}: \
                             on board {} the functions of one PCI device cannot be isolated; give them to one partition",
                            d.name,
                            self.who(i),
                            first.name,
                            self.who(fi),
                            board.name
                        ),
                    );
                }
                seen.push((i, j));
            }
        }
    }

    fn mmio_overlaps(&mut self) {
        let board = self.cfg.board;
        let cfg = self.cfg;
        // RAM: what the hypervisor keeps (from the start of RAM to the first
        // partition RAM) and what it leaves to partitions.
        let mut ram: Vec<(Range<u64>, &str)> = Vec::new();
        if let Some(first) = board.partition_ram.first() {
            if board.ram_base < first.base {
                ram.push((board.ram_base..first.base, "the hypervisor's RAM"));
            }
        }
        for r in board.partition_ram {
            if let Some(e) = r.end() {
                ram.push((r.base..e, "partition RAM"));
            }
        }
        let console = round_out(&Region { base: board.console.base, size: board.console.size });
        let mut seen: Vec<(usize, usize, usize, Range<u64>)> = Vec::new();
        for (i, p) in cfg.partitions.iter().enumerate() {
            for (j, d) in p.devices.iter().enumerate() {
                let DeviceKind::Mmio { regions, .. } = &d.kind else { continue };
                for (k, r) in regions.iter().enumerate() {
                    if r.size == 0 {
                        continue;
                    }
                    let Some(rr) = round_out(r) else { continue };
                    let span = self.dev(i, j).and_then(|s| s.mmio.get(k).cloned());
                    let what = format!("device \"{}\" MMIO {:#x}..{:#x}", d.name, rr.start, rr.end);
                    if let Some((ram, kind)) = ram.iter().find(|(m, _)| ranges_overlap(&rr, m)) {
                        self.push(
                            ErrorKind::MmioOverlap,
                            span.clone(),
                            format!(
                                "{what} overlaps {kind} {:#x}..{:#x} of board {}",
                                ram.start, ram.end, board.name
                            ),
                        );
                    }
                    if console.as_ref().is_some_and(|c| ranges_overlap(&rr, c)) {
                        self.push(
                            ErrorKind::MmioOverlap,
                            span.clone(),
                            format!(
                                "{what} covers the hypervisor's console UART at {:#x} on board {}",
                                board.console.base, board.name
                            ),
                        );
                    }
                    if let Some((fi, fj, _, f)) = seen.iter().find(|(_, _, _, f)| ranges_overlap(&rr, f)) {
                        let other = &cfg.partitions[*fi].devices[*fj];
                        let note = self.line_note(self.dev(*fi, *fj).map(|s| &s.table));
                        self.push(
                            ErrorKind::MmioOverlap,
                            span,
                            format!(
                                "{what} overlaps device \"{}\" MMIO {:#x}..{:#x}{note} (pages are given whole)",
                                other.name, f.start, f.end
                            ),
                        );
                    }
                    seen.push((i, j, k, rr));
                }
            }
        }
    }

    fn irqs(&mut self) {
        let board = self.cfg.board;
        let cfg = self.cfg;
        let console_irq = board.console.irq.map(|q| q.intid());
        let mut owner: BTreeMap<u32, (usize, usize, usize)> = BTreeMap::new();
        for (i, p) in cfg.partitions.iter().enumerate() {
            for (j, d) in p.devices.iter().enumerate() {
                let DeviceKind::Mmio { irqs, .. } = &d.kind else { continue };
                for (k, &irq) in irqs.iter().enumerate() {
                    let span = self.dev(i, j).and_then(|s| s.irq.get(k).cloned());
                    if !SPI_INTIDS.contains(&irq) {
                        self.push(
                            ErrorKind::BadIrq,
                            span,
                            format!("device \"{}\": interrupt {irq} is not an SPI INTID (32..=1019)", d.name),
                        );
                        continue;
                    }
                    if console_irq == Some(irq) {
                        self.push(
                            ErrorKind::BadIrq,
                            span.clone(),
                            format!(
                                "device \"{}\": interrupt {irq} is the hypervisor's console interrupt on board {}",
                                d.name, board.name
                            ),
                        );
                    }
                    match owner.get(&irq) {
                        None => {
                            owner.insert(irq, (i, j, k));
                        }
                        Some(&(fi, fj, fk)) => {
                            let first = self.dev(fi, fj).and_then(|s| s.irq.get(fk).cloned());
                            let note = self.line_note(first.as_ref());
                            let other = &cfg.partitions[fi].devices[fj].name;
                            self.push(
                                ErrorKind::BadIrq,
                                span,
                                format!(
                                    "device \"{}\": interrupt {irq} is already given to device \"{other}\"{note}",
                                    d.name
                                ),
                            );
                        }
                    }
                }
            }
        }
    }

    fn dma(&mut self) {
        let board = self.cfg.board;
        let cfg = self.cfg;
        for (i, p) in cfg.partitions.iter().enumerate() {
            for (j, d) in p.devices.iter().enumerate() {
                if !d.dma || d.bounce {
                    continue;
                }
                let span = self.dev(i, j).map(|s| s.dma.clone().or(s.pci.clone()).unwrap_or(s.table.clone()));
                let msg = match (&d.kind, board.has_iommu) {
                    (_, false) => format!(
                        "board {} has no IOMMU: device \"{}\" could DMA anywhere; set bounce = true to use bounce buffering",
                        board.name, d.name
                    ),
                    (DeviceKind::Mmio { .. }, true) => format!(
                        "device \"{}\" masters DMA, but board {}'s IOMMU is only set up for PCI functions: \
                         it could DMA anywhere; set bounce = true to use bounce buffering",
                        d.name, board.name
                    ),
                    (DeviceKind::Pci(_), true) => continue,
                };
                self.push(ErrorKind::DmaWithoutIommu, span, msg);
            }
        }
    }
}

/// A built-in guest's name: what a crate or binary name may be.
fn valid_builtin(s: &str) -> bool {
    (1..=63).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
