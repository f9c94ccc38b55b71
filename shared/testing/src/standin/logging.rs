//! A stand-in for logging (to be written).
