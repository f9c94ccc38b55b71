//! build-trigger function
