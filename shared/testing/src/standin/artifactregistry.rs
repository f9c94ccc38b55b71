//! A stand-in for artifactregistry (to be written).
