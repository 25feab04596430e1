//! Byte sizes as people type them: `1024`, `16K`, `16KiB`, `1M`, `64kb`. K, M and G are
//! powers of 1024, the way socket buffer and message sizes are usually meant.

use crate::{Error, Result};

/// Parses a byte size.
///
/// ```
/// use echotool_core::size::parse;
/// assert_eq!(parse("16K").unwrap(), 16 * 1024);
/// assert_eq!(parse("65507").unwrap(), 65507);
/// assert!(parse("lots").is_err());
/// ```
pub fn parse(input: &str) -> Result<usize> {
    let text = input.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(invalid(input)),
    };
    number
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| invalid(input))
}

/// A size as the table, plots and help show it: `64 B`, `16 KiB`, `1 MiB`, or exact bytes
/// when it is not a whole number of KiB.
///
/// ```
/// use echotool_core::size::display;
/// assert_eq!(display(16 * 1024), "16 KiB");
/// assert_eq!(display(1000), "1000 B");
/// ```
pub fn display(n: usize) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

fn invalid(input: &str) -> Error {
    Error::Invalid(format!(
        "'{input}' is not a size: write a number of bytes (1024) or add K, M or G (16K, 1M)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse("0").unwrap(), 0);
        assert_eq!(parse("1M").unwrap(), 1 << 20);
        assert_eq!(parse("4kib").unwrap(), 4096);
        for bad in ["", "K", "-1", "1.5K", "12 parsecs", "99999999999999999999"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
