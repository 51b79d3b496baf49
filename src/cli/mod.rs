//! The command line, one file per job:
//! - [`flags`]: clap's definitions (what a user can type, and `--help`);
//! - [`partition`]: `--partition I/N` or `auto` from a Slurm job array or a
//!   Kubernetes Indexed Job;
//! - [`validate`]: the rules flags must meet, each a typed [`UsageError`],
//!   turning flags into one config per command;
//! - [`config`]: those configs ([`Command`]), which the commands run.
//!
//! clap types go no further than `cli`.

pub mod config;
pub mod flags;
pub mod partition;
pub mod validate;

pub use config::*;
pub use flags::Cli;
pub use partition::{PartitionArg, auto_partition};
pub use validate::UsageError;
