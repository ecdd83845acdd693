//! [`Adam`] and AdamW: adaptive moment estimation, with L2 or decoupled weight decay.

use autograd::Parameter;
use serde_json::{Value, json};
use tensor::{Element, Tensor};

use crate::error::RnnError;
use crate::optim::{
    Optimizer, OptimizerState, ParameterStates, check_range, config_result, zip_in_place,
};

/// The hyperparameters of [`Adam`]. [`AdamConfig::adam`] and [`AdamConfig::adamw`] give
/// PyTorch's defaults for `torch.optim.Adam` and `torch.optim.AdamW`.
#[derive(Clone, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// Decay rates (β₁, β₂) of the first and second moment estimates.
    pub betas: (f64, f64),
    /// Added to the denominator for numerical stability.
    pub eps: f64,
    /// Weight decay λ: added to the gradient as `λ·w` (Adam), or applied to the weights as
    /// `w ← w·(1 − lr·λ)` (AdamW, when `decoupled_weight_decay`).
    pub weight_decay: f64,
    /// Decoupled weight decay (Loshchilov & Hutter 2019): AdamW.
    pub decoupled_weight_decay: bool,
    /// Divide by the largest second moment seen so far (Reddi et al. 2018).
    pub amsgrad: bool,
}

impl AdamConfig {
    /// Adam with PyTorch's defaults: betas (0.9, 0.999), eps 1e-8, no weight decay.
    pub fn adam(lr: f64) -> Self {
        Self {
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
            amsgrad: false,
        }
    }

    /// AdamW with PyTorch's defaults: as Adam, with decoupled weight decay 0.01.
    pub fn adamw(lr: f64) -> Self {
        Self {
            weight_decay: 0.01,
            decoupled_weight_decay: true,
            ..Self::adam(lr)
        }
    }

    /// Sets (β₁, β₂).
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.betas = (beta1, beta2);
        self
    }

    /// Sets eps.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Sets the weight decay (L2 for Adam, decoupled for AdamW).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Turns AMSGrad on or off.
    pub fn amsgrad(mut self, amsgrad: bool) -> Self {
        self.amsgrad = amsgrad;
        self
    }

    fn validate(&self) -> Result<(), RnnError> {
        let mut problems = Vec::new();
        let (beta1, beta2) = self.betas;
        check_range(&mut problems, "lr", self.lr, self.lr >= 0.0, "≥ 0");
        check_range(&mut problems, "eps", self.eps, self.eps >= 0.0, "≥ 0");
        check_range(
            &mut problems,
            "beta1",
            beta1,
            (0.0..1.0).contains(&beta1),
            "in [0, 1)",
        );
        check_range(
            &mut problems,
            "beta2",
            beta2,
            (0.0..1.0).contains(&beta2),
            "in [0, 1)",
        );
        check_range(
            &mut problems,
            "weight_decay",
            self.weight_decay,
            self.weight_decay >= 0.0,
            "≥ 0",
        );
        config_result(self.kind(), problems)
    }

    fn kind(&self) -> &'static str {
        if self.decoupled_weight_decay {
            "adamw"
        } else {
            "adam"
        }
    }
}

/// Adam (Kingma & Ba 2015) and AdamW, exactly as PyTorch's `torch.optim.Adam` and
/// `torch.optim.AdamW` (single-tensor path), per parameter at its own step count `t`:
///
/// ```text
/// g ← ∇w + λ·w                  (Adam)    or    w ← w·(1 − lr·λ)    (AdamW)
/// m ← m + (1 − β₁)(g − m)        v ← β₂·v + (1 − β₂)·g²      (v̂ ← max(v̂, v) with AMSGrad)
/// w ← w − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + eps)
/// ```
///
/// Buffers (PyTorch's names): `exp_avg`, `exp_avg_sq`, and `max_exp_avg_sq` with AMSGrad.
///
/// ```
/// use tapeloop_rnn::optim::{Adam, AdamConfig, Optimizer};
/// use tapeloop_rnn::{Parameter, Tensor};
///
/// let w = Parameter::new(Tensor::<f64>::scalar(1.0));
/// let mut adamw = Adam::new(vec![w.clone()], AdamConfig::adamw(0.1)).unwrap();
/// assert_eq!(adamw.kind(), "adamw");
/// w.var().square().backward().unwrap();
/// adamw.step(); // the first Adam step moves by lr·sign(g), after decay by 1 − 0.1·0.01
/// assert!((w.value().item() - (0.999 - 0.1)).abs() < 1e-7);
/// ```
pub struct Adam<T: Element> {
    params: Vec<Parameter<T>>,
    config: AdamConfig,
    states: ParameterStates<T>,
}

