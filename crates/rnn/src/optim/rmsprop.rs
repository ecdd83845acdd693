//! [`Rmsprop`]: the classic char-rnn optimizer (Tieleman & Hinton 2012).

use autograd::Parameter;
use serde_json::{Value, json};
use tensor::{Element, Tensor};

use crate::error::RnnError;
use crate::optim::adam::lerp_in_place;
use crate::optim::{
    Optimizer, OptimizerState, ParameterStates, check_range, config_result, zip_in_place,
};

/// The hyperparameters of [`Rmsprop`], with PyTorch's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct RmspropConfig {
    /// Learning rate (PyTorch's default 0.01).
    pub lr: f64,
    /// Smoothing constant of the running average of squared gradients (default 0.99).
    pub alpha: f64,
    /// Added to the denominator *outside* the square root (default 1e-8).
    pub eps: f64,
    /// L2 penalty λ: the gradient becomes `g + λ·w`.
    pub weight_decay: f64,
    /// Momentum factor (0 for none).
    pub momentum: f64,
    /// Divide by an estimate of the gradient's variance instead of its second moment
    /// (Graves 2013).
    pub centered: bool,
}

impl RmspropConfig {
    /// RMSprop with learning rate `lr` and PyTorch's other defaults.
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
        }
    }

    /// Sets the smoothing constant.
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Sets eps.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Sets the L2 weight decay.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Sets the momentum factor.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Turns the centered variant on or off.
    pub fn centered(mut self, centered: bool) -> Self {
        self.centered = centered;
        self
    }

    fn validate(&self) -> Result<(), RnnError> {
        let mut problems = Vec::new();
        check_range(&mut problems, "lr", self.lr, self.lr >= 0.0, "≥ 0");
        check_range(&mut problems, "eps", self.eps, self.eps >= 0.0, "≥ 0");
        check_range(
            &mut problems,
            "alpha",
            self.alpha,
            (0.0..=1.0).contains(&self.alpha),
            "in [0, 1]",
        );
        check_range(
            &mut problems,
            "momentum",
            self.momentum,
            self.momentum >= 0.0,
            "≥ 0",
        );
        check_range(
            &mut problems,
            "weight_decay",
            self.weight_decay,
            self.weight_decay >= 0.0,
            "≥ 0",
        );
        config_result("rmsprop", problems)
    }
}

/// RMSprop, exactly as PyTorch's `torch.optim.RMSprop`:
///
/// ```text
/// g ← ∇w + λ·w
/// s ← α·s + (1 − α)·g²
/// a ← √(s − ḡ²) + eps with ḡ ← lerp(ḡ, g, 1 − α)   (centered)     else  a ← √s + eps
/// b ← μ·b + g/a,  w ← w − lr·b                       (momentum μ)   else  w ← w − lr·g/a
/// ```
///
/// Buffers (PyTorch's names): `square_avg`, then `momentum_buffer` with momentum, then
/// `grad_avg` when centered.
///
/// ```
/// use tapeloop_rnn::optim::{Optimizer, Rmsprop, RmspropConfig};
/// use tapeloop_rnn::{Parameter, Tensor};
///
/// let w = Parameter::new(Tensor::<f64>::scalar(1.0));
/// let mut rmsprop = Rmsprop::new(vec![w.clone()], RmspropConfig::new(0.01)).unwrap();
/// w.var().square().backward().unwrap(); // g = 2, s = 0.01·4, w = 1 − 0.01·2/(0.2 + 1e-8)
/// rmsprop.step();
/// assert!((w.value().item() - 0.9).abs() < 1e-8); // eps shifts it by 5e-9
/// ```
pub struct Rmsprop<T: Element> {
    params: Vec<Parameter<T>>,
    config: RmspropConfig,
    states: ParameterStates<T>,
}

impl<T: Element> Rmsprop<T> {
    /// RMSprop over `params`; an error names any hyperparameter out of range.
    pub fn new(params: Vec<Parameter<T>>, config: RmspropConfig) -> Result<Self, RnnError> {
        config.validate()?;
        let mut buffers = vec!["square_avg"];
        if config.momentum > 0.0 {
            buffers.push("momentum_buffer");
        }
        if config.centered {
            buffers.push("grad_avg");
        }
        Ok(Self {
            states: ParameterStates::new("rmsprop", params.len(), buffers),
            params,
            config,
        })
    }

    /// The hyperparameters (the learning rate as last set).
    pub fn config(&self) -> &RmspropConfig {
        &self.config
    }
}

impl<T: Element> Optimizer<T> for Rmsprop<T> {
    fn kind(&self) -> &'static str {
        "rmsprop"
    }

    fn parameters(&self) -> &[Parameter<T>] {
        &self.params
    }

    fn step(&mut self) {
        let c = &self.config;
        let lr = T::from_f64_lossy(c.lr);
        let (alpha, one_minus_alpha) =
            (T::from_f64_lossy(c.alpha), T::from_f64_lossy(1.0 - c.alpha));
        let eps = T::from_f64_lossy(c.eps);
        let momentum = T::from_f64_lossy(c.momentum);
        let weight_decay = T::from_f64_lossy(c.weight_decay);
        let with_momentum = c.momentum > 0.0;
        let buffer_count = 1 + usize::from(with_momentum) + usize::from(c.centered);
        for (index, param) in self.params.iter().enumerate() {
            let Some(mut grad) = param.grad() else {
                continue;
            };
            let (entry, _) = self
                .states
                .entry(index, || vec![Tensor::zeros(&param.shape()); buffer_count]);
            entry.step += 1;
            if c.weight_decay != 0.0 {
                zip_in_place(&mut grad, &param.value(), |g, w| g + weight_decay * w);
            }
            let square_avg = &mut entry.buffers[0];
            zip_in_place(square_avg, &grad, |s, g| {
                s * alpha + one_minus_alpha * g * g
            });
            let mut average = if c.centered {
                let grad_avg = &mut entry.buffers[buffer_count - 1];
                lerp_in_place(grad_avg, &grad, one_minus_alpha);
                let centered = entry.buffers[0]
                    .try_zip_map(&entry.buffers[buffer_count - 1], |s, m| s - m * m)
                    .expect("same shape");
                centered.sqrt()
            } else {
                entry.buffers[0].sqrt()
            };
            average.map_assign(|a| a + eps);
            if with_momentum {
                let buffer = &mut entry.buffers[1];
                let ratio = grad.div(&average);
                zip_in_place(buffer, &ratio, |b, r| b * momentum + r);
                param.update(|w| w.axpy(-lr, buffer));
            } else {
                let ratio = grad.div(&average);
                param.update(|w| w.axpy(-lr, &ratio));
            }
        }
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, learning_rate: f64) {
        self.config.lr = learning_rate;
    }

    fn hyperparameters(&self) -> Value {
        json!({
            "alpha": self.config.alpha,
            "eps": self.config.eps,
            "weight_decay": self.config.weight_decay,
            "momentum": self.config.momentum,
            "centered": self.config.centered,
        })
    }

    fn state(&self) -> OptimizerState<T> {
        self.states.export()
    }

    fn check_state(&self, state: &OptimizerState<T>) -> Result<(), RnnError> {
        self.states.check(&self.params, state).map(|_| ())
    }

    fn load_state(&mut self, state: OptimizerState<T>) -> Result<(), RnnError> {
        self.states.import(&self.params, state)
    }
}
