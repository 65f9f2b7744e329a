//! `remotemedia node-types`: every built-in node type as pretty JSON (the `node_types` of
//! `remotemedia schema`).

use clap::Args;

use super::CliError;
use crate::nodes::Registry;

#[derive(Debug, Args)]
pub struct NodeTypesArgs {}

pub fn run(_args: &NodeTypesArgs, out: &mut String) -> Result<(), CliError> {
    super::push_json(out, &Registry::builtin().describe(), "node types")
}
