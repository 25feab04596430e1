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

/// A wall-clock time from seconds since the Unix epoch.
pub fn from_unix(secs: f64) -> SystemTime {
    UNIX_EPOCH + Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or_default()
}

/// `2026-11-30T01:40:00.25Z`, to the millisecond.
pub fn rfc3339(t: SystemTime) -> String {
    let at = OffsetDateTime::from(t);
    at.replace_millisecond(at.millisecond())
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_else(|_| format!("{:.3}", unix(t)))
}

/// A wall-clock time as `--start-at` takes it: RFC 3339 (`2026-11-30T01:40:00Z`, with an
/// offset or `Z`) or seconds since the Unix epoch (`1796002800`, fractions allowed), which
/// is what `date +%s` prints.
pub fn parse_time(text: &str) -> Result<SystemTime, BenchError> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(from_unix(secs));
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

    #[test]
    fn the_kernel_answers_one_way_or_the_other() {
        let clock = Clock::current();
        assert!(!clock.source.is_empty());
        assert_eq!(clock.synchronized, clock.estimated_error_us.is_some());
    }
}
