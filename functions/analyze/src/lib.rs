//! analyze function
