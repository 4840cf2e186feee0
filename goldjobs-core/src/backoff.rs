//! One exponential backoff for every wait-and-try-again in goldjobs: retries of a run, outbox
//! redelivery, reconnects of the Redis event bus (and of market streams and feeds later).
//!
//! A [`Backoff`] is plain data (`initial`, `max`, [`Jitter`]); the random part of a jittered
//! wait comes from a [`RandomSource`] passed in by the caller, so tests can make it
//! reproducible ([`SeededRandom`]) or pin it ([`Jitter::None`]). [`BackoffState`] is the
//! stateful form for a loop that retries until it succeeds and then starts over.
//!
//! ```
//! use goldjobs_core::backoff::{Backoff, Jitter, SeededRandom};
//! use std::time::Duration;
//!
//! let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
//! assert_eq!(b.ceiling(0), Duration::from_millis(100));
//! assert_eq!(b.ceiling(3), Duration::from_millis(800));
//! assert_eq!(b.ceiling(4), Duration::from_secs(1)); // capped
//! let random = SeededRandom::new(7);
//! assert!(b.delay(2, &random) <= b.ceiling(2)); // full jitter: uniform in [0, ceiling]
//! let exact = b.with_jitter(Jitter::None);
//! assert_eq!(exact.delay(2, &random), Duration::from_millis(400));
//! ```

use rand::{Rng, SeedableRng};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where the random part of a jittered wait comes from.
pub trait RandomSource: Send + Sync + 'static {
    /// A uniformly distributed integer in `[0, max]` (inclusive).
    fn up_to(&self, max: u64) -> u64;
}

/// The thread-local generator of `rand`: the default everywhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadRandom;

impl RandomSource for ThreadRandom {
    fn up_to(&self, max: u64) -> u64 {
        if max == 0 {
            0
        } else {
            rand::thread_rng().gen_range(0..=max)
        }
    }
}

/// A seeded generator: the same seed gives the same sequence (tests, simulations).
pub struct SeededRandom(Mutex<rand::rngs::StdRng>);

impl SeededRandom {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SeededRandom(Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)))
    }
}

impl fmt::Debug for SeededRandom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeededRandom").finish_non_exhaustive()
    }
}

impl RandomSource for SeededRandom {
    fn up_to(&self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mut rng = self.0.lock().unwrap_or_else(|e| e.into_inner());
        rng.gen_range(0..=max)
    }
}

/// The shared default source.
pub fn thread_random() -> Arc<dyn RandomSource> {
    Arc::new(ThreadRandom)
}

/// How the wait is spread below its ceiling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Jitter {
    /// Exactly the ceiling (deterministic; for redelivery schedules people read).
    None,
    /// Uniform in `[0, ceiling]` ("full jitter"): spreads many clients retrying at once the
    /// most, at the price of sometimes retrying almost immediately.
    #[default]
    Full,
    /// Uniform in `[ceiling / 2, ceiling]`: spread, but never much shorter than the ceiling.
    Equal,
}

/// Capped exponential backoff: the `n`-th wait (0-based) has the ceiling
/// `min(max, initial × 2^n)`, spread below it by the [`Jitter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first wait.
    pub initial: Duration,
    /// The cap of every wait.
    pub max: Duration,
    /// How a wait is spread below its ceiling (default [`Jitter::Full`]).
    pub jitter: Jitter,
}

impl Backoff {
    /// `initial`, `2 × initial`, … capped at `max`, with full jitter.
    pub const fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            jitter: Jitter::Full,
        }
    }

    /// The same backoff with another jitter.
    pub const fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The ceiling of wait number `n` (0 = the first): `min(max, initial × 2^n)`; never
    /// overflows.
    pub fn ceiling(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX);
        self.initial
            .checked_mul(factor)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// Wait number `n` (0 = the first), jittered with `random`.
    pub fn delay(&self, n: u32, random: &dyn RandomSource) -> Duration {
        let ceiling = self.ceiling(n);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        match self.jitter {
            Jitter::None => ceiling,
            Jitter::Full => Duration::from_nanos(random.up_to(nanos)),
            Jitter::Equal => {
                let half = nanos / 2;
                Duration::from_nanos(half.saturating_add(random.up_to(nanos - half)))
            }
        }
    }

    /// Wait number `n`, but never shorter than what the other side asked for (`Retry-After`).
    pub fn delay_honouring(
        &self,
        n: u32,
        retry_after: Option<Duration>,
        random: &dyn RandomSource,
    ) -> Duration {
        let own = self.delay(n, random);
        match retry_after {
            Some(ra) if ra > own => ra,
            _ => own,
        }
    }

    /// The stateful form: [`BackoffState::next_delay`] walks the waits, `reset` starts over.
    pub fn state(self, random: Arc<dyn RandomSource>) -> BackoffState {
        BackoffState {
            backoff: self,
            n: 0,
            random,
        }
    }
}

