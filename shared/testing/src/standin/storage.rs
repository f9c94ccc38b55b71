//! A stand-in for storage (to be written).
