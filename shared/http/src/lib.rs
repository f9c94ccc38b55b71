//! devgem-http
