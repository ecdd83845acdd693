//! Optimizers over a model's parameters, with PyTorch's `torch.optim` semantics, and
//! learning-rate schedules.
//!
//! An optimizer holds the [`Parameter`]s it updates (e.g. `model.parameters()`) and one set of
//! state tensors per parameter, created the first time that parameter has a gradient.
//! [`Optimizer::step`] reads each parameter's gradient and updates its value in place (through
//! [`Parameter::update`], copy-on-write, so graphs still holding the old value are unaffected).
//! Parameters without a gradient are skipped, as in PyTorch.
//!
//! ```
//! use tapeloop_rnn::optim::{Adam, AdamConfig, Optimizer};
//! use tapeloop_rnn::{Parameter, Tensor};
//!
//! let w = Parameter::new(Tensor::<f64>::from_vec(vec![3.0, -2.0], &[2]));
//! let mut optimizer = Adam::new(vec![w.clone()], AdamConfig::adam(0.1)).unwrap();
//! for _ in 0..300 {
//!     optimizer.zero_grad();
//!     w.var().square().sum(&[], false).backward().unwrap(); // minimise ‖w‖²
//!     optimizer.step();
//! }
//! assert!(w.value().abs().max(&[], false).item() < 0.05);
//! ```
//!
//! For checkpoints an optimizer exposes its kind, hyperparameters and [`OptimizerState`];
//! [`crate::train::save_checkpoint`] stores them and restores them bit for bit.

mod adam;
mod rmsprop;
mod schedule;
mod sgd;

pub use adam::{Adam, AdamConfig};
pub use rmsprop::{Rmsprop, RmspropConfig};
pub use schedule::LrSchedule;
pub use sgd::{Sgd, SgdConfig};

use std::collections::BTreeMap;

use autograd::Parameter;
use serde_json::Value;
use tensor::{Element, Tensor};

use crate::error::RnnError;

/// What every optimizer offers: a step, gradient zeroing, a learning rate to schedule, and
/// its state for checkpoints.
pub trait Optimizer<T: Element> {
    /// A short name of the algorithm as it is stored in checkpoints: `"sgd"`, `"adam"`,
    /// `"adamw"`, `"rmsprop"`.
    fn kind(&self) -> &'static str;

    /// The parameters it updates, in order.
    fn parameters(&self) -> &[Parameter<T>];

    /// Updates every parameter that has a gradient (parameters without one are skipped).
    fn step(&mut self);

    /// Clears every parameter's gradient (PyTorch's `zero_grad(set_to_none=True)`).
    fn zero_grad(&self) {
        for p in self.parameters() {
            p.zero_grad();
        }
    }

    /// The current learning rate.
    fn learning_rate(&self) -> f64;

    /// Changes the learning rate (what a schedule does between steps).
    fn set_learning_rate(&mut self, learning_rate: f64);

    /// Every hyperparameter except the learning rate, as JSON (stored in checkpoints, and
    /// compared on load: a checkpoint from other hyperparameters is refused).
    fn hyperparameters(&self) -> Value;

    /// A copy of the per-parameter state.
    fn state(&self) -> OptimizerState<T>;

    /// Checks that `state` fits this optimizer and its parameters without changing anything;
    /// the error lists every problem.
    fn check_state(&self, state: &OptimizerState<T>) -> Result<(), RnnError>;

    /// Replaces the per-parameter state after checking it (nothing changes on error).
    fn load_state(&mut self, state: OptimizerState<T>) -> Result<(), RnnError>;
}

/// An optimizer's per-parameter state, e.g. Adam's moment estimates.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState<T: Element> {
    /// Buffers named `"{parameter index}.{buffer}"` with PyTorch's buffer names, e.g.
    /// `"0.exp_avg"`, `"3.momentum_buffer"`.
    pub tensors: Vec<(String, Tensor<T>)>,
    /// How many updates each parameter has received (Adam's bias correction counts these);
    /// 0 for a parameter that never had a gradient, and then it has no buffers.
    pub steps: Vec<u64>,
}

/// One parameter's state: its update count and its buffers, in the optimizer's buffer order.
pub(crate) struct Entry<T: Element> {
    pub(crate) step: u64,
    pub(crate) buffers: Vec<Tensor<T>>,
}

/// The per-parameter state every optimizer keeps, with the checking and (de)serialization
/// they share.
pub(crate) struct ParameterStates<T: Element> {
    kind: &'static str,
    buffer_names: Vec<&'static str>,
    entries: Vec<Option<Entry<T>>>,
}

impl<T: Element> ParameterStates<T> {
    /// Empty state for `count` parameters, each to hold the named buffers once it is updated.
    pub(crate) fn new(kind: &'static str, count: usize, buffer_names: Vec<&'static str>) -> Self {
        Self {
            kind,
            buffer_names,
            entries: (0..count).map(|_| None).collect(),
        }
    }

