//! A traffic split between the blue and green target groups. It cannot be built unless both
//! weights are in the ALB's range (0..=999) and they add up to 100.

use super::Color;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The ALB accepts weights 0..=999 per target group; the controller always writes percentages.
pub const MAX_ALB_WEIGHT: u16 = 999;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TrafficSplit {
    blue: u16,
    green: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSplit {
    #[error("weight {0} is outside the ALB range 0..=999")]
    OutOfRange(i64),
    #[error("blue {blue} + green {green} = {} (must be 100)", *blue as u32 + *green as u32)]
    NotHundred { blue: u16, green: u16 },
}

impl TrafficSplit {
    pub fn new(blue: i64, green: i64) -> Result<Self, InvalidSplit> {
        let check = |w: i64| -> Result<u16, InvalidSplit> {
            u16::try_from(w)
                .ok()
                .filter(|w| *w <= MAX_ALB_WEIGHT)
                .ok_or(InvalidSplit::OutOfRange(w))
        };
        let (blue, green) = (check(blue)?, check(green)?);
        if blue + green != 100 {
            return Err(InvalidSplit::NotHundred { blue, green });
        }
        Ok(Self { blue, green })
    }

    /// All traffic on one color.
    pub fn all_on(color: Color) -> Self {
        Self::with_percent_on(color, 100).unwrap_or(Self {
            blue: 100,
            green: 0,
        })
    }

    /// `percent` on `color`, the rest on the other color.
    pub fn with_percent_on(color: Color, percent: u16) -> Result<Self, InvalidSplit> {
        if percent > 100 {
            return Err(InvalidSplit::OutOfRange(i64::from(percent)));
        }
        let rest = 100 - percent;
        match color {
            Color::Blue => Self::new(percent.into(), rest.into()),
            Color::Green => Self::new(rest.into(), percent.into()),
        }
    }

    pub fn blue(&self) -> u16 {
        self.blue
    }

    pub fn green(&self) -> u16 {
        self.green
    }

    pub fn weight_of(&self, color: Color) -> u16 {
        match color {
            Color::Blue => self.blue,
            Color::Green => self.green,
        }
    }

    /// The color carrying all traffic, if any.
    pub fn sole_color(&self) -> Option<Color> {
        match (self.blue, self.green) {
            (100, 0) => Some(Color::Blue),
            (0, 100) => Some(Color::Green),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for TrafficSplit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            blue: i64,
            green: i64,
        }
        let raw = Raw::deserialize(d)?;
        TrafficSplit::new(raw.blue, raw.green).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for TrafficSplit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blue: {}% | Green: {}%", self.blue, self.green)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn only_in_range_pairs_summing_to_100_are_accepted(blue in -2000i64..2000, green in -2000i64..2000) {
            let split = TrafficSplit::new(blue, green);
            let valid = (0..=999).contains(&blue) && (0..=999).contains(&green) && blue + green == 100;
            prop_assert_eq!(split.is_ok(), valid);
            if let Ok(s) = split {
                prop_assert_eq!(u32::from(s.blue()) + u32::from(s.green()), 100);
            }
        }

        #[test]
        fn percent_on_a_color_always_sums_to_100(percent in 0u16..=100, green in any::<bool>()) {
            let color = if green { Color::Green } else { Color::Blue };
            let s = TrafficSplit::with_percent_on(color, percent).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(s.weight_of(color), percent);
            prop_assert_eq!(s.weight_of(color.other()), 100 - percent);
        }

        #[test]
        fn deserialization_enforces_the_same_rules(blue in -10i64..1100, green in -10i64..1100) {
            let json = format!(r#"{{"blue":{blue},"green":{green}}}"#);
            let parsed: Result<TrafficSplit, _> = serde_json::from_str(&json);
            prop_assert_eq!(parsed.is_ok(), TrafficSplit::new(blue, green).is_ok());
        }
    }

    #[test]
    fn percent_above_100_is_refused() {
        assert!(TrafficSplit::with_percent_on(Color::Green, 101).is_err());
    }

    #[test]
    fn sole_color_and_display() {
        assert_eq!(
            TrafficSplit::all_on(Color::Green).sole_color(),
            Some(Color::Green)
        );
        assert_eq!(
            TrafficSplit::all_on(Color::Blue).sole_color(),
            Some(Color::Blue)
        );
        let s = TrafficSplit::with_percent_on(Color::Green, 25).map_err(|e| e.to_string());
        assert_eq!(s.clone().map(|s| s.sole_color()), Ok(None));
        assert_eq!(
            s.map(|s| s.to_string()),
            Ok("Blue: 75% | Green: 25%".to_string())
        );
    }
}
