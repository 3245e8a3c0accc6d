//! Development and evaluation tools, never imported by production code: `renkei init` (a
//! ready deployment folder with a development CA), `renkei demo` (the whole flow on
//! loopback), `renkei bench` (throughput and latency on this machine) and their fixtures
//! (sample residents, generated batch files).

pub mod batch_file;
pub mod bench;
pub mod demo;
pub mod init;
