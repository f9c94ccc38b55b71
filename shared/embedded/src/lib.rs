//! devgem-embedded
