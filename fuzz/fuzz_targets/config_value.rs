//! One value of a config file under one key, the first byte choosing the key (every setting,
//! as written and as a string) or `[metrics] listen`; the rest is the value as written:
//! `2`, `["echo"]`, `"250ms"`, `250ms` (which the string form quotes).
//!
//! Beyond "no panic": a setting in range applies; a duration fits the clock even a thousand
//! times over; a duration or size written as a string reads as the command-line parser reads
//! it; a metrics address displays to something that parses to the same address.

#![no_main]

use std::time::Instant;

use echotool_config::{Bytes, Seconds, Settings, parse_metrics_address};
use echotool_core::{ServerOptions, Setting, duration, size};
use echotool_fuzz::toml_string;
use libfuzzer_sys::fuzz_target;

fn setting(setting: Setting, value: &str, quoted: bool) {
    let written = match quoted {
        true => toml_string(value),
        false => value.to_string(),
    };
    let Ok(settings) = toml::from_str::<Settings>(&format!("{} = {written}", setting.key())) else {
        return;
    };
    for Seconds(d) in [
        settings.idle_timeout,
        settings.handshake_timeout,
        settings.drain_timeout,
    ]
    .into_iter()
    .flatten()
    {
        assert!(
            Instant::now().checked_add(d.saturating_mul(1000)).is_some(),
            "{written} is {d:?}, which overflows the clock"
        );
        if quoted {
            assert_eq!(duration::parse(value).ok(), Some(d), "{written}");
        }
    }
    if let (true, Some(Bytes(n))) = (quoted, settings.recv_buffer.or(settings.send_buffer)) {
        assert_eq!(size::parse(value).ok(), Some(n), "{written}");
    }
    if settings.out_of_range().is_none() {
        settings.apply(&mut ServerOptions::default());
    }
}

fn metrics(value: &str) {
    if let Ok(address) = parse_metrics_address(value) {
        let again = parse_metrics_address(&address.to_string());
        assert_eq!(
            again.as_ref(),
            Ok(&address),
            "{value:?} displays as {address}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let Ok(value) = std::str::from_utf8(rest) else {
        return;
    };
    let index = usize::from(choice >> 1);
    match Setting::ALL.get(index) {
        Some(&s) => setting(s, value, choice & 1 == 1),
        None => metrics(value),
    }
});
