//! Unit tests of the spec grammar: every key and unit, directions, profiles, printing, errors.

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn parse(text: &str) -> LinkSpec {
    match LinkSpec::parse(text) {
        Ok(spec) => spec,
        Err(err) => panic!("{text}: {err}"),
    }
}

fn error(text: &str) -> String {
    match LinkSpec::parse(text) {
        Ok(spec) => panic!("{text} parsed as {spec:?}"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn every_key_both_ways() {
    let spec = parse(
        "delay=20ms,jitter=2ms,loss=1%,rate=50mbit,queue=64KiB,reorder=0.5%,dup=0.1%,mtu=1400",
    );
    let want = Impairments {
        delay: ms(20),
        jitter: ms(2),
        loss: Percent::from_ppm(10_000),
        rate: Some(50_000_000),
        queue: Some(65_536),
        reorder: Percent::from_ppm(5_000),
        dup: Percent::from_ppm(1_000),
        mtu: Some(1400),
    };
    assert_eq!(spec.up, want);
    assert_eq!(spec.down, want);
}

#[test]
fn units() {
    let one = |text: &str| parse(text).up;
    assert_eq!(one("delay=500us").delay, Duration::from_micros(500));
    assert_eq!(one("delay=500µs").delay, Duration::from_micros(500));
    assert_eq!(one("delay=1.5s").delay, ms(1500));
    assert_eq!(one("delay=0").delay, Duration::ZERO);
    assert_eq!(one("rate=800kbit").rate, Some(800_000));
    assert_eq!(one("rate=1gbit").rate, Some(1_000_000_000));
    assert_eq!(one("rate=20Mbps").rate, Some(20_000_000));
    assert_eq!(one("rate=1.5mbit").rate, Some(1_500_000));
    assert_eq!(one("rate=unlimited").rate, None);
    assert_eq!(one("queue=100KB").queue, Some(100_000));
    assert_eq!(one("queue=1MiB").queue, Some(1 << 20));
    assert_eq!(one("queue=1MB").queue, Some(1_000_000));
    assert_eq!(one("queue=1500B").queue, Some(1500));
    assert_eq!(one("queue=9000").queue, Some(9000));
    assert_eq!(one("loss=0.01%").loss.ppm(), 100);
    assert_eq!(one("loss=100%").loss.ppm(), 1_000_000);
    assert_eq!(one("loss=0").loss, Percent::ZERO);
    assert_eq!(
        one("mtu=1500").mtu,
        None,
        "the default MTU written out is the default"
    );
}

#[test]
fn directions() {
    let spec = parse("delay=10ms,up:rate=10mbit,down:rate=30mbit,down:loss=2%");
    assert_eq!(spec.up.delay, ms(10));
    assert_eq!(spec.down.delay, ms(10));
    assert_eq!(spec.up.rate, Some(10_000_000));
    assert_eq!(spec.down.rate, Some(30_000_000));
    assert!(spec.up.loss.is_zero());
    assert_eq!(spec.down.loss.ppm(), 20_000);
    // Later items win, so a direction can override a key set for both.
    let spec = parse("delay=10ms,up:delay=30ms");
    assert_eq!((spec.up.delay, spec.down.delay), (ms(30), ms(10)));
}

#[test]
fn profiles_parse_and_refine() {
    for profile in PROFILES {
        let spec = parse(profile.name);
        assert_eq!(spec.profile(), Some(profile.name));
        assert_eq!(spec.label(), profile.name);
    }
    assert!(parse("none").is_none());
    assert!(parse("loopback").is_none());
    let spec = parse("4g,loss=2%");
    assert_eq!(spec.up.loss.ppm(), 20_000);
    assert_eq!(spec.up.delay, ms(25));
    assert_eq!(spec.down.rate, Some(30_000_000));
    assert_eq!(spec.label(), "4g* rtt 50ms loss 2% 30mbit/10mbit");
    assert_eq!(parse("SATELLITE").up.delay, ms(300));
}

#[test]
fn profiles_are_in_the_crate_docs() {
    let docs = include_str!("../lib.rs");
    for profile in PROFILES.iter().filter(|p| !p.spec.is_empty()) {
        let row = format!("| `{}` | `{}` |", profile.name, profile.spec);
        assert!(docs.contains(&row), "crate docs lack the row {row}");
    }
}

#[test]
fn display_is_canonical_and_parses_back() {
    let cases = [
        ("none", "none"),
        ("mtu=1500", "none"),
        ("loss=1%,delay=20ms", "delay=20ms,loss=1%"),
        ("delay=0.5ms", "delay=500us"),
        ("rate=50000kbit", "rate=50mbit"),
        ("queue=65536", "queue=64KiB"),
        ("loss=0.125%", "loss=0.125%"),
        (
            "delay=5ms,up:rate=10mbit,down:rate=30mbit",
            "delay=5ms,up:rate=10mbit,down:rate=30mbit",
        ),
        ("up:loss=1%", "up:loss=1%,down:loss=0"),
        ("down:queue=1MB", "up:queue=unbounded,down:queue=1MB"),
        ("up:mtu=1280", "up:mtu=1280,down:mtu=1500"),
    ];
    for (input, canonical) in cases {
        let spec = parse(input);
        assert_eq!(spec.to_string(), canonical, "{input}");
        let again = parse(canonical);
        assert_eq!((again.up, again.down), (spec.up, spec.down), "{canonical}");
    }
    for profile in PROFILES {
        let spec = parse(profile.name);
        let again = parse(&spec.to_string());
        assert_eq!(
            (again.up, again.down),
            (spec.up, spec.down),
            "{}",
            profile.name
        );
    }
}

#[test]
fn labels() {
    assert_eq!(parse("delay=20ms,loss=1%").label(), "rtt 40ms loss 1%");
    assert_eq!(parse("rate=20mbit").label(), "20mbit");
    assert_eq!(parse("dup=1%").label(), "dup=1%");
    assert_eq!(parse("none").label(), "none");
}

#[test]
fn errors_name_the_item_and_what_is_expected() {
    let cases = [
        ("", "empty"),
        ("delay=20", "delay takes a duration"),
        ("delay=fast", "delay takes a duration"),
        ("delay=-1ms", "delay takes a duration"),
        ("jitter=2 parsecs", "jitter takes a duration"),
        ("loss=1", "loss takes a percentage"),
        ("loss=101%", "loss takes a percentage"),
        ("dup=x%", "dup takes a percentage"),
        ("reorder=2", "reorder takes a percentage"),
        ("rate=50", "rate takes a rate in bits per second"),
        ("rate=1bit", "rate takes a rate"),
        ("rate=50MB", "rate takes a rate"),
        ("queue=lots", "queue takes a size"),
        ("queue=1TB", "queue takes a size"),
        ("mtu=9k", "mtu takes a number of bytes"),
        ("mtu=576", "1280"),
        ("bandwidth=1mbit", "unknown key 'bandwidth'"),
        ("left:delay=1ms", "'left:' is not a direction"),
        ("5g", "not a profile"),
        ("delay=1ms,4g", "a profile must come first"),
        ("delay=1ms,,loss=1%", "an empty item"),
        ("delay=1e9s", "delay takes a duration"),
    ];
    for (input, expected) in cases {
        let message = error(input);
        assert!(message.contains(expected), "{input}: {message}");
        assert!(message.starts_with("link spec '"), "{input}: {message}");
    }
    let message = error("loss=1%,rate=fast");
    assert!(message.contains("'rate=fast'"), "{message}");
}

#[test]
fn percent_prints_exactly() {
    assert_eq!(Percent::from_ppm(10_000).to_string(), "1%");
    assert_eq!(Percent::from_ppm(1).to_string(), "0.0001%");
    assert_eq!(Percent::from_ppm(1_000_000).to_string(), "100%");
    assert_eq!(Percent::from_ppm(2_000_000).ppm(), 1_000_000);
    assert!((Percent::from_ppm(5_000).fraction() - 0.005).abs() < 1e-12);
}

#[test]
fn a_list_splits_at_profile_names_and_keys_refine_the_spec_before_them() {
    let list = LinkSpec::parse_list("lan,4g,loss=2%,satellite").unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0], LinkSpec::parse("lan").unwrap());
    assert_eq!(list[1], LinkSpec::parse("4g,loss=2%").unwrap());
    assert_eq!(list[2].label(), "satellite");
    let one = LinkSpec::parse_list("delay=20ms,loss=1%").unwrap();
    assert_eq!(one, vec![LinkSpec::parse("delay=20ms,loss=1%").unwrap()]);
    assert!(LinkSpec::parse_list("lan,,4g").is_err());
}
