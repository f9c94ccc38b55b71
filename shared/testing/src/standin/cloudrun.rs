//! A stand-in for cloudrun (to be written).
