//! Arbitrary bytes, as UTF-8 text, into the partition configuration parser
//! and validator: any panic is a bug (`boards::config` must only return
//! errors on bad input). Seeds: `examples/*.toml` (see `../README.md`).
#![no_main]

use boards::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else { return };
    match Config::parse(text) {
        Ok(cfg) => {
            // A parsed configuration is valid, and its queries are total.
            assert!(cfg.validate().is_ok());
            for cpu in 0..cfg.board.cpus + 1 {
                let _ = cfg.partition_of_cpu(cpu);
            }
            for p in &cfg.partitions {
                for m in &p.memory {
                    let _ = p.ipa_to_pa(m.guest);
                    let _ = p.pa_range(m.guest, m.size);
                }
            }
            let _ = cfg.check_files(|_| false);
        }
        Err(errors) => assert!(!errors.is_empty()),
    }
});
