//! devgem-app
