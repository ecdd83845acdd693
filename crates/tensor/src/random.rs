//! Random tensors from a caller-owned, seeded generator, so every run is reproducible.

use rand::{Rng, RngExt, SeedableRng};
use rand_distr::StandardNormal;

use crate::element::Element;
use crate::layout::element_count_or_panic;
use crate::tensor::Tensor;

/// The generator tapeloop uses everywhere: seeded, portable, reproducible.
pub type TensorRng = rand::rngs::StdRng;

/// A generator seeded with `seed`: the same seed gives the same numbers on every run.
///
/// ```
/// use tapeloop_tensor::{Tensor, seeded_rng};
/// let a = Tensor::<f32>::randn(&[3], &mut seeded_rng(7));
/// let b = Tensor::<f32>::randn(&[3], &mut seeded_rng(7));
/// assert_eq!(a.to_vec(), b.to_vec());
/// ```
pub fn seeded_rng(seed: u64) -> TensorRng {
    TensorRng::seed_from_u64(seed)
}

impl<T: Element> Tensor<T> {
    /// Elements drawn uniformly from `[low, high)`.
    ///
    /// ```
    /// use tapeloop_tensor::{Tensor, seeded_rng};
    /// let u = Tensor::<f64>::rand_uniform(&[100], -0.5, 0.5, &mut seeded_rng(0));
    /// assert!(u.to_vec().iter().all(|&x| (-0.5..0.5).contains(&x)));
    /// ```
    #[track_caller]
    pub fn rand_uniform(shape: &[usize], low: T, high: T, rng: &mut impl Rng) -> Self {
        let (low, span) = (low.to_f64_lossy(), (high - low).to_f64_lossy());
        let data = (0..element_count_or_panic("random", shape))
            .map(|_| T::from_f64_lossy(low + span * rng.random::<f64>()))
            .collect();
        Self::from_contiguous(data, shape)
    }

    /// Elements drawn from the standard normal distribution.
    #[track_caller]
    pub fn randn(shape: &[usize], rng: &mut impl Rng) -> Self {
        let data = (0..element_count_or_panic("random", shape))
            .map(|_| T::from_f64_lossy(rng.sample::<f64, _>(StandardNormal)))
            .collect();
        Self::from_contiguous(data, shape)
    }

    /// Elements drawn from a normal distribution with the given mean and standard deviation.
    pub fn rand_normal(shape: &[usize], mean: T, std: T, rng: &mut impl Rng) -> Self {
        Self::randn(shape, rng).map(|x| mean + std * x)
    }
}
