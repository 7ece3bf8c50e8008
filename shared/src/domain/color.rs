//! The two fixed colors of an environment. Which one is active changes with every release.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    Blue,
    Green,
}

impl Color {
    /// The color that is not `self`: the standby of an active color and vice versa.
    pub fn other(self) -> Color {
        match self {
            Color::Blue => Color::Green,
            Color::Green => Color::Blue,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Color::Blue => "blue",
            Color::Green => "green",
        }
    }

    pub fn parse(s: &str) -> Option<Color> {
        match s {
            "blue" => Some(Color::Blue),
            "green" => Some(Color::Green),
            _ => None,
        }
    }

    /// "Blue" / "Green", as operators read it in reports.
    pub fn title(self) -> &'static str {
        match self {
            Color::Blue => "Blue",
            Color::Green => "Green",
        }
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_is_an_involution() {
        for c in [Color::Blue, Color::Green] {
            assert_ne!(c, c.other());
            assert_eq!(c, c.other().other());
            assert_eq!(Color::parse(c.as_str()), Some(c));
        }
        assert_eq!(Color::parse("red"), None);
    }
}
