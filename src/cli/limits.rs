//! `remotemedia limits`: the engine's limits as pretty JSON (the `limits` of `remotemedia schema`,
//! what the pure-Python runtime enforces).

use clap::Args;

use super::CliError;

#[derive(Debug, Args)]
pub struct LimitsArgs {}

pub fn run(_args: &LimitsArgs, out: &mut String) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(&crate::limits::describe())
        .map_err(|e| CliError::failure(format!("cannot encode the limits: {e}")))?;
    out.push_str(&text);
    out.push('\n');
    Ok(())
}
