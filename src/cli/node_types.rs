//! `remotemedia node-types`: every built-in node type as pretty JSON (the `node_types` of
//! `remotemedia schema`).

use clap::Args;

use super::CliError;
use crate::nodes::Registry;

#[derive(Debug, Args)]
pub struct NodeTypesArgs {}

pub fn run(_args: &NodeTypesArgs, out: &mut String) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(&Registry::builtin().describe())
        .map_err(|e| CliError::failure(format!("cannot encode node types: {e}")))?;
    out.push_str(&text);
    out.push('\n');
    Ok(())
}