/// A [`Backoff`] being walked by a loop: each failure takes the next wait, a success resets.
#[derive(Clone)]
pub struct BackoffState {
    backoff: Backoff,
    n: u32,
    random: Arc<dyn RandomSource>,
}

impl fmt::Debug for BackoffState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackoffState")
            .field("backoff", &self.backoff)
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

impl BackoffState {
    /// The next wait; the one after it is twice as long (up to the cap).
    pub fn next_delay(&mut self) -> Duration {
        let d = self.backoff.delay(self.n, &*self.random);
        self.n = self.n.saturating_add(1);
        d
    }

    /// Waits taken since the last reset.
    pub fn failures(&self) -> u32 {
        self.n
    }

    /// Back to the first wait (after a success).
    pub fn reset(&mut self) {
        self.n = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Always the top of the range.
    struct Top;
    impl RandomSource for Top {
        fn up_to(&self, max: u64) -> u64 {
            max
        }
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn ceiling_doubles_caps_and_never_overflows() {
        let b = Backoff::new(MS(100), Duration::from_secs(1));
        let seen: Vec<_> = (0..6).map(|n| b.ceiling(n)).collect();
        assert_eq!(seen, [100, 200, 400, 800, 1000, 1000].map(MS));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(1));
        let huge = Backoff::new(Duration::MAX, Duration::MAX);
        assert_eq!(huge.ceiling(40), Duration::MAX);
        assert_eq!(
            Backoff::new(Duration::ZERO, MS(5)).ceiling(3),
            Duration::ZERO
        );
    }

    #[test]
    fn jitter_stays_in_its_range() {
        let b = Backoff::new(MS(100), Duration::from_secs(10));
        let r = SeededRandom::new(1);
        for n in 0..8 {
            for _ in 0..200 {
                let full = b.delay(n, &r);
                assert!(full <= b.ceiling(n));
                let equal = b.with_jitter(Jitter::Equal).delay(n, &r);
                assert!(equal >= b.ceiling(n) / 2 && equal <= b.ceiling(n));
            }
            assert_eq!(b.with_jitter(Jitter::None).delay(n, &r), b.ceiling(n));
            assert_eq!(b.delay(n, &Top), b.ceiling(n));
        }
    }

    #[test]
    fn seeded_sources_repeat_and_full_jitter_spreads() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1));
        let a: Vec<_> = (0..50).map(|_| b.delay(0, &SeededRandom::new(9))).collect();
        assert!(
            a.windows(2).all(|w| w[0] == w[1]),
            "same seed, same first draw"
        );
        let r = SeededRandom::new(9);
        let spread: Vec<_> = (0..200).map(|_| b.delay(0, &r)).collect();
        let below_half = spread.iter().filter(|d| **d < MS(500)).count();
        assert!(
            (50..150).contains(&below_half),
            "{below_half} of 200 below half"
        );
    }

    #[test]
    fn retry_after_wins_when_longer() {
        let b = Backoff::new(MS(100), MS(400)).with_jitter(Jitter::None);
        let r = ThreadRandom;
        assert_eq!(
            b.delay_honouring(0, Some(Duration::from_secs(30)), &r),
            Duration::from_secs(30)
        );
        assert_eq!(b.delay_honouring(2, Some(MS(1)), &r), MS(400));
        assert_eq!(b.delay_honouring(1, None, &r), MS(200));
    }

    #[test]
    fn state_walks_and_resets() {
        let mut s = Backoff::new(MS(100), MS(5000))
            .with_jitter(Jitter::None)
            .state(thread_random());
        let seen: Vec<_> = (0..9).map(|_| s.next_delay()).collect();
        assert_eq!(
            seen,
            [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000].map(MS)
        );
        assert_eq!(s.failures(), 9);
        s.reset();
        assert_eq!(s.next_delay(), MS(100));
    }
}
