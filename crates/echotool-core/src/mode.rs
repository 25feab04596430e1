//! File modes as chmod takes them: octal digits, `0660`, `660` or `0o660`. A Unix socket
//! file's mode decides who may connect to it (connecting needs write permission on the file).

use crate::{Error, Result};

/// Parses a file mode written in octal. Values above 0777 parse (the caller's range check
/// refuses them with the range in words); anything but octal digits does not.
///
/// ```
/// use echotool_core::mode::parse;
/// assert_eq!(parse("0660").unwrap(), 0o660);
/// assert_eq!(parse("0o600").unwrap(), 0o600);
/// assert!(parse("rw-rw----").is_err());
/// ```
pub fn parse(input: &str) -> Result<u32> {
    let text = input.trim();
    let digits = text.strip_prefix("0o").unwrap_or(text);
    let octal = !digits.is_empty()
        && digits.len() <= 6
        && digits.bytes().all(|b| b.is_ascii_digit() && b < b'8');
    match octal {
        true => u32::from_str_radix(digits, 8).map_err(|_| invalid(input)),
        false => Err(invalid(input)),
    }
}

/// A mode the way chmod and `ls` users write it: `0660`.
///
/// ```
/// use echotool_core::mode::display;
/// assert_eq!(display(0o600), "0600");
/// ```
pub fn display(mode: u32) -> String {
    format!("{mode:04o}")
}

fn invalid(input: &str) -> Error {
    Error::Invalid(format!(
        "'{input}' is not a file mode: expected octal digits as chmod takes them, e.g. 0600 \
         (the owner only) or 0660 (owner and group)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_digits_only() {
        assert_eq!(parse("660").unwrap(), 0o660);
        assert_eq!(parse(" 0777 ").unwrap(), 0o777);
        assert_eq!(parse("0").unwrap(), 0);
        assert_eq!(
            parse("1777").unwrap(),
            0o1777,
            "the range check refuses it later"
        );
        for bad in ["", "0o", "0680", "-600", "u=rw", "0x1b6", "0600000000"] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("not a file mode"), "{bad}: {err}");
        }
        assert_eq!(display(0o7), "0007");
    }
}
