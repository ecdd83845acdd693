//! [`LrSchedule`]: the learning rate as a function of the step count.

use tensor::Element;

use crate::optim::Optimizer;

/// A learning-rate schedule in closed form: the rate at step `n` depends only on the base rate
/// and `n`, so resuming from a checkpoint's step counter resumes the schedule exactly (no
/// scheduler state to save). The formulas are those of PyTorch's `StepLR`, `ExponentialLR` and
/// `CosineAnnealingLR`, with `n` the number of `scheduler.step()` calls made.
///
/// ```
/// use tapeloop_rnn::optim::{LrSchedule, Optimizer, Sgd, SgdConfig};
/// use tapeloop_rnn::{Parameter, Tensor};
///
/// let schedule = LrSchedule::Step { step_size: 3, gamma: 0.5 };
/// assert_eq!(schedule.learning_rate(0.1, 2), 0.1);
/// assert_eq!(schedule.learning_rate(0.1, 3), 0.05);
///
/// let w = Parameter::new(Tensor::<f32>::zeros(&[2]));
/// let mut sgd = Sgd::new(vec![w], SgdConfig::new(0.1)).unwrap();
/// for step in 0..7 {
///     schedule.apply(&mut sgd, 0.1, step); // before each optimizer step
///     // … forward, backward, sgd.step() …
/// }
/// assert_eq!(sgd.learning_rate(), 0.025);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LrSchedule {
    /// The base rate throughout.
    Constant,
    /// `base · γ^⌊n / step_size⌋` (`StepLR`); a `step_size` of 0 counts as 1.
    Step {
        /// Steps between decays.
        step_size: u64,
        /// Factor applied at each decay.
        gamma: f64,
    },
    /// `base · γⁿ` (`ExponentialLR`).
    Exponential {
        /// Factor applied at every step.
        gamma: f64,
    },
    /// `η_min + (base − η_min)·(1 + cos(π·n / t_max))/2` (`CosineAnnealingLR`, SGDR without
    /// restarts, Loshchilov & Hutter 2017); past `t_max` it rises again as PyTorch's does. A
    /// `t_max` of 0 counts as 1.
    Cosine {
        /// Steps from the base rate down to `eta_min`.
        t_max: u64,
        /// The lowest rate.
        eta_min: f64,
    },
}

impl LrSchedule {
    /// The learning rate at step `step` (0 before the first update) for base rate `base_lr`.
    pub fn learning_rate(&self, base_lr: f64, step: u64) -> f64 {
        match *self {
            LrSchedule::Constant => base_lr,
            LrSchedule::Step { step_size, gamma } => {
                base_lr * gamma.powf((step / step_size.max(1)) as f64)
            }
            LrSchedule::Exponential { gamma } => base_lr * gamma.powf(step as f64),
            LrSchedule::Cosine { t_max, eta_min } => {
                let phase = std::f64::consts::PI * step as f64 / t_max.max(1) as f64;
                eta_min + (base_lr - eta_min) * (1.0 + phase.cos()) / 2.0
            }
        }
    }

    /// Sets `optimizer`'s learning rate to the scheduled rate at `step`.
    pub fn apply<T: Element>(
        &self,
        optimizer: &mut (impl Optimizer<T> + ?Sized),
        base_lr: f64,
        step: u64,
    ) {
        optimizer.set_learning_rate(self.learning_rate(base_lr, step));
    }
}
