//! Batch inquiries submitted as municipal files (being built).

pub mod cli;
