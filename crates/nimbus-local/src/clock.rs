//! Time for schedules. Real time by default; a scale factor (`NIMBUS_LOCAL_CLOCK_SCALE`) makes
//! schedule time run faster so that tests can watch `rate(1 minute)` fire every second. Only
//! schedules use it: timeouts, visibility and retries always run on real time.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// Schedule time: starts at the real time and runs `scale` times faster.
#[derive(Debug, Clone)]
pub struct Clock {
    start_real: Instant,
    start_time: DateTime<Utc>,
    scale: f64,
}

impl Clock {
    /// A clock running `scale` times real time (values below 1 are taken as 1).
    pub fn new(scale: f64) -> Clock {
        Clock {
            start_real: Instant::now(),
            start_time: Utc::now(),
            scale: if scale.is_finite() && scale > 1.0 {
                scale
            } else {
                1.0
            },
        }
    }

    /// The current schedule time.
    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = self.start_real.elapsed().as_secs_f64() * self.scale;
        self.start_time + chrono::Duration::milliseconds((elapsed * 1000.0) as i64)
    }

    /// How long to really wait until schedule time `at`.
    pub fn real_until(&self, at: DateTime<Utc>) -> Duration {
        let ms = (at - self.now()).num_milliseconds().max(0) as f64 / self.scale;
        Duration::from_millis(ms as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_time_runs_faster() {
        let c = Clock::new(60.0);
        let minute_later = c.now() + chrono::Duration::minutes(1);
        let wait = c.real_until(minute_later);
        assert!(
            wait <= Duration::from_millis(1000) && wait >= Duration::from_millis(900),
            "{wait:?}"
        );
        assert_eq!(Clock::new(0.0).scale, 1.0);
    }
}
