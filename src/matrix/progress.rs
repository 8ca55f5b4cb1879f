//! The progress bar of long matrix runs: on stderr only, never on stdout, and only once a run
//! has taken more than a second on a terminal (or always, when asked).

use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

/// When to show the bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// When stderr is a terminal and the run is still going after [`Progress::DELAY`].
    #[default]
    Auto,
    /// From the start, also when stderr is not a terminal (then as one plain line a second).
    Always,
    /// Never.
    Never,
}

/// Counts finished cells and shows them on stderr as the mode says.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    /// Tells the thread that reveals the bar that the run is over.
    done: Option<Sender<()>>,
    revealer: Option<JoinHandle<()>>,
}

impl Progress {
    /// How long a run goes on before `Auto` shows the bar.
    pub const DELAY: Duration = Duration::from_secs(1);

    /// A counter that shows nothing.
    pub fn hidden() -> Self {
        Self {
            bar: None,
            done: None,
            revealer: None,
        }
    }

    /// Starts counting towards `total` cells.
    pub fn start(total: u64, mode: ProgressMode) -> Self {
        let terminal = std::io::stderr().is_terminal();
        // A terminal redraws in place, with a spinner; plain lines come at most once a second.
        let tick = Some(Duration::from_millis(120));
        let (delay, target, tick) = match (mode, terminal) {
            (ProgressMode::Never, _) | (ProgressMode::Auto, false) => return Self::hidden(),
            (ProgressMode::Auto, true) => (Self::DELAY, ProgressDrawTarget::stderr(), tick),
            (ProgressMode::Always, true) => (Duration::ZERO, ProgressDrawTarget::stderr(), tick),
            (ProgressMode::Always, false) => (
                Duration::ZERO,
                ProgressDrawTarget::term_like(Box::<PlainLines>::default()),
                None,
            ),
        };
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        let style = ProgressStyle::with_template(
            "{spinner} {msg} [{wide_bar}] {human_pos}/{human_len} cells, {elapsed} elapsed, {eta} left",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message("matrix");
        let (done, wait) = mpsc::channel::<()>();
        let shown = bar.clone();
        let revealer = std::thread::spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = wait.recv_timeout(delay) {
                shown.set_draw_target(target);
                if let Some(tick) = tick {
                    shown.enable_steady_tick(tick);
                }
            }
        });
        Self {
            bar: Some(bar),
            done: Some(done),
            revealer: Some(revealer),
        }
    }

    /// One more cell done.
    pub fn advance(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Ends the count and clears the bar.
    pub fn finish(&mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
        if let Some(revealer) = self.revealer.take() {
            let _ = revealer.join();
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A draw target for a stderr that is not a terminal (a log): a plain line a second at most.
#[derive(Debug, Default)]
struct PlainLines {
    /// When the last line was written.
    last: Mutex<Option<Instant>>,
}

impl TermLike for PlainLines {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        if s.trim().is_empty() {
            return Ok(());
        }
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < Duration::from_secs(1)) {
            return Ok(());
        }
        *last = Some(now);
        writeln!(std::io::stderr(), "{s}")
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        // indicatif writes the bar without a newline, then clears it before the next draw.
        self.write_line(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
