//! Exit statuses and the failure that ends a command with status 2.

use std::process::ExitCode;

/// How a command ends. The numbers are the process's exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Status {
    /// Clean: every scenario finished without a violation (or the command did its job).
    Clean = 0,
    /// A violation was found.
    Violation = 1,
    /// Bad input or environment: bad arguments or files, output that cannot be written.
    Error = 2,
    /// No violation, but a scenario did not finish (deadlock, livelock, step budget).
    Unfinished = 3,
}

impl Status {
    /// The status of a run or a set of runs: a violation wins over an unfinished scenario.
    pub(crate) fn of(violation: bool, unfinished: bool) -> Status {
        match (violation, unfinished) {
            (true, _) => Status::Violation,
            (false, true) => Status::Unfinished,
            (false, false) => Status::Clean,
        }
    }

    pub(crate) fn code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }
}

/// The exit-status table of `--help` (the README has the same).
pub(crate) const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  clean: every scenario finished with no violation; for campaign, compare, merge,
     lineages, cost and shrink, the command did its job (shrink: the minimal reproducer is
     written)
  1  a violation was found (check, replay, import-fuzz)
  2  bad input or environment: bad arguments, an unreadable or invalid file, output that
     cannot be written (an unusable --out, a full disk); one line on stderr says why
  3  no violation, but a scenario did not finish: a deadlock, a livelock or its step budget
     (check, replay, import-fuzz); when both happen, 1 wins
A closed pipe on stdout ends the output quietly with the command's own status.";

/// A failure of the command: one line on stderr, exit status 2.
#[derive(Debug)]
pub(crate) struct Failure(pub(crate) String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

/// A command's result.
pub(crate) type CmdResult = Result<Status, Failure>;