    /// Parameter `index`'s state, created by `init` (in buffer order) if it has none yet;
    /// the flag says whether it was just created.
    pub(crate) fn entry(
        &mut self,
        index: usize,
        init: impl FnOnce() -> Vec<Tensor<T>>,
    ) -> (&mut Entry<T>, bool) {
        let fresh = self.entries[index].is_none();
        let entry = self.entries[index].get_or_insert_with(|| Entry {
            step: 0,
            buffers: init(),
        });
        debug_assert_eq!(entry.buffers.len(), self.buffer_names.len());
        (entry, fresh)
    }

    pub(crate) fn export(&self) -> OptimizerState<T> {
        let mut tensors = Vec::new();
        let mut steps = Vec::with_capacity(self.entries.len());
        for (index, entry) in self.entries.iter().enumerate() {
            steps.push(entry.as_ref().map_or(0, |e| e.step));
            for (name, buffer) in self
                .buffer_names
                .iter()
                .zip(entry.iter().flat_map(|e| &e.buffers))
            {
                tensors.push((format!("{index}.{name}"), buffer.clone()));
            }
        }
        OptimizerState { tensors, steps }
    }

    /// Every way `state` fails to fit `params`, checked before anything is assigned.
    pub(crate) fn check(
        &self,
        params: &[Parameter<T>],
        state: &OptimizerState<T>,
    ) -> Result<BTreeMap<(usize, usize), Tensor<T>>, RnnError> {
        let mut problems = Vec::new();
        if state.steps.len() != params.len() {
            problems.push(format!(
                "state is for {} parameters, the optimizer has {}",
                state.steps.len(),
                params.len()
            ));
        }
        let mut found: BTreeMap<(usize, usize), Tensor<T>> = BTreeMap::new();
        for (name, tensor) in &state.tensors {
            let parsed = name.split_once('.').and_then(|(index, buffer)| {
                let index: usize = index.parse().ok()?;
                let slot = self.buffer_names.iter().position(|b| *b == buffer)?;
                Some((index, slot))
            });
            match parsed {
                Some((index, slot)) if index < params.len() => {
                    let expected = params[index].shape();
                    if tensor.shape() != &expected[..] {
                        problems.push(format!(
                            "`{name}` has shape {:?}, parameter {index} has shape {expected:?}",
                            tensor.shape()
                        ));
                    }
                    found.insert((index, slot), tensor.clone());
                }
                _ => problems.push(format!(
                    "unexpected tensor `{name}` (a {} optimizer over {} parameters keeps {})",
                    self.kind,
                    params.len(),
                    if self.buffer_names.is_empty() {
                        "no buffers".to_string()
                    } else {
                        format!("`<index>.{}`", self.buffer_names.join("`, `<index>."))
                    }
                )),
            }
        }
        for (index, &step) in state.steps.iter().enumerate().take(params.len()) {
            for (slot, buffer) in self.buffer_names.iter().enumerate() {
                let present = found.contains_key(&(index, slot));
                if step > 0 && !present {
                    problems.push(format!(
                        "missing tensor `{index}.{buffer}` (parameter {index} has taken {step} steps)"
                    ));
                } else if step == 0 && present {
                    problems.push(format!(
                        "tensor `{index}.{buffer}` present but parameter {index} has taken no step"
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(found)
        } else {
            Err(RnnError::Config(format!(
                "{} optimizer state does not fit: {}",
                self.kind,
                problems.join("; ")
            )))
        }
    }

    pub(crate) fn import(
        &mut self,
        params: &[Parameter<T>],
        state: OptimizerState<T>,
    ) -> Result<(), RnnError> {
        let mut found = self.check(params, &state)?;
        for (index, &step) in state.steps.iter().enumerate() {
            self.entries[index] = (step > 0).then(|| Entry {
                step,
                buffers: (0..self.buffer_names.len())
                    .map(|slot| found.remove(&(index, slot)).expect("checked above"))
                    .collect(),
            });
        }
        Ok(())
    }
}

/// `a` combined elementwise with `b` in place; the optimizers only pair tensors of one
/// parameter's shape, so a mismatch is a bug here, not a user error.
pub(crate) fn zip_in_place<T: Element>(
    a: &mut Tensor<T>,
    b: &Tensor<T>,
    f: impl Fn(T, T) -> T + Sync + Send,
) {
    a.try_zip_assign("optimizer", b, f)
        .expect("optimizer buffers have their parameter's shape");
}

/// Checks that a hyperparameter lies in a range; the error names it and the value.
pub(crate) fn check_range(
    problems: &mut Vec<String>,
    name: &str,
    value: f64,
    valid: bool,
    range: &str,
) {
    if !valid || value.is_nan() {
        problems.push(format!("{name} must be {range}, got {value}"));
    }
}

/// Turns collected configuration problems into one error.
pub(crate) fn config_result(kind: &str, problems: Vec<String>) -> Result<(), RnnError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(RnnError::Config(format!("{kind}: {}", problems.join("; "))))
    }
}
