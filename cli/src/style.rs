//! Marks and emphasis: colored only when the output is a terminal that wants color (`NO_COLOR`,
//! `CLICOLOR_FORCE` and pipes are honored by the caller's choice of `color`).

use anstyle::{AnsiColor, Style};
use shared::report::{FAIL, OK};

#[derive(Debug, Clone, Copy, Default)]
pub struct Paint {
    pub color: bool,
}

impl Paint {
    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_string()
        }
    }
    pub fn ok(&self) -> String {
        self.paint(AnsiColor::Green.on_default().bold(), OK)
    }
    pub fn fail(&self) -> String {
        self.paint(AnsiColor::Red.on_default().bold(), FAIL)
    }
    pub fn bold(&self, text: &str) -> String {
        self.paint(Style::new().bold(), text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_plain_without_color_and_ansi_with_it() {
        let plain = Paint { color: false };
        assert_eq!((plain.ok(), plain.fail()), ("✓".into(), "✗".into()));
        let colored = Paint { color: true };
        assert_eq!(colored.ok(), "\u{1b}[1m\u{1b}[32m✓\u{1b}[0m");
    }
}
