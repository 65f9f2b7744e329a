//! The `REMOTEMEDIA_*` engine switches, parsed in one place and strictly: a value that is not one
//! of those a switch accepts is an error naming the variable, the value and what it takes, instead
//! of being read as "unset". The pool switches are read once per pool ([`Tuning::from_env`], when a
//! pool starts); the process-wide ones are checked there too and read where they act (once per
//! process). docs/architecture.md tabulates them from [`SWITCHES`].

use std::time::Duration;

use crate::error::Error;

/// What a switch accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwitchKind {
    /// `1`, `true`, `on` or `0`, `false`, `off`.
    Flag,
    /// Whole microseconds, 0 to [`MAX_SPIN_US`].
    Micros,
}

/// One switch: its variable, what it accepts, and what it does.
pub struct Switch {
    pub name: &'static str,
    pub kind: SwitchKind,
    /// Read once per pool (else once per process).
    pub per_pool: bool,
    pub doc: &'static str,
}

pub const PIN_WORKERS: &str = "REMOTEMEDIA_PIN_WORKERS";
pub const REPLY_SPIN_US: &str = "REMOTEMEDIA_REPLY_SPIN_US";
pub const IDLE_SPIN_US: &str = "REMOTEMEDIA_IDLE_SPIN_US";
pub const BALANCE: &str = "REMOTEMEDIA_BALANCE";
pub const KEEP_MALLOC: &str = "REMOTEMEDIA_KEEP_MALLOC";
pub const NO_SIMD: &str = "REMOTEMEDIA_NO_SIMD";
pub const SCALAR_IIR: &str = "REMOTEMEDIA_SCALAR_IIR";

/// Longest spin a switch may ask for (one second).
pub const MAX_SPIN_US: u64 = 1_000_000;

/// Every switch, in the order docs/architecture.md lists them.
pub const SWITCHES: &[Switch] = &[
    Switch { name: PIN_WORKERS, kind: SwitchKind::Flag, per_pool: true,
             doc: "pin workers to CPUs: unset pins pools of 2+ workers that fit the CPUs; 1 also single-worker pools; 0 never" },
    Switch { name: REPLY_SPIN_US, kind: SwitchKind::Micros, per_pool: true,
             doc: "how long a caller polls for its reply before blocking (default 100; 0 turns polling off)" },
    Switch { name: IDLE_SPIN_US, kind: SwitchKind::Micros, per_pool: true,
             doc: "how long an idle worker polls before parking (default 100 with a core to itself, else timely's 10)" },
    Switch { name: BALANCE, kind: SwitchKind::Flag, per_pool: true,
             doc: "0: place batch items on workers by index when a part starts, instead of each free worker taking the next (for comparisons; default 1)" },
    Switch { name: KEEP_MALLOC, kind: SwitchKind::Flag, per_pool: false,
             doc: "1: keep glibc's malloc thresholds (default: raised, so large buffers are reused)" },
    Switch { name: NO_SIMD, kind: SwitchKind::Flag, per_pool: false,
             doc: "1: every kernel of the nodes' own on its portable path, without AVX2/FMA/AVX-512 (for comparisons; the FFT crates choose their own)" },
    Switch { name: SCALAR_IIR, kind: SwitchKind::Flag, per_pool: false,
             doc: "1: FilterNode's scalar loop instead of the AVX2/FMA block kernel (for comparisons)" },
];

/// Whether to pin a pool's workers to CPUs (`REMOTEMEDIA_PIN_WORKERS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PinSetting {
    /// Pools of two or more workers that fit the CPUs (unset).
    #[default]
    Auto,
    /// Never.
    Off,
    /// Every pool that fits the CPUs, single-worker ones included.
    Always,
}

/// The pool switches, as one pool reads them when it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Tuning {
    pub pin: PinSetting,
    /// `None`: the pool's default.
    pub reply_spin: Option<Duration>,
    /// `None`: the pool's default for its core count.
    pub idle_spin: Option<Duration>,
    /// Let free workers take a batch's items, and place single runs by outstanding work (else
    /// place every item by index).
    pub balance: bool,
}

