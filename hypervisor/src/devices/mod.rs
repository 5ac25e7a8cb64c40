//! Drivers for devices the hypervisor itself drives (tests and demos).

pub mod edu;
