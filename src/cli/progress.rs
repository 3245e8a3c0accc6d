//! Progress bars (indicatif) that follow the gateway's own counts — lines of an import as
//! the gateway takes them, inquiries of a batch answered or failed, values still to
//! re-encrypt after an at-rest rotation — drawn on standard error and only when it is a
//! terminal, so a script's output never carries them.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a bar is redrawn at most.
const DRAW_HZ: u8 = 5;

/// True when bars are drawn (standard error is a terminal).
pub fn drawn() -> bool {
    std::io::stderr().is_terminal()
}

fn bar(len: u64, template: &str) -> ProgressBar {
    if !drawn() {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr_with_hz(DRAW_HZ));
    if let Ok(style) = ProgressStyle::with_template(template) {
        b.set_style(style.progress_chars("=> "));
    }
    b.enable_steady_tick(Duration::from_millis(200));
    b
}

/// Bytes of a file the gateway has taken (an import is paced by the gateway's commits, so
/// this is the gateway's progress within its few pieces of buffering).
pub fn bytes(len: u64) -> ProgressBar {
    bar(
        len,
        "{spinner} [{bar:30}] {percent:>3}%  {bytes}/{total_bytes}  {bytes_per_sec}  {msg}",
    )
}

/// Items the gateway has finished out of a total it reports (inquiries, values).
pub fn items(len: u64) -> ProgressBar {
    bar(
        len,
        "{spinner} [{bar:30}] {pos}/{len} {msg}  ({elapsed_precise}, eta {eta})",
    )
}
