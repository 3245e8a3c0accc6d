//! The `renkei` binary: parses the command line and hands over to the library.
#![forbid(unsafe_code)]

/// mimalloc instead of the system allocator: the request path allocates many small buffers
/// from many threads, where glibc's malloc showed up as a third of all CPU time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    renkei::cli::main()
}
