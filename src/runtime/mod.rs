//! The timely runtime (being written).
