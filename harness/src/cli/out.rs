//! Standard output and standard error, without panics and without silent failure.
//!
//! Every command writes through [`Out`]. When stdout is a closed pipe (`vipt replay | head`),
//! later writes are skipped and the command ends with its own status; any other write failure
//! (a full disk, `/dev/full`) ends it with status 2 and one line on stderr. Messages on
//! stderr are always one line: control characters escaped and long input cut.

use std::io::{self, Write};

use super::status::Status;
use vipt_harness::text::shown;

/// The longest message line written to stderr.
const MAX_LINE: usize = 400;

/// Standard output, remembering how writing went.
pub(crate) struct Out {
    out: io::Stdout,
    /// Stdout is a closed pipe: nothing more is written.
    closed: bool,
    /// A write failed for another reason.
    failed: Option<io::Error>,
}

impl Out {
    pub(crate) fn new() -> Self {
        Out { out: io::stdout(), closed: false, failed: None }
    }

    /// Writes one line (unless writing already failed).
    pub(crate) fn line(&mut self, args: std::fmt::Arguments<'_>) {
        if self.closed || self.failed.is_some() {
            return;
        }
        let r = self.out.write_fmt(args).and_then(|()| self.out.write_all(b"\n"));
        self.note(r);
    }

    fn note(&mut self, r: io::Result<()>) {
        match r {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => self.closed = true,
            Err(e) => self.failed = Some(e),
        }
    }

    /// Flushes and gives the exit status: `status`, unless writing failed (other than on a
    /// closed pipe), which is status 2 with one line on stderr.
    pub(crate) fn finish(mut self, status: Status) -> Status {
        if !self.closed && self.failed.is_none() {
            let r = self.out.flush();
            self.note(r);
        }
        match self.failed.take() {
            Some(e) => {
                error(&format!("cannot write to standard output: {e}"));
                Status::Error
            }
            None => status,
        }
    }
}

/// `println!` through an [`Out`].
macro_rules! outln {
    ($out:expr) => { $out.line(format_args!("")) };
    ($out:expr, $($t:tt)*) => { $out.line(format_args!($($t)*)) };
}
pub(crate) use outln;

/// `msg` as one line of at most [`MAX_LINE`] characters, control characters escaped.
pub(crate) fn one_line(msg: &str) -> String {
    let flat: String = msg.trim_end().chars().map(|c| if c == '\n' { ' ' } else { c }).collect();
    let s = if flat.chars().any(char::is_control) { shown_all(&flat) } else { flat };
    if s.chars().count() <= MAX_LINE {
        s
    } else {
        let cut: String = s.chars().take(MAX_LINE).collect();
        format!("{cut}… ({} characters)", s.chars().count())
    }
}

/// Every control character of `s` escaped (no length limit).
fn shown_all(s: &str) -> String {
    s.chars()
        .flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] })
        .collect()
}

/// Writes `vipt: <msg>` as one line on stderr; a failure to write it is ignored (there is
/// nowhere left to say it).
pub(crate) fn error(msg: &str) {
    let _ = writeln!(io::stderr(), "vipt: {}", one_line(msg));
}

/// Writes `vipt: warning: <msg>` as one line on stderr.
pub(crate) fn warn(msg: &str) {
    error(&format!("warning: {msg}"));
}

/// A user-supplied string as a message shows it.
pub(crate) fn q(s: &str) -> String {
    shown(s)
}
