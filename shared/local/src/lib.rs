//! devgem-local
