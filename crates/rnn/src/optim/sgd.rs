//! [`Sgd`]: stochastic gradient descent with momentum, Nesterov momentum and weight decay.

use autograd::Parameter;
use serde_json::{Value, json};
use tensor::Element;

use crate::error::RnnError;
use crate::optim::{
    Optimizer, OptimizerState, ParameterStates, check_range, config_result, zip_in_place,
};

/// The hyperparameters of [`Sgd`], with PyTorch's defaults (no momentum, no weight decay).
#[derive(Clone, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor μ (0 for plain SGD).
    pub momentum: f64,
    /// Dampening of the gradient added to the momentum buffer (PyTorch's `dampening`, 0 by
    /// default; Nesterov needs 0).
    pub dampening: f64,
    /// L2 penalty λ: the gradient becomes `g + λ·w`.
    pub weight_decay: f64,
    /// Nesterov momentum (Sutskever et al. 2013, in PyTorch's formulation).
    pub nesterov: bool,
}

impl SgdConfig {
    /// Plain SGD with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }

    /// Sets the momentum factor.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets the dampening.
    pub fn dampening(mut self, dampening: f64) -> Self {
        self.dampening = dampening;
        self
    }

    /// Sets the L2 weight decay.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Turns Nesterov momentum on or off.
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    fn validate(&self) -> Result<(), RnnError> {
        let mut problems = Vec::new();
        check_range(&mut problems, "lr", self.lr, self.lr >= 0.0, "≥ 0");
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
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            problems.push(format!(
                "nesterov needs momentum > 0 and dampening 0, got momentum {} and dampening {}",
                self.momentum, self.dampening
            ));
        }
        config_result("sgd", problems)
    }
}

/// Stochastic gradient descent, exactly as PyTorch's `torch.optim.SGD`:
///
/// ```text
/// g ← ∇w + λ·w                                   (weight decay λ)
/// b ← g on the first step, else μ·b + (1 − dampening)·g
/// g ← g + μ·b with Nesterov, else b              (with momentum μ > 0)
/// w ← w − lr·g
/// ```
///
/// ```
/// use tapeloop_rnn::optim::{Optimizer, Sgd, SgdConfig};
/// use tapeloop_rnn::{Parameter, Tensor};
///
/// let w = Parameter::new(Tensor::<f64>::scalar(1.0));
/// let mut sgd = Sgd::new(vec![w.clone()], SgdConfig::new(0.1).momentum(0.9)).unwrap();
/// w.var().square().backward().unwrap(); // ∇ = 2w = 2
/// sgd.step(); // b = 2, w = 1 − 0.1·2
/// assert_eq!(w.value().item(), 0.8);
/// ```
pub struct Sgd<T: Element> {
    params: Vec<Parameter<T>>,
    config: SgdConfig,
    states: ParameterStates<T>,
}

impl<T: Element> Sgd<T> {
    /// SGD over `params`; an error names any hyperparameter out of range.
    pub fn new(params: Vec<Parameter<T>>, config: SgdConfig) -> Result<Self, RnnError> {
        config.validate()?;
        let buffers = if config.momentum != 0.0 {
            vec!["momentum_buffer"]
        } else {
            Vec::new()
        };
        Ok(Self {
            states: ParameterStates::new("sgd", params.len(), buffers),
            params,
            config,
        })
    }

    /// The hyperparameters (the learning rate as last set).
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }
}

impl<T: Element> Optimizer<T> for Sgd<T> {
    fn kind(&self) -> &'static str {
        "sgd"
    }

    fn parameters(&self) -> &[Parameter<T>] {
        &self.params
    }

    fn step(&mut self) {
        let c = &self.config;
        let lr = T::from_f64_lossy(c.lr);
        let momentum = T::from_f64_lossy(c.momentum);
        let weight_decay = T::from_f64_lossy(c.weight_decay);
        let keep = T::one() - T::from_f64_lossy(c.dampening);
        for (index, param) in self.params.iter().enumerate() {
            let Some(mut grad) = param.grad() else {
                continue;
            };
            if c.weight_decay != 0.0 {
                zip_in_place(&mut grad, &param.value(), |g, w| g + weight_decay * w);
            }
            if c.momentum == 0.0 {
                self.states.entry(index, Vec::new).0.step += 1;
            } else {
                let (entry, fresh) = self.states.entry(index, || vec![grad.deep_clone()]);
                entry.step += 1;
                let buffer = &mut entry.buffers[0];
                if !fresh {
                    zip_in_place(buffer, &grad, |b, g| b * momentum + keep * g);
                }
                if c.nesterov {
                    zip_in_place(&mut grad, buffer, |g, b| g + momentum * b);
                } else {
                    grad = buffer.clone();
                }
            }
            param.update(|w| w.axpy(-lr, &grad));
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
            "momentum": self.config.momentum,
            "dampening": self.config.dampening,
            "weight_decay": self.config.weight_decay,
            "nesterov": self.config.nesterov,
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
