//! The `maskprep` binary: parse, run, print the error chain, pick the exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = maskprep::cli::Cli::parse();
    match maskprep::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if maskprep::output::is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("maskprep: error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}
