//! Durations as people type them: `5`, `5s`, `250ms`, `1.5s`, `2m`, `1h`.
//!
//! A bare number means seconds, as in `ncat -w 5` and `iperf3 -t 10`; `0` is allowed and means
//! "off" wherever a timeout takes it. At most [`MAX`], so that no deadline or schedule made
//! from a duration can overflow the clock.

use std::time::Duration;

use crate::{Error, Result};

/// The longest duration echotool takes: a hundred years (of 365 days), beyond any timeout or
/// run anyone means, and short enough that deadlines and schedules built from it (a bench's
/// runs one after the other) stay far inside what the clock can hold.
pub const MAX: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Parses a duration; a bare number is seconds.
///
/// ```
/// use std::time::Duration;
/// use echotool_core::duration::parse;
/// assert_eq!(parse("5").unwrap(), Duration::from_secs(5));
/// assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
/// assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
/// assert!(parse("soon").is_err());
/// ```
pub fn parse(input: &str) -> Result<Duration> {
    let text = input.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(invalid(input)),
    };
    let value: f64 = number.parse().map_err(|_| invalid(input))?;
    let d = Duration::try_from_secs_f64(value * scale).map_err(|_| too_long(input))?;
    within_max(d).ok_or_else(|| too_long(input))
}

/// `d` when it is at most [`MAX`]: for durations read elsewhere (a config file's numbers).
pub fn within_max(d: Duration) -> Option<Duration> {
    (d <= MAX).then_some(d)
}

/// Formats a duration the way [`parse`] reads it, choosing a readable unit.
pub fn display(d: Duration) -> String {
    if d.is_zero() {
        "0s".into()
    } else if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn too_long(input: &str) -> Error {
    Error::Invalid(format!(
        "'{input}' is too long a duration: echotool takes at most 100 years"
    ))
}

fn invalid(input: &str) -> Error {
    Error::Invalid(format!(
        "'{input}' is not a duration: write a number of seconds (5, 0.5) or add a unit \
         (250ms, 10s, 2m, 1h)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse(" 10 s ").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("100us").unwrap(), Duration::from_micros(100));
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["", "s", "-1", "5 parsecs", "1..2s", "1e9999"] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("is not a duration"), "{bad}: {err}");
        }
    }

    /// Found by the config_value fuzz target (`drain-timeout = "11490111111111111"`): anything
    /// up to 2^64 seconds parsed, and overflowed the clock wherever it became a deadline
    /// (`connect --timeout 9999999999999999999` panicked).
    #[test]
    fn durations_beyond_a_hundred_years_are_refused() {
        for long in [
            "11490111111111111",
            "9999999999999999999",
            "3153600001",
            "52560001m",
        ] {
            let err = parse(long).unwrap_err().to_string();
            assert!(err.contains("too long a duration"), "{long}: {err}");
        }
        let beyond_f64 = "9".repeat(400);
        assert!(
            parse(&beyond_f64)
                .unwrap_err()
                .to_string()
                .contains("too long")
        );
        assert_eq!(parse("3153600000").unwrap(), MAX);
    }

    #[test]
    fn displays_readably() {
        assert_eq!(display(Duration::from_secs(5)), "5 s");
        assert_eq!(display(Duration::from_millis(250)), "250 ms");
        assert_eq!(display(Duration::from_millis(1500)), "1.5 s");
    }
}