impl Tuning {
    /// The switches from the process environment; every switch, the process-wide ones included,
    /// is checked, so a mistyped value fails the first pool instead of being ignored.
    pub fn from_env() -> Result<Tuning, Error> {
        Tuning::parse(|name| std::env::var(name).ok()).map_err(Error::Input)
    }

    /// The switches from `get` (a variable's value, or `None` when unset).
    pub fn parse(get: impl Fn(&str) -> Option<String>) -> Result<Tuning, String> {
        for s in SWITCHES {
            let value = get(s.name);
            match s.kind {
                SwitchKind::Flag => parse_flag(s.name, value.as_deref()).map(drop)?,
                SwitchKind::Micros => parse_micros(s.name, value.as_deref()).map(drop)?,
            }
        }
        let flag = |name| parse_flag(name, get(name).as_deref());
        let micros = |name| parse_micros(name, get(name).as_deref());
        let pin = match flag(PIN_WORKERS)? {
            None => PinSetting::Auto,
            Some(true) => PinSetting::Always,
            Some(false) => PinSetting::Off,
        };
        Ok(Tuning { pin, reply_spin: micros(REPLY_SPIN_US)?, idle_spin: micros(IDLE_SPIN_US)?, balance: flag(BALANCE)?.unwrap_or(true) })
    }
}

/// A flag's value: `Some(true)` for 1/true/on, `Some(false)` for 0/false/off, `None` when unset
/// or empty; anything else is an error that says what the switch takes.
pub fn parse_flag(name: &str, value: Option<&str>) -> Result<Option<bool>, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some("1" | "true" | "on") => Ok(Some(true)),
        Some("0" | "false" | "off") => Ok(Some(false)),
        Some(other) => Err(format!("environment variable {name}={other:?}: expected 1, true, on, 0, false or off (or unset)")),
    }
}

/// A duration in whole microseconds, 0 to [`MAX_SPIN_US`]; `None` when unset or empty.
pub fn parse_micros(name: &str, value: Option<&str>) -> Result<Option<Duration>, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => match v.parse::<u64>() {
            Ok(us) if us <= MAX_SPIN_US => Ok(Some(Duration::from_micros(us))),
            _ => Err(format!("environment variable {name}={v:?}: expected whole microseconds from 0 to {MAX_SPIN_US} (or unset)")),
        },
    }
}

/// Whether a process-wide flag is on. [`Tuning::from_env`] has rejected a bad value when the
/// first pool started; read before that (or without a pool), a bad value counts as off.
pub fn flag_on(name: &str) -> bool {
    parse_flag(name, std::env::var(name).ok().as_deref()).ok().flatten().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuning(vars: &[(&str, &str)]) -> Result<Tuning, String> {
        Tuning::parse(|name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn unset_is_the_defaults() {
        assert_eq!(tuning(&[]), Ok(Tuning { pin: PinSetting::Auto, reply_spin: None, idle_spin: None, balance: true }));
    }

    #[test]
    fn values_are_read() {
        let t = tuning(&[(PIN_WORKERS, "off"), (REPLY_SPIN_US, " 0 "), (IDLE_SPIN_US, "250"), (BALANCE, "0")]).unwrap();
        assert_eq!(t, Tuning { pin: PinSetting::Off, reply_spin: Some(Duration::ZERO), idle_spin: Some(Duration::from_micros(250)), balance: false });
        assert_eq!(tuning(&[(PIN_WORKERS, "1")]).unwrap().pin, PinSetting::Always);
    }

    #[test]
    fn unknown_values_are_rejected_by_name() {
        assert_eq!(
            tuning(&[(PIN_WORKERS, "yes")]),
            Err("environment variable REMOTEMEDIA_PIN_WORKERS=\"yes\": expected 1, true, on, 0, false or off (or unset)".into())
        );
        let e = tuning(&[(IDLE_SPIN_US, "10ms")]).unwrap_err();
        assert!(e.starts_with("environment variable REMOTEMEDIA_IDLE_SPIN_US=\"10ms\": expected whole microseconds"), "{e}");
        assert!(tuning(&[(REPLY_SPIN_US, "1000001")]).is_err());
        // The process-wide switches are checked with the pool's.
        assert!(tuning(&[(SCALAR_IIR, "2")]).unwrap_err().contains("REMOTEMEDIA_SCALAR_IIR"));
    }
}
