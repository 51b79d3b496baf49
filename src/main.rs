//! The `maskprep` binary: parse, run, print the error chain, pick the exit
//! code (all in [`maskprep::main_from`], which the Python wheel runs too).

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(maskprep::main_from(std::env::args_os()))
}
