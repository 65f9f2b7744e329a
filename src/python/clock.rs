//! A Python clock object (`remotemedia.clock.FakeClock` or any object with `now()` and `sleep()`)
//! as the engine's [`Clock`], so Python tests drive retry delays and breaker cooldowns on the
//! native runtime with the same fake clock as on the pure one. Each reading takes the GIL: meant
//! for tests, not for production pipelines (those use the engine's own clock).

use std::time::Duration;

use pyo3::prelude::*;

use crate::runtime::Clock;

pub struct PyClock {
    obj: Py<PyAny>,
    /// The clock's `virtual` attribute: waiting means calling its `sleep`, which moves its time.
    virtual_time: bool,
}

impl PyClock {
    pub fn new(obj: &Bound<'_, PyAny>) -> PyResult<PyClock> {
        if !obj.hasattr("now")? {
            return Err(pyo3::exceptions::PyTypeError::new_err("a clock needs a now() method returning seconds"));
        }
        let virtual_time = obj.getattr("virtual").and_then(|v| v.is_truthy()).unwrap_or(false);
        Ok(PyClock { obj: obj.clone().unbind(), virtual_time })
    }
}

/// Seconds from Python as a duration; negative, NaN or huge readings are clamped, never a panic.
fn seconds(s: f64) -> Duration {
    if s.is_nan() || s <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX)
    }
}

impl Clock for PyClock {
    fn now(&self) -> Duration {
        Python::attach(|py| {
            let reading = self.obj.bind(py).call_method0("now").and_then(|v| v.extract::<f64>());
            match reading {
                Ok(s) => seconds(s),
                Err(e) => {
                    e.write_unraisable(py, Some(self.obj.bind(py)));
                    Duration::ZERO
                }
            }
        })
    }

    fn wait_until(&self, due: Duration) -> Duration {
        let wait = due.saturating_sub(self.now());
        if !self.virtual_time {
            return wait;
        }
        Python::attach(|py| {
            if let Err(e) = self.obj.bind(py).call_method1("sleep", (wait.as_secs_f64(),)) {
                e.write_unraisable(py, Some(self.obj.bind(py)));
            }
        });
        Duration::ZERO
    }
}
