//! Quoting user input in messages: a name or a path is shown as given, but never longer than a
//! line and never with control characters (a message stays one line, whatever was typed).

/// The most characters of a user-supplied string a message shows.
pub const SHOWN_CHARS: usize = 60;

/// `s` as a message shows it: control characters escaped, cut after [`SHOWN_CHARS`]
/// characters with `…` and the full length.
pub fn shown(s: &str) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n == SHOWN_CHARS {
            out.push_str(&format!("… ({} bytes)", s.len()));
            return out;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// [`shown`] of a path.
pub fn shown_path(p: &std::path::Path) -> String {
    shown(&p.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_cuts_long_input_and_escapes_control_characters() {
        assert_eq!(shown("linux-6.x"), "linux-6.x");
        assert_eq!(shown("a\nb\tc"), "a\\nb\\tc");
        let long = "x".repeat(10_000_000);
        let s = shown(&long);
        assert!(s.starts_with(&"x".repeat(SHOWN_CHARS)));
        assert!(s.ends_with("… (10000000 bytes)"), "{s}");
        assert!(s.len() < 100);
    }
}
