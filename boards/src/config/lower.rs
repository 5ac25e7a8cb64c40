//! From text to the typed model: TOML syntax (every syntax error, via
//! `toml`'s recoverable parser), the schema (one serde pass per partition, so
//! a mistake in one does not hide the others), and the values written as
//! strings (sizes, PCI addresses, kernels, policies). Cross-checks are
//! [`super::validate`]'s.

use super::alloc::{format, string::String, vec::Vec};
use super::error::{ErrorKind, Sink, Span};
use super::model::{
    Bdf, Console, Device, DeviceKind, FaultPolicy, Ipa, KernelSource, MemRegion, Partition, PhysAddr,
};
use super::raw::{Num, RawDevice, RawMemory, RawPartition};
use super::source::{DevSpans, MemSpans, PartSpans};
use crate::platform::{Region, UartKind};
use crate::{board_by_name, Board, BOARDS};
use serde::Deserialize;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

/// What lowering produced: the board (if named and known), the partitions
/// that parsed, and their spans.
pub(crate) struct Lowered {
    pub board: Option<&'static Board>,
    pub partitions: Vec<Partition>,
    pub qemu: Vec<String>,
    pub spans: Vec<PartSpans>,
    /// Syntax was broken: nothing below the top level is trustworthy.
    pub syntax_failed: bool,
}

pub(crate) fn lower(text: &str, sink: &mut Sink<'_>) -> Lowered {
    let mut out = Lowered {
        board: None,
        partitions: Vec::new(),
        qemu: Vec::new(),
        spans: Vec::new(),
        syntax_failed: false,
    };
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        for e in errors {
            sink.push(ErrorKind::Syntax, e.span().as_ref(), String::from(e.message()));
        }
        out.syntax_failed = true;
        return out;
    }
    let mut board_seen = false;
    let mut partitions_seen = false;
    for (key, value) in root.into_inner() {
        let key_span = key.span();
        match key.get_ref().as_ref() {
            "board" => {
                board_seen = true;
                match Spanned::<String>::deserialize(ValueDeserializer::from(value)) {
                    Ok(name) => out.board = lower_board(&name, sink),
                    Err(e) => serde_error(sink, &e),
                }
            }
            "qemu" => match Vec::<String>::deserialize(ValueDeserializer::from(value)) {
                Ok(args) => out.qemu = args,
                Err(e) => serde_error(sink, &e),
            },
            "partition" => {
                partitions_seen = true;
                let span = value.span();
                let DeValue::Array(items) = value.into_inner() else {
                    sink.push(
                        ErrorKind::Syntax,
                        Some(&span),
                        "`partition` must be an array of tables: write each as `[[partition]]`".into(),
                    );
                    continue;
                };
                for item in items {
                    let n = out.partitions.len() + 1;
                    match Spanned::<RawPartition>::deserialize(ValueDeserializer::from(item)) {
                        Ok(raw) => {
                            let (p, s) = lower_partition(n, raw, sink);
                            out.partitions.push(p);
                            out.spans.push(s);
                        }
                        Err(e) => serde_error(sink, &e),
                    }
                }
            }
            other => sink.push(
                ErrorKind::UnknownKey,
                Some(&key_span),
                format!("unknown key `{other}`: the top level has `board`, `qemu` and `[[partition]]`"),
            ),
        }
    }
    if !board_seen {
        sink.push(ErrorKind::Missing, Some(&(0..0)), format!("no `board`: name one of {}", board_names()));
    }
    if !partitions_seen {
        sink.push(
            ErrorKind::NoPartitions,
            Some(&(0..0)),
            "no `[[partition]]`: a configuration needs at least one".into(),
        );
    }
    out
}

/// `qemu-virt, rpi4`.
pub(crate) fn board_names() -> String {
    let mut s = String::new();
    for (i, b) in BOARDS.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(b.name);
    }
    s
}

