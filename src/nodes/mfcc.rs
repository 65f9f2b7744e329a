//! `MfccNode`: Kaldi MFCCs (kaldi-native-fbank `OnlineMfcc`, torchaudio `compliance.kaldi.mfcc`):
//! the DCT-II (orthonormal) of the log mel energies, first `num_ceps` kept, cepstral liftering,
//! coefficient 0 replaced by the frame's log energy with `use_energy`. The front end is Kaldi's
//! ([`super::kaldi`]); docs and measured parity: `docs/nodes.md#mfccnode`.

use super::kaldi::{kaldi_log, log_energy_floor, specs, KaldiFeature, KaldiFrameParams, KaldiNode};
use super::params::node_params;
use super::{NodeType, ParamKind, Params};
use crate::error::NodeError;

pub const TYPE_NAME: &str = "MfccNode";

node_params! {
    /// `MfccNode`'s own params (the front end's are [`KaldiFrameParams`]); Kaldi's MFCC defaults.
    pub struct MfccParams {
        num_mel_bins: i64 = 23, ParamKind::Int { min: 3, max: 1024 }, "mel filters the cepstra are computed from";
        num_ceps: i64 = 13, ParamKind::Int { min: 1, max: 1024 }, "cepstral coefficients kept (output columns), at most num_mel_bins";
        use_energy: bool = true, ParamKind::Bool, "replace coefficient 0 by the frame's log energy";
        cepstral_lifter: f64 = 22.0, ParamKind::Float { min: 0.0, max: 10000.0 },
            "liftering constant Q: coefficient i times 1 + Q/2 sin(pi i / Q); 0: none";
    }
}

/// What `MfccNode` makes of the mel energies: a precomputed DCT and lifter.
pub struct Mfcc {
    pub params: MfccParams,
    /// `num_ceps × num_mel_bins`, row-major (Kaldi's `ComputeDctMatrix`).
    dct: Vec<f32>,
    lifter: Vec<f32>,
    energy_floor: Option<f32>,
}

impl Mfcc {
    pub fn new(params: MfccParams, front: &KaldiFrameParams) -> Result<Mfcc, NodeError> {
        let (ceps, bins) = (params.num_ceps as usize, params.num_mel_bins as usize);
        if ceps > bins {
            return Err(NodeError::permanent(format!(
                "param 'num_ceps' ({ceps}) must be at most num_mel_bins ({bins})"
            )));
        }
        let dct = (0..ceps)
            .flat_map(|k| {
                (0..bins).map(move |n| {
                    let norm = if k == 0 { (1.0 / bins as f64).sqrt() } else { (2.0 / bins as f64).sqrt() };
                    (norm * (std::f64::consts::PI / bins as f64 * (n as f64 + 0.5) * k as f64).cos()) as f32
                })
            })
            .collect();
        let q = params.cepstral_lifter;
        let lifter = (0..ceps)
            .map(|i| if q == 0.0 { 1.0 } else { (1.0 + 0.5 * q * (std::f64::consts::PI * i as f64 / q).sin()) as f32 })
            .collect();
        Ok(Mfcc { params, dct, lifter, energy_floor: log_energy_floor(front) })
    }
}

impl KaldiFeature for Mfcc {
    const TYPE_NAME: &'static str = TYPE_NAME;

    fn mel_bins(&self) -> usize {
        self.params.num_mel_bins as usize
    }

    fn use_energy(&self) -> bool {
        self.params.use_energy
    }

    fn dim(&self) -> usize {
        self.params.num_ceps as usize
    }

    fn frame(&self, mel: &mut [f32], log_energy: f32, out: &mut [f32]) {
        mel.iter_mut().for_each(|m| *m = kaldi_log(*m));
        for ((o, row), l) in out.iter_mut().zip(self.dct.chunks_exact(mel.len())).zip(&self.lifter) {
            *o = row.iter().zip(mel.iter()).map(|(a, b)| a * b).sum::<f32>() * l;
        }
        if self.params.use_energy {
            out[0] = self.energy_floor.map_or(log_energy, |f| log_energy.max(f));
        }
    }
}

/// Validation's cross-param check (mirrored in `_pure/validate.py`): Kaldi keeps at most as many
/// cepstra as there are mel bins.
fn check_ceps(params: &Params) -> Vec<(String, String, String)> {
    match MfccParams::from_params(params) {
        Ok(m) if m.num_ceps > m.num_mel_bins => {
            vec![("num_ceps".into(), format!("at most num_mel_bins ({})", m.num_mel_bins), m.num_ceps.to_string())]
        }
        _ => Vec::new(),
    }
}

pub fn node_type() -> NodeType {
    NodeType {
        params: specs(MfccParams::specs()),
        check: Some(check_ceps),
        stateful: true,
        ..NodeType::new(
            TYPE_NAME,
            "Kaldi MFCCs (kaldi-native-fbank / torchaudio compliance.kaldi.mfcc): mono audio in, features out \
             (frames x num_ceps). Defaults: Kaldi's (23 mel bins, 13 cepstra, lifter 22, log energy as C0) on \
             the Fbank front end (25 ms povey frames every 10 ms, snip_edges, pre-emphasis 0.97), dither 0.",
            |cfg| {
                let front = KaldiFrameParams::from_params(cfg.params)?;
                let mfcc = Mfcc::new(MfccParams::from_params(cfg.params)?, &front)?;
                Ok(Box::new(KaldiNode::new(mfcc, front)))
            },
        )
    }
}
