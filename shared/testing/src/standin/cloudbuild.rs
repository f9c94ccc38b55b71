//! A stand-in for cloudbuild (to be written).
