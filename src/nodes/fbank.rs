//! `FbankNode`: Kaldi filterbank features (kaldi-native-fbank `OnlineFbank`, torchaudio
//! `compliance.kaldi.fbank`): log mel energies, optionally with the frame's log energy first.
//! The front end is Kaldi's ([`super::kaldi`]); docs and measured parity: `docs/nodes.md#fbanknode`.

use super::kaldi::{kaldi_log, log_energy_floor, specs, KaldiFeature, KaldiFrameParams, KaldiNode};
use super::params::node_params;
use super::{NodeType, ParamKind};

pub const TYPE_NAME: &str = "FbankNode";

node_params! {
    /// `FbankNode`'s own params (the front end's are [`KaldiFrameParams`]).
    pub struct FbankParams {
        num_mel_bins: i64 = 80, ParamKind::Int { min: 3, max: 1024 }, "mel filters (output columns, +1 with use_energy)";
        use_energy: bool = false, ParamKind::Bool, "put the frame's log energy in column 0, before the mel bins";
        use_log_fbank: bool = true, ParamKind::Bool, "natural log of the mel energies (floored at FLT_EPSILON); false: the energies";
        use_power: bool = true, ParamKind::Bool, "mel filters over the power spectrum; false: over the magnitude";
    }
}

/// What `FbankNode` makes of the mel energies.
pub struct Fbank {
    pub params: FbankParams,
    energy_floor: Option<f32>,
}

impl Fbank {
    pub fn new(params: FbankParams, front: &KaldiFrameParams) -> Fbank {
        Fbank { params, energy_floor: log_energy_floor(front) }
    }
}

impl KaldiFeature for Fbank {
    const TYPE_NAME: &'static str = TYPE_NAME;

    fn mel_bins(&self) -> usize {
        self.params.num_mel_bins as usize
    }

    fn use_energy(&self) -> bool {
        self.params.use_energy
    }

    fn use_magnitude(&self) -> bool {
        !self.params.use_power
    }

    fn dim(&self) -> usize {
        self.mel_bins() + self.params.use_energy as usize
    }

    fn frame(&self, mel: &mut [f32], log_energy: f32, out: &mut [f32]) {
        let at = self.params.use_energy as usize;
        if self.params.use_energy {
            out[0] = self.energy_floor.map_or(log_energy, |f| log_energy.max(f));
        }
        for (o, m) in out[at..].iter_mut().zip(mel.iter()) {
            *o = if self.params.use_log_fbank { kaldi_log(*m) } else { *m };
        }
    }
}

pub fn node_type() -> NodeType {
    NodeType {
        params: specs(FbankParams::specs()),
        stateful: true,
        ..NodeType::new(
            TYPE_NAME,
            "Kaldi filterbank features (kaldi-native-fbank / torchaudio compliance.kaldi.fbank): mono audio \
             in, features out (frames x num_mel_bins, +1 log-energy column first with use_energy). Defaults: \
             25 ms povey frames every 10 ms, snip_edges, DC removal, pre-emphasis 0.97, 80 bins from 20 Hz to \
             Nyquist, dither 0.",
            |cfg| {
                let front = KaldiFrameParams::from_params(cfg.params)?;
                let fbank = Fbank::new(FbankParams::from_params(cfg.params)?, &front);
                Ok(Box::new(KaldiNode::new(fbank, front)))
            },
        )
    }
}
