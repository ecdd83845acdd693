//! [`Dropout`]: zero elements at random in training mode, PyTorch's `nn.Dropout`.

use std::cell::Cell;

use autograd::{Parameter, Var};
use tensor::{Element, Tensor, TensorRng, seeded_rng};

use crate::module::Module;

/// Inverted dropout (Srivastava et al. 2014): in training mode each element is zeroed with
/// probability `p` and the survivors are scaled by `1/(1 − p)`, so evaluation mode is the
/// identity. No parameters.
///
/// The masks are reproducible and resumable: mask number `n` is drawn from a generator seeded
/// by `(seed, n)`, where `seed` comes from the caller's generator at construction. So the same
/// seed gives the same masks, and restoring [`Dropout::seed`] and [`Dropout::draws`] (e.g.
/// from a checkpoint's extra JSON) continues the exact sequence of masks after a resume.
///
/// ```
/// use tapeloop_rnn::nn::Dropout;
/// use tapeloop_rnn::{Module, Tensor, Var, seeded_rng};
///
/// let dropout = Dropout::new(0.5, &mut seeded_rng(0));
/// let x = Var::constant(Tensor::<f64>::ones(&[1000]));
/// let kept = dropout.forward(&x).value().to_vec();
/// assert!(kept.iter().all(|&v| v == 0.0 || v == 2.0)); // survivors scaled by 1/(1 − p)
/// dropout.set_training(false);
/// assert_eq!(dropout.forward(&x).value().to_vec(), vec![1.0; 1000]);
/// ```
pub struct Dropout {
    p: f64,
    seed: Cell<u64>,
    draws: Cell<u64>,
    training: Cell<bool>,
}

impl Dropout {
    /// Dropout with probability `p` of zeroing each element; the mask seed is drawn from `rng`.
    ///
    /// Panics unless `0 ≤ p ≤ 1`.
    #[track_caller]
    pub fn new(p: f64, rng: &mut TensorRng) -> Self {
        assert!(
            (0.0..=1.0).contains(&p),
            "Dropout: probability must be in [0, 1], got {p}"
        );
        Self {
            p,
            seed: Cell::new(rand::RngExt::random::<u64>(rng)),
            draws: Cell::new(0),
            training: Cell::new(true),
        }
    }

    /// The probability of zeroing an element.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// The seed the masks are drawn from.
    pub fn seed(&self) -> u64 {
        self.seed.get()
    }

    /// Replaces the seed, e.g. with the one saved with a checkpoint (together with
    /// [`Dropout::set_draws`]).
    pub fn set_seed(&self, seed: u64) {
        self.seed.set(seed);
    }

    /// How many masks have been drawn so far (the position in the mask sequence).
    pub fn draws(&self) -> u64 {
        self.draws.get()
    }

    /// Moves to a position in the mask sequence, e.g. the one saved with a checkpoint.
    pub fn set_draws(&self, draws: u64) {
        self.draws.set(draws);
    }

    /// Switches training mode (masks drawn) on or off; the same as [`Module::set_training`],
    /// callable without naming an element type.
    pub fn set_training(&self, training: bool) {
        self.training.set(training);
    }

    /// True in training mode.
    pub fn is_training(&self) -> bool {
        self.training.get()
    }

    /// `x` with elements zeroed at random and the rest scaled by `1/(1 − p)` in training mode;
    /// `x` unchanged in evaluation mode or when `p = 0`.
    pub fn forward<T: Element>(&self, x: &Var<T>) -> Var<T> {
        if !self.training.get() || self.p == 0.0 {
            return x.clone();
        }
        if self.p == 1.0 {
            return x * &Var::constant(Tensor::zeros(x.shape()));
        }
        let draw = self.draws.get();
        self.draws.set(draw + 1);
        // A fresh generator per mask, seeded from (seed, draw): the mask sequence is a pure
        // function of two integers, which is what makes it checkpointable.
        let mut rng = seeded_rng(self.seed.get() ^ draw.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let scale = T::from_f64_lossy(1.0 / (1.0 - self.p));
        let p = self.p;
        let mask = Tensor::<f64>::rand_uniform(x.shape(), 0.0, 1.0, &mut rng)
            .cast::<T>()
            .map(|u| {
                if u.to_f64_lossy() >= p {
                    scale
                } else {
                    T::zero()
                }
            });
        x * &Var::constant(mask)
    }
}

impl<T: Element> Module<T> for Dropout {
    fn named_parameters(&self) -> Vec<(String, Parameter<T>)> {
        Vec::new()
    }

    fn set_training(&self, training: bool) {
        Dropout::set_training(self, training);
    }

    fn is_training(&self) -> bool {
        Dropout::is_training(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_repeat_from_a_restored_position() {
        let x = Var::constant(Tensor::<f32>::ones(&[64]));
        let dropout = Dropout::new(0.3, &mut seeded_rng(9));
        let first = dropout.forward(&x).value().to_vec();
        let second = dropout.forward(&x).value().to_vec();
        assert_ne!(first, second, "consecutive masks differ");
        dropout.set_draws(1);
        assert_eq!(dropout.forward(&x).value().to_vec(), second);
        assert_eq!(dropout.draws(), 2);
    }

    #[test]
    fn keeps_about_one_minus_p_and_preserves_the_mean() {
        let dropout = Dropout::new(0.25, &mut seeded_rng(1));
        let out = dropout
            .forward(&Var::constant(Tensor::<f64>::ones(&[20_000])))
            .value()
            .to_vec();
        let kept = out.iter().filter(|&&v| v != 0.0).count() as f64 / 20_000.0;
        let mean = out.iter().sum::<f64>() / 20_000.0;
        assert!((kept - 0.75).abs() < 0.02, "kept {kept}");
        assert!((mean - 1.0).abs() < 0.03, "mean {mean}");
    }

    #[test]
    fn gradient_passes_only_through_kept_elements() {
        let x = Var::leaf(Tensor::<f64>::ones(&[100]));
        let dropout = Dropout::new(0.5, &mut seeded_rng(2));
        let y = dropout.forward(&x);
        y.sum(&[], false).backward().unwrap();
        assert_eq!(x.grad().unwrap().to_vec(), y.value().to_vec());
    }
}
