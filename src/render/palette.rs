//! Terminal styles, switched off as a whole for `--color never` and for pipes.

use anstyle::{AnsiColor, Effects, Style};

/// The styles the renderers use; all plain when colour is off.
#[derive(Debug, Clone, Copy, Default)]
pub struct Palette {
    enabled: bool,
}

impl Palette {
    /// Colour on or off.
    pub fn new(enabled: bool) -> Self {
        Self { enabled }
    }

    fn pick(&self, style: Style) -> Style {
        if self.enabled { style } else { Style::new() }
    }

    pub fn error(&self) -> Style {
        self.pick(AnsiColor::Red.on_default().effects(Effects::BOLD))
    }
    pub fn warning(&self) -> Style {
        self.pick(AnsiColor::Yellow.on_default().effects(Effects::BOLD))
    }
    pub fn ok(&self) -> Style {
        self.pick(AnsiColor::Green.on_default().effects(Effects::BOLD))
    }
    pub fn accent(&self) -> Style {
        self.pick(AnsiColor::Blue.on_default().effects(Effects::BOLD))
    }
    pub fn bold(&self) -> Style {
        self.pick(Style::new().effects(Effects::BOLD))
    }
    pub fn dim(&self) -> Style {
        self.pick(Style::new().effects(Effects::DIMMED))
    }
}

/// Width on screen of `text`, not counting ANSI colour sequences.
pub fn console_width(text: &str) -> usize {
    let mut width = 0;
    let mut in_escape = false;
    for c in text.chars() {
        match (in_escape, c) {
            (false, '\u{1b}') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => width += 1,
        }
    }
    width
}
