//! deploy function
