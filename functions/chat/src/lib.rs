//! chat function
