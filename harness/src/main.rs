//! `vipt`: campaigns, checks, replays and shrinking of VIPT cache-flush scenarios.
#![forbid(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