fn lower_board(name: &Spanned<String>, sink: &mut Sink<'_>) -> Option<&'static Board> {
    let b = board_by_name(name.get_ref());
    if b.is_none() {
        sink.push(
            ErrorKind::UnknownBoard,
            Some(&name.span()),
            format!("unknown board \"{}\": boards are {}", name.get_ref(), board_names()),
        );
    }
    b
}

fn serde_error(sink: &mut Sink<'_>, e: &toml::de::Error) {
    let msg = e.message();
    let kind = if msg.starts_with("unknown field") { ErrorKind::UnknownKey } else { ErrorKind::Syntax };
    sink.push(kind, e.span().as_ref(), String::from(msg));
}

/// How messages name partition `n` (1-based) before its name is known.
fn label(name: &str, n: usize) -> String {
    if name.is_empty() {
        format!("partition #{n}")
    } else {
        format!("partition \"{name}\"")
    }
}

fn lower_partition(n: usize, raw: Spanned<RawPartition>, sink: &mut Sink<'_>) -> (Partition, PartSpans) {
    let table = raw.span();
    let raw = raw.into_inner();
    let mut s = PartSpans { table: table.clone(), ..PartSpans::default() };
    let name = match raw.name {
        Some(v) => {
            s.name = Some(v.span());
            v.into_inner()
        }
        None => {
            sink.push(ErrorKind::Missing, Some(&table), format!("partition #{n} has no `name`"));
            String::new()
        }
    };
    let who = label(&name, n);

    let mut cpus = Vec::new();
    match raw.cpus {
        Some(list) => {
            s.cpus = Some(list.span());
            for c in list.into_inner() {
                match u32::try_from(*c.get_ref()) {
                    Ok(v) => {
                        cpus.push(v);
                        s.cpu.push(c.span());
                    }
                    Err(_) => {
                        sink.push(
                            ErrorKind::BadValue,
                            Some(&c.span()),
                            format!("{who}: {} is not a CPU index (0, 1, ...)", c.get_ref()),
                        );
                        s.cpus_dropped = true;
                    }
                }
            }
        }
        None => sink.push(
            ErrorKind::Missing,
            Some(&table),
            format!("{who} has no `cpus`: list the physical CPUs it runs on, e.g. cpus = [0]"),
        ),
    }

    let kernel = match raw.kernel {
        Some(k) => {
            s.kernel = Some(k.span());
            match k.get_ref().strip_prefix("builtin:") {
                Some(b) => KernelSource::Builtin(b.into()),
                None => KernelSource::Path(k.into_inner()),
            }
        }
        None => {
            sink.push(
                ErrorKind::Missing,
                Some(&table),
                format!("{who} has no `kernel`: give \"builtin:<name>\" or a path relative to this file"),
            );
            KernelSource::Path(String::new())
        }
    };
    let initramfs = raw.initramfs.map(|v| {
        s.initramfs = Some(v.span());
        v.into_inner()
    });
    let bootargs = raw.bootargs.map(|v| {
        s.bootargs = Some(v.span());
        v.into_inner()
    });
    let console = match raw.console {
        Some(c) => {
            s.console = Some(c.span());
            match c.get_ref().as_str() {
                "virtual" => Console::Virtual,
                _ => Console::Device(c.into_inner()),
            }
        }
        None => Console::Virtual,
    };
    let fault_policy = match raw.fault_policy {
        None => FaultPolicy::Log,
        Some(f) => match f.get_ref().as_str() {
            "log" => FaultPolicy::Log,
            "stop-partition" => FaultPolicy::StopPartition,
            "inject" => FaultPolicy::Inject,
            other => {
                sink.push(
                    ErrorKind::BadValue,
                    Some(&f.span()),
                    format!("{who}: fault_policy \"{other}\" is not one of log, stop-partition, inject"),
                );
                FaultPolicy::Log
            }
        },
    };

    let mut memory = Vec::new();
    for m in raw.memory {
        match lower_memory(&who, m, sink) {
            Some((r, sp)) => {
                memory.push(r);
                s.memory.push(sp);
            }
            None => s.memory_dropped = true,
        }
    }
    let mut devices = Vec::new();
    for d in raw.device {
        match lower_device(&who, d, sink) {
            Some((dev, sp)) => {
                devices.push(dev);
                s.devices.push(sp);
            }
            None => s.devices_dropped = true,
        }
    }
    let p = Partition { name, cpus, kernel, initramfs, bootargs, console, fault_policy, memory, devices };
    (p, s)
}

/// A required number: `None` (reported) if absent or bad.
fn number(who: &str, key: &str, v: Option<&Spanned<Num>>, table: &Span, sink: &mut Sink<'_>) -> Option<u64> {
    let Some(v) = v else {
        sink.push(ErrorKind::Missing, Some(table), format!("{who}: no `{key}`"));
        return None;
    };
    match parse_num(v.get_ref()) {
        Ok(n) => Some(n),
        Err(why) => {
            sink.push(ErrorKind::BadValue, Some(&v.span()), format!("{who}: `{key}` {why}"));
            None
        }
    }
}

fn lower_memory(who: &str, m: Spanned<RawMemory>, sink: &mut Sink<'_>) -> Option<(MemRegion, MemSpans)> {
    let table = m.span();
    let m = m.into_inner();
    let what = format!("{who} memory");
    let host = number(&what, "host", m.host.as_ref(), &table, sink);
    let size = number(&what, "size", m.size.as_ref(), &table, sink);
    let guest = match &m.guest {
        Some(_) => number(&what, "guest", m.guest.as_ref(), &table, sink),
        None => host,
    };
    let spans = MemSpans {
        table: table.clone(),
        guest: m.guest.as_ref().map(Spanned::span),
        host: m.host.as_ref().map(Spanned::span),
        size: m.size.as_ref().map(Spanned::span),
    };
    Some((MemRegion { guest: Ipa(guest?), host: PhysAddr(host?), size: size? }, spans))
}

fn lower_device(who: &str, d: Spanned<RawDevice>, sink: &mut Sink<'_>) -> Option<(Device, DevSpans)> {
    let table = d.span();
    let d = d.into_inner();
    let mut sp = DevSpans { table: table.clone(), ..DevSpans::default() };
    let mut ok = true;
    let name = match &d.name {
        Some(n) => {
            sp.name = Some(n.span());
            n.get_ref().clone()
        }
        None => {
            sink.push(ErrorKind::Missing, Some(&table), format!("{who}: a device has no `name`"));
            ok = false;
            String::new()
        }
    };
    let dev = format!("device \"{name}\"");
    sp.dma = d.dma.as_ref().map(Spanned::span);
    sp.bounce = d.bounce.as_ref().map(Spanned::span);
    let uart = match &d.uart {
        None => None,
        Some(u) if u.get_ref() == "pl011" => Some(UartKind::Pl011),
        Some(u) => {
            sink.push(
                ErrorKind::BadValue,
                Some(&u.span()),
                format!("{dev}: uart \"{}\" is not a known UART (pl011)", u.get_ref()),
            );
            ok = false;
            None
        }
    };
    let kind = match (&d.pci, &d.mmio) {
        (Some(_), Some(m)) => {
            sink.push(
                ErrorKind::BadDevice,
                Some(&m.span()),
                format!("{dev} has both `pci` and `mmio`: pick one"),
            );
            None
        }
        (None, None) => {
            sink.push(
                ErrorKind::BadDevice,
                Some(&table),
                format!("{dev} has neither `pci = \"BUS:DEV.FN\"` nor `mmio = [{{ base, size }}]`"),
            );
            None
        }
        (Some(p), None) => {
            sp.pci = Some(p.span());
            if let Some(irqs) = &d.irqs {
                sink.push(
                    ErrorKind::BadDevice,
                    Some(&irqs.span()),
                    format!(
                        "{dev}: `irqs` is for MMIO devices; a PCI function's interrupts come from the bus"
                    ),
                );
                ok = false;
            }
            if let Some(dma) = d.dma.as_ref().filter(|v| !*v.get_ref()) {
                sink.push(
                    ErrorKind::BadDevice,
                    Some(&dma.span()),
                    format!("{dev}: a PCI function can always master DMA; remove `dma = false`"),
                );
                ok = false;
            }
            if let Some(u) = &d.uart {
                sink.push(
                    ErrorKind::BadDevice,
                    Some(&u.span()),
                    format!("{dev}: only MMIO UARTs are supported"),
                );
                ok = false;
            }
            match parse_bdf(p.get_ref()) {
                Ok(bdf) => Some(DeviceKind::Pci(bdf)),
                Err(why) => {
                    sink.push(
                        ErrorKind::BadValue,
                        Some(&p.span()),
                        format!("{dev}: pci \"{}\" {why}", p.get_ref()),
                    );
                    None
                }
            }
        }
        (None, Some(m)) => {
            let mut regions = Vec::new();
            for r in m.get_ref() {
                let t = r.span();
                let base = number(&dev, "base", r.get_ref().base.as_ref(), &t, sink);
                let size = number(&dev, "size", r.get_ref().size.as_ref(), &t, sink);
                match (base, size) {
                    (Some(base), Some(size)) => {
                        regions.push(Region { base, size });
                        sp.mmio.push(t);
                    }
                    _ => ok = false,
                }
            }
            let mut irqs = Vec::new();
            for irq in d.irqs.iter().flat_map(|l| l.get_ref()) {
                match u32::try_from(*irq.get_ref()) {
                    Ok(v) => {
                        irqs.push(v);
                        sp.irq.push(irq.span());
                    }
                    Err(_) => {
                        sink.push(
                            ErrorKind::BadIrq,
                            Some(&irq.span()),
                            format!("{dev}: {} is not an interrupt number", irq.get_ref()),
                        );
                        ok = false;
                    }
                }
            }
            Some(DeviceKind::Mmio { regions, irqs })
        }
    };
    let kind = kind?;
    let dma = matches!(kind, DeviceKind::Pci(_)) || d.dma.as_ref().is_some_and(|v| *v.get_ref());
    let bounce = d.bounce.as_ref().is_some_and(|v| *v.get_ref());
    ok.then_some((Device { name, kind, dma, bounce, uart }, sp))
}

/// A number: a TOML integer (not negative) or a string of decimal or `0x`
/// hex digits (`_` allowed between them) with an optional binary suffix `K`,
/// `M`, `G`, `T` (optionally followed by `iB` or `B`).
pub(crate) fn parse_num(n: &Num) -> Result<u64, String> {
    match n {
        Num::Int(v) => u64::try_from(*v).map_err(|_| format!("{v} is negative")),
        Num::Text(t) => parse_size(t).ok_or_else(|| {
            format!(
                "\"{t}\" is not a size: write bytes (4096, 0x1000) or a number with K, M, G or T (\"64M\")"
            )
        }),
    }
}

/// See [`parse_num`]; `None` for anything else, or on overflow.
pub(crate) fn parse_size(t: &str) -> Option<u64> {
    let (body, shift) = ["KiB", "MiB", "GiB", "TiB", "KB", "MB", "GB", "TB", "K", "M", "G", "T"]
        .iter()
        .find_map(|suf| {
            let shift = match suf.as_bytes().first() {
                Some(b'K') => 10,
                Some(b'M') => 20,
                Some(b'G') => 30,
                _ => 40,
            };
            t.strip_suffix(suf).map(|b| (b, shift))
        })
        .unwrap_or((t, 0));
    let (digits, radix) = match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        Some(h) => (h, 16),
        None => (body, 10),
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') {
        return None;
    }
    let mut v: u64 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let d = c.to_digit(radix)?;
        v = v.checked_mul(u64::from(radix))?.checked_add(u64::from(d))?;
    }
    v.checked_mul(1u64 << shift)
}

