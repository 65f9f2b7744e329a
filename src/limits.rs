//! The engine's limits on what users hand it, written once: manifests, values passed between
//! Python nodes, worker counts, a resampler's state. The manifest reader, the Python conversions
//! and the resampler read them from here; `remotemedia limits` prints them as the JSON the
//! pure-Python runtime ships (the `limits` of `python/remotemedia/schema.json`), so both runtimes refuse the
//! same inputs. docs/reliability.md tabulates them with what a user sees when one is exceeded.

use serde_json::{json, Value};

/// Largest manifest text or file, in bytes (UTF-8). Checked before the text is read or parsed.
pub const MANIFEST_BYTES: usize = 4 << 20;
/// Deepest nesting of lists and mappings in a manifest (the top-level mapping is level 1).
/// Checked on the text before parsing (`manifest::nesting`), and on the tree as it is built.
pub const MANIFEST_NESTING: usize = 64;
/// Most values (lists, mappings and scalars; every use of a YAML alias counts its whole value
/// again) in one manifest tree. Checked while the tree is built.
pub const MANIFEST_VALUES: usize = 1_000_000;
/// Longest string (a key or a value) in a manifest, in bytes (UTF-8).
pub const MANIFEST_STRING_BYTES: usize = 65_536;
/// Most nodes in a manifest. Checked before any node is looked at.
pub const MANIFEST_NODES: usize = 10_000;
/// Most edges in a manifest. Checked before any edge is looked at.
pub const MANIFEST_EDGES: usize = 100_000;
/// Most timely workers a pipeline (`config.workers`, `--workers`, `run_batch(workers=)`) may ask for.
pub const WORKERS: usize = 256;
/// Deepest nesting of lists, tuples and dicts in a value a Python node returns (the value itself
/// is level 0); a container that contains itself is refused as such.
pub const VALUE_NESTING: usize = 100;
/// Most values (containers and scalars, numpy array elements included) in one value a Python
/// node returns.
pub const VALUE_ITEMS: usize = 1_000_000;
/// Longest FFT block a resampler may need, in frames of either rate: rate pairs whose common
/// divisor is so small that their blocks would be longer are refused (any two rates that are
/// multiples of 25 Hz stay well below it at every quality).
pub const RESAMPLER_BLOCK_FRAMES: usize = 1 << 15;
/// Most samples (block frames times channels) a resampler's blocks may hold: bounds its state
/// whatever the channel count.
pub const RESAMPLER_BLOCK_SAMPLES: usize = 1 << 20;

/// Most streaming sessions open at once on one pipeline (`pipeline.stream()`): each holds its
/// own state for every stateful node (a resampler's blocks, a VAD's frame). Enforced where
/// sessions are opened for both runtimes (`python/remotemedia/session.py`).
pub const STREAM_SESSIONS: usize = 1024;

/// Every limit with its value and what it bounds, as `remotemedia limits` prints it.
pub fn describe() -> Value {
    json!({
        "manifest_bytes": MANIFEST_BYTES,
        "manifest_nesting": MANIFEST_NESTING,
        "manifest_values": MANIFEST_VALUES,
        "manifest_string_bytes": MANIFEST_STRING_BYTES,
        "manifest_nodes": MANIFEST_NODES,
        "manifest_edges": MANIFEST_EDGES,
        "workers": WORKERS,
        "value_nesting": VALUE_NESTING,
        "value_items": VALUE_ITEMS,
        "resampler_block_frames": RESAMPLER_BLOCK_FRAMES,
        "resampler_block_samples": RESAMPLER_BLOCK_SAMPLES,
        "stream_sessions": STREAM_SESSIONS,
    })
}
