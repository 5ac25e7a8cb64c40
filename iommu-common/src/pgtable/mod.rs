//! IO page tables (being written).
