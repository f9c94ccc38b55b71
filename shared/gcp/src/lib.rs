//! devgem-gcp