/// `BUS:DEV.FN` in hex (`00:01.0`), optionally after segment `0000:`.
pub(crate) fn parse_bdf(s: &str) -> Result<Bdf, String> {
    const FORM: &str = "is not a PCI address: write BUS:DEV.FN in hex, e.g. \"00:01.0\"";
    let hex = |t: &str, max: u8| -> Option<u8> {
        if t.is_empty() || t.len() > 4 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u8::from_str_radix(t, 16).ok().filter(|&v| v <= max)
    };
    let parts: Vec<&str> = s.split(':').collect();
    let (bus, devfn) = match parts.as_slice() {
        [bus, devfn] => (*bus, *devfn),
        [seg, bus, devfn] => {
            if !seg.chars().all(|c| c == '0') || seg.is_empty() {
                return Err(format!("is on PCI segment {seg}: only segment 0 is supported"));
            }
            (*bus, *devfn)
        }
        _ => return Err(FORM.into()),
    };
    let (dev, func) = devfn.split_once('.').ok_or_else(|| String::from(FORM))?;
    let bus = hex(bus, 0xff).ok_or_else(|| String::from(FORM))?;
    let dev = hex(dev, 0x1f).ok_or_else(|| String::from("has a device number above 1f"))?;
    let func = hex(func, 7).ok_or_else(|| String::from("has a function number above 7"))?;
    Ok(Bdf { bus, dev, func })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("0x1000"), Some(0x1000));
        assert_eq!(parse_size("0x4000_0000"), Some(0x4000_0000));
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("4K"), Some(4096));
        assert_eq!(parse_size("2T"), Some(2 << 40));
        assert_eq!(parse_size("0x10M"), Some(16 << 20));
        for bad in ["", "M", "64Q", "-1", "_1", "1_", "0x", "1.5G", "99999999999999999999", "16777216T", " 1"]
        {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
        assert!(parse_num(&Num::Int(-1)).is_err());
        assert_eq!(parse_num(&Num::Int(7)), Ok(7));
    }

    #[test]
    fn bdfs() {
        assert_eq!(parse_bdf("00:01.0"), Ok(Bdf { bus: 0, dev: 1, func: 0 }));
        assert_eq!(parse_bdf("ff:1f.7"), Ok(Bdf { bus: 0xff, dev: 0x1f, func: 7 }));
        assert_eq!(parse_bdf("0000:02:00.1"), Ok(Bdf { bus: 2, dev: 0, func: 1 }));
        for bad in
            ["", "00:01", "00:20.0", "00:01.8", "100:00.0", "0001:00:00.0", "zz:00.0", "00:01.0.0", "::."]
        {
            assert!(parse_bdf(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Bdf { bus: 0, dev: 1, func: 0 }.rid(), 8);
        assert_eq!(alloc_fmt(Bdf { bus: 0x0a, dev: 0x1f, func: 7 }), "0a:1f.7");
    }

    fn alloc_fmt(b: Bdf) -> String {
        format!("{b}")
    }
}
