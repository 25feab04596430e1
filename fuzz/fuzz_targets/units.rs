//! Sizes, durations, rates and times as users type them: `--size 16K`, `--duration 1.5s`,
//! `--rate 2000`, `--start-at 2026-11-30T01:40:00Z`, and the number ranges every setting
//! checks (`--udp-rate-limit`, `--workers`, ...). Every parser gets the whole input.
//!
//! Beyond "no panic": a size displays to text that parses to the same size; a duration
//! displays to text that parses back within the display's rounding, and fits the clock even a
//! thousand times over; a rate gives every connection a send interval the clock can add; a
//! start time prints as RFC 3339 that parses back to the same millisecond.

#![no_main]

use std::time::{Duration, Instant, UNIX_EPOCH};

use echotool_bench::clock::{parse_time, rfc3339};
use echotool_bench::{parse_rate, send_interval};
use echotool_core::{Setting, duration, size};
use libfuzzer_sys::fuzz_target;

/// The most connections `bench --conns` takes, which share `--rate` between them.
const MAX_CONNS: f64 = 100_000.0;

fn sizes(text: &str) {
    let Ok(n) = size::parse(text) else { return };
    let shown = size::display(n);
    assert_eq!(
        size::parse(&shown).ok(),
        Some(n),
        "{text:?} displays as {shown:?}"
    );
}

fn durations(text: &str) {
    let Ok(d) = duration::parse(text) else { return };
    // Deadlines and schedules add a duration to the clock, some of them many times over (a
    // bench's runs one after the other).
    assert!(
        Instant::now().checked_add(d.saturating_mul(1000)).is_some(),
        "{text:?} is {d:?}, which overflows the clock"
    );
    let shown = duration::display(d);
    let Ok(back) = duration::parse(&shown) else {
        panic!("{text:?} is {d:?}, displayed as {shown:?}, which does not parse")
    };
    // One decimal of seconds, whole milliseconds or microseconds, and f64 on the way back.
    let slack = Duration::from_millis(50) + d.mul_f64(1e-15);
    let off = back.abs_diff(d);
    assert!(
        off <= slack,
        "{text:?} is {d:?}, displayed as {shown:?}, read back as {back:?}"
    );
}

fn rates(text: &str) {
    let Ok(rate) = parse_rate(text) else { return };
    assert!(rate.is_finite() && rate > 0.0, "{text:?} gave {rate}");
    let now = Instant::now();
    for conns in [1.0, MAX_CONNS] {
        let interval = send_interval(rate / conns);
        assert!(
            now.checked_add(interval).is_some(),
            "{text:?} over {conns} connections"
        );
    }
}

fn times(text: &str) {
    let Ok(at) = parse_time(text) else { return };
    let shown = rfc3339(at);
    let Ok(back) = parse_time(&shown) else {
        panic!("{text:?} printed as {shown:?}, which does not parse")
    };
    let (a, b) = (
        at.duration_since(UNIX_EPOCH).unwrap_or_default(),
        back.duration_since(UNIX_EPOCH).unwrap_or_default(),
    );
    assert!(
        a >= b && a - b < Duration::from_millis(1),
        "{text:?} printed as {shown:?}"
    );
}

fn ranges(text: &str) {
    let Ok(n) = text.trim().parse::<u64>() else {
        return;
    };
    for setting in Setting::ALL {
        if setting.accepts(n) {
            assert!(!setting.expecting().is_empty());
        }
    }
}

fuzz_target!(|text: &str| {
    sizes(text);
    durations(text);
    rates(text);
    times(text);
    ranges(text);
});
