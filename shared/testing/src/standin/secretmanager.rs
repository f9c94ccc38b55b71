//! A stand-in for secretmanager (to be written).
