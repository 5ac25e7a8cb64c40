//! Host tests. Table images are made by the builders in `build`, written from
//! the specs' layout tables (ACPI 6.5 §5.2, VT-d ch. 8, AMD IOMMU §5.2), and
//! compared against tables dumped from QEMU 10 (see `../testdata/README.md`).

mod build;
mod dmar;
mod ivrs;
mod props;
mod qemu;
mod tables;
