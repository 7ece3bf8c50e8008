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

/// Why the active color cannot be told when a deployment starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveColorUnknown {
    /// The environment is recorded with `recorded` active, but the listener does not serve only
    /// that color (someone moved traffic by hand, or another deployment is running).
    ListenerDisagrees { recorded: Color },
    /// Never deployed here, and the listener splits traffic: neither says which color serves.
    Split,
}

/// The color serving production when a deployment starts: the one both the environment's
/// record (`recorded`) and the listener (`serving`, its sole color if it serves only one)
/// agree on. `ours` is whether this deployment already holds the environment: then it is a
/// retry after it began (traffic may have moved since), and the record knows the colors. An
/// environment never deployed takes the listener's word.
pub fn active_at_start(
    recorded: Option<Color>,
    serving: Option<Color>,
    ours: bool,
) -> Result<Color, ActiveColorUnknown> {
    match (recorded, serving) {
        (Some(r), Some(c)) if r == c => Ok(c),
        (Some(r), _) if ours => Ok(r),
        (Some(recorded), _) => Err(ActiveColorUnknown::ListenerDisagrees { recorded }),
        (None, Some(c)) => Ok(c),
        (None, None) => Err(ActiveColorUnknown::Split),
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

    #[test]
    fn the_active_color_at_start_is_where_record_and_listener_agree() {
        use ActiveColorUnknown::*;
        use Color::*;
        let cases = [
            // (recorded, listener serves only, ours) -> answer
            (Some(Blue), Some(Blue), false, Ok(Blue)),
            (Some(Green), Some(Green), true, Ok(Green)),
            (Some(Blue), Some(Green), true, Ok(Blue)),
            (Some(Blue), None, true, Ok(Blue)),
            (
                Some(Blue),
                Some(Green),
                false,
                Err(ListenerDisagrees { recorded: Blue }),
            ),
            (
                Some(Green),
                None,
                false,
                Err(ListenerDisagrees { recorded: Green }),
            ),
            (None, Some(Green), false, Ok(Green)),
            (None, Some(Blue), true, Ok(Blue)),
            (None, None, false, Err(Split)),
            (None, None, true, Err(Split)),
        ];
        for (recorded, serving, ours, want) in cases {
            assert_eq!(
                active_at_start(recorded, serving, ours),
                want,
                "{recorded:?} {serving:?} {ours}"
            );
        }
    }
}
