//! `remotemedia limits`: the engine's limits as pretty JSON (the `limits` of `remotemedia schema`,
//! what the pure-Python runtime enforces).

use clap::Args;

use super::CliError;

#[derive(Debug, Args)]
pub struct LimitsArgs {}

pub fn run(_args: &LimitsArgs, out: &mut String) -> Result<(), CliError> {
    super::push_json(out, &crate::limits::describe(), "the limits")
}
