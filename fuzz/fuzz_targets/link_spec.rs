//! `--link` specs: profiles, keys and lists (`4g,loss=2%`, `lan,satellite`,
//! `delay=20ms,up:rate=10mbit`).
//!
//! Beyond "no panic": every spec of a list prints in its canonical form, which parses back
//! to the same impairments both ways, and prints the same again; labels never fail.

#![no_main]

use echotool_link::LinkSpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let single = LinkSpec::parse(text).ok();
    let Ok(specs) = LinkSpec::parse_list(text) else {
        return;
    };
    assert!(!specs.is_empty(), "{text:?} parsed to no spec");
    if let Some(single) = single {
        // A list without a second profile is that one spec.
        if specs.len() == 1 {
            assert_eq!(
                (single.up, single.down),
                (specs[0].up, specs[0].down),
                "{text:?}"
            );
        }
    }
    for spec in specs {
        let canonical = spec.to_string();
        let again = LinkSpec::parse(&canonical)
            .unwrap_or_else(|e| panic!("{text:?} prints as {canonical:?}, which fails: {e}"));
        assert_eq!(
            (again.up, again.down),
            (spec.up, spec.down),
            "{text:?} prints as {canonical:?}"
        );
        assert_eq!(again.to_string(), canonical, "{text:?}");
        assert!(!spec.label().is_empty());
    }
});
