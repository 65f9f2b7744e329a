//! `remotemedia graph`: the validated pipeline as Graphviz DOT.

use std::path::PathBuf;

use clap::Args;

use super::{load_graph, CliError};

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The pipeline manifest (.json, .yaml or .yml).
    pub manifest: PathBuf,
}

pub fn run(args: &GraphArgs, out: &mut String) -> Result<(), CliError> {
    let graph = load_graph(&args.manifest)?;
    out.push_str(&graph.to_dot());
    Ok(())
}