impl<T: Element> Adam<T> {
    /// Adam or AdamW (by `config.decoupled_weight_decay`) over `params`; an error names any
    /// hyperparameter out of range.
    pub fn new(params: Vec<Parameter<T>>, config: AdamConfig) -> Result<Self, RnnError> {
        config.validate()?;
        let mut buffers = vec!["exp_avg", "exp_avg_sq"];
        if config.amsgrad {
            buffers.push("max_exp_avg_sq");
        }
        Ok(Self {
            states: ParameterStates::new(config.kind(), params.len(), buffers),
            params,
            config,
        })
    }

    /// The hyperparameters (the learning rate as last set).
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }
}

impl<T: Element> Optimizer<T> for Adam<T> {
    fn kind(&self) -> &'static str {
        self.config.kind()
    }

    fn parameters(&self) -> &[Parameter<T>] {
        &self.params
    }

    fn step(&mut self) {
        let c = &self.config;
        let (beta1, beta2) = c.betas;
        let weight_decay = T::from_f64_lossy(c.weight_decay);
        let decay_factor = T::from_f64_lossy(1.0 - c.lr * c.weight_decay);
        let buffer_count = if c.amsgrad { 3 } else { 2 };
        for (index, param) in self.params.iter().enumerate() {
            let Some(mut grad) = param.grad() else {
                continue;
            };
            let (entry, _) = self
                .states
                .entry(index, || vec![Tensor::zeros(&param.shape()); buffer_count]);
            entry.step += 1;
            if c.weight_decay != 0.0 {
                if c.decoupled_weight_decay {
                    param.update(|w| w.scale_assign(decay_factor));
                } else {
                    zip_in_place(&mut grad, &param.value(), |g, w| g + weight_decay * w);
                }
            }
            lerp_in_place(&mut entry.buffers[0], &grad, T::from_f64_lossy(1.0 - beta1));
            let (b2, one_minus_b2) = (T::from_f64_lossy(beta2), T::from_f64_lossy(1.0 - beta2));
            zip_in_place(&mut entry.buffers[1], &grad, |v, g| {
                v * b2 + one_minus_b2 * g * g
            });

            // Scalars in f64 as PyTorch computes them in Python floats.
            let step = entry.step as f64;
            let bias_correction1 = 1.0 - beta1.powf(step);
            let bias_correction2_sqrt = (1.0 - beta2.powf(step)).powf(0.5);
            let step_size = T::from_f64_lossy(c.lr / bias_correction1);
            let correction = T::from_f64_lossy(bias_correction2_sqrt);
            let eps = T::from_f64_lossy(c.eps);
            if c.amsgrad {
                let (second, rest) = entry.buffers.split_at_mut(2);
                zip_in_place(
                    &mut rest[0],
                    &second[1],
                    |max, v| if v > max { v } else { max },
                );
            }
            let denominator = entry.buffers[buffer_count - 1].map(|v| v.sqrt() / correction + eps);
            let first_moment = &entry.buffers[0];
            let ratio = first_moment.div(&denominator);
            param.update(|w| w.axpy(-step_size, &ratio));
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
            "betas": [self.config.betas.0, self.config.betas.1],
            "eps": self.config.eps,
            "weight_decay": self.config.weight_decay,
            "decoupled_weight_decay": self.config.decoupled_weight_decay,
            "amsgrad": self.config.amsgrad,
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

/// `a ← lerp(a, b, weight)` with PyTorch's formula, which switches form at weight ½ for
/// accuracy: `a + weight·(b − a)` below, `b − (b − a)·(1 − weight)` from ½ on.
pub(crate) fn lerp_in_place<T: Element>(a: &mut Tensor<T>, b: &Tensor<T>, weight: T) {
    let half = T::from_f64_lossy(0.5);
    if weight < half {
        zip_in_place(a, b, |a, b| a + weight * (b - a));
    } else {
        let rest = T::one() - weight;
        zip_in_place(a, b, |a, b| b - (b - a) * rest);
    }
}
