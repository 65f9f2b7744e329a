//! `remotemedia schema`: the engine's facts as one pretty JSON document (`crate::schema`), the
//! source of `python/remotemedia/schema.json` and, through `scripts/gen.py`, of the stubs and docs tables.

use clap::Args;

use super::CliError;

#[derive(Debug, Args)]
pub struct SchemaArgs {}

pub fn run(_args: &SchemaArgs, out: &mut String) -> Result<(), CliError> {
    super::push_json(out, &crate::schema::describe(), "the schema")
}
