//! The wall clock: when things were measured, and how far this machine's clock can be trusted
//! when reports of several machines are put on one time line.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::BenchError;

/// What the kernel knows of this machine's clock (`adjtimex(2)`, as `chronyc tracking` and
/// `timedatectl` read it): whether NTP (or PTP) keeps it synchronized, and the error bounds
/// the synchronizing daemon gives it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Clock {
    /// The kernel says a daemon keeps the clock synchronized.
    pub synchronized: bool,
    /// The offset the kernel is still correcting, in microseconds (positive: ahead).
    pub offset_us: Option<f64>,
    /// The daemon's estimate of the clock's error, in microseconds.
    pub estimated_error_us: Option<f64>,
    /// Its bound on the error, in microseconds.
    pub max_error_us: Option<f64>,
    /// Where this came from, or why nothing is known, in words.
    pub source: String,
}

impl Clock {
    /// Asks the kernel, without changing anything.
    pub fn current() -> Clock {
        // SAFETY: modes = 0 only reads; the struct is plain data the kernel fills.
        let (state, tx) = unsafe {
            let mut tx: libc::timex = std::mem::zeroed();
            (libc::adjtimex(&mut tx), tx)
        };
        if state < 0 {
            return Clock {
                source: format!(
                    "unknown: adjtimex failed ({})",
                    std::io::Error::last_os_error()
                ),
                ..Clock::default()
            };
        }
        let synchronized = state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0;
        if !synchronized {
            return Clock {
                source: "not synchronized: the kernel knows of no NTP or PTP daemon keeping this \
                         clock; its offset to other machines is unknown"
                    .into(),
                ..Clock::default()
            };
        }
        // With STA_NANO the offset is in nanoseconds; the error bounds are microseconds.
        let per_us = if tx.status & libc::STA_NANO != 0 {
            1000.0
        } else {
            1.0
        };
        Clock {
            synchronized,
            offset_us: Some(tx.offset as f64 / per_us),
            estimated_error_us: Some(tx.esterror as f64),
            max_error_us: Some(tx.maxerror as f64),
            source: "kernel (adjtimex), as the synchronizing daemon set it".into(),
        }
    }

    /// `±1.2 ms (synchronized)` or `not synchronized`, for headers.
    pub fn summary(&self) -> String {
        match (self.synchronized, self.estimated_error_us) {
            (true, Some(us)) => format!("clock ±{} (synchronized)", micros(us)),
            (true, None) => "clock synchronized".into(),
            (false, _) => "clock not synchronized".into(),
        }
    }
}

fn micros(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> f64 {
    unix(SystemTime::now())
}

/// Seconds since the Unix epoch.
pub fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// The last moment RFC 3339 can write, 9999-12-31T23:59:59.999Z, in seconds since the Unix
/// epoch: the end of the times echotool reads and prints.
const LATEST_UNIX: f64 = 253_402_300_799.999;

/// A wall-clock time from seconds since the Unix epoch, kept within 1970 to 9999: a figure
/// beyond (a damaged report's) is clamped rather than overflowing the clock.
pub fn from_unix(secs: f64) -> SystemTime {
    let secs = secs.clamp(0.0, LATEST_UNIX);
    UNIX_EPOCH + Duration::try_from_secs_f64(secs).unwrap_or_default()
}

/// `2026-11-30T01:40:00.25Z`, to the millisecond; seconds since the epoch for a time RFC 3339
/// cannot write.
pub fn rfc3339(t: SystemTime) -> String {
    let nanos = match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_nanos()).unwrap_or(i128::MAX),
        Err(before) => -i128::try_from(before.duration().as_nanos()).unwrap_or(i128::MAX),
    };
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|at| {
            at.replace_millisecond(at.millisecond())
                .unwrap_or(at)
                .format(&Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{:.3}", unix(t)))
}

/// A wall-clock time as `--start-at` takes it: RFC 3339 (`2026-11-30T01:40:00Z`, with an
/// offset or `Z`) or seconds since the Unix epoch (`1796002800`, fractions allowed), which
/// is what `date +%s` prints.
pub fn parse_time(text: &str) -> Result<SystemTime, BenchError> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        if (0.0..=LATEST_UNIX).contains(&secs) {
            return Ok(from_unix(secs));
        }
        if secs > LATEST_UNIX {
            return Err(BenchError::Invalid(format!(
                "'{text}' is not a time: {secs} s after 1970 is beyond the year 9999; give Unix \
                 seconds (date +%s) or RFC 3339 (2026-11-30T01:40:00Z)"
            )));
        }
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .map(SystemTime::from)
        .map_err(|e| {
            BenchError::Invalid(format!(
                "'{text}' is not a time: give RFC 3339 (2026-11-30T01:40:00Z, or with an offset \
                 such as +01:00) or Unix seconds (date +%s) ({e})"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_both_ways_and_print_back() {
        let t = parse_time("2026-11-30T01:40:00Z").unwrap();
        assert_eq!(unix(t), 1_796_002_800.0);
        assert_eq!(parse_time("1796002800").unwrap(), t);
        assert_eq!(parse_time("2026-11-30T02:40:00+01:00").unwrap(), t);
        assert_eq!(rfc3339(t), "2026-11-30T01:40:00Z");
        let half = parse_time("1796002800.5004").unwrap();
        assert_eq!(rfc3339(half), "2026-11-30T01:40:00.5Z");
        let err = parse_time("tomorrow").unwrap_err().to_string();
        assert!(
            err.contains("'tomorrow' is not a time: give RFC 3339"),
            "{err}"
        );
        assert!(parse_time("-5").is_err());
    }

    /// Found by the units fuzz target: `--start-at 6e14` (year 19 million) parsed, then
    /// panicked in `time` when printed; `1e19` overflowed the clock itself.
    #[test]
    fn times_beyond_the_year_9999_are_refused_not_a_panic() {
        for text in ["6e14", "1e19", "253402300800"] {
            let err = parse_time(text).unwrap_err().to_string();
            assert!(err.contains("beyond the year 9999"), "{text}: {err}");
        }
        let last = parse_time("253402300799.999").unwrap();
        assert_eq!(
            rfc3339(last),
            "9999-12-31T23:59:59.998Z",
            "f64 falls just short"
        );
        // A report's span is clamped; a time no parser made is printed as seconds.
        assert_eq!(rfc3339(from_unix(1e19)), rfc3339(last));
        assert_eq!(rfc3339(from_unix(f64::NAN)), "1970-01-01T00:00:00Z");
        let far = UNIX_EPOCH + Duration::from_secs(1_000_000_000_000);
        assert_eq!(rfc3339(far), "1000000000000.000");
    }

    #[test]
    fn the_kernel_answers_one_way_or_the_other() {
        let clock = Clock::current();
        assert!(!clock.source.is_empty());
        assert_eq!(clock.synchronized, clock.estimated_error_us.is_some());
    }
}
