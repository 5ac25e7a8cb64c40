//! IOVA allocation (being written).
