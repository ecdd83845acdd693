//! The classic recurrent-network tasks, generated on the fly from a seed, defined as in the
//! papers: the adding problem, the copy task, the embedded Reber grammar, and a character
//! language model over any text.

mod adding;
mod copy;
mod reber;
mod text;

pub use adding::Adding;
pub use copy::Copy;
pub use reber::{EmbeddedReber, ReberString};
pub use text::{CharText, TextError};

use rnn::{Tensor, TensorRng};

/// What a model must predict for a batch.
#[derive(Clone, Debug)]
pub enum Targets {
    /// One value per sequence, read from the last step: `[batch, outputs]`, mean squared error.
    LastStepRegression(Tensor<f32>),
    /// One class per step and sequence, `[time · batch]` in time-major order, cross-entropy;
    /// `mask` (same length) is 1 where the step counts, 0 for padding.
    EveryStepClasses {
        /// Class indices, time-major.
        classes: Vec<usize>,
        /// 1 where the position counts.
        mask: Option<Vec<f32>>,
    },
}

/// A batch of sequences.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Inputs, `[time, batch, features]` (one-hot for symbolic tasks).
    pub inputs: Tensor<f32>,
    /// What to predict.
    pub targets: Targets,
}

/// A task that generates training and evaluation batches.
pub trait Task {
    /// Short name, as on the command line.
    fn name(&self) -> &'static str;
    /// Features per input step.
    fn input_size(&self) -> usize;
    /// Outputs per prediction (1 for adding, the alphabet size for symbolic tasks).
    fn output_size(&self) -> usize;
    /// A fresh training batch.
    fn train_batch(&mut self, batch: usize, rng: &mut TensorRng) -> Batch;
    /// Held-out batches, identical on every call (drawn from their own seed).
    fn eval_batches(&self, batch: usize) -> Vec<Batch>;
    /// The loss of the best model that ignores the input's history, for comparison.
    fn baseline(&self) -> f64;
    /// What the loss measures (`"MSE"`, `"nats/step"`, …).
    fn metric(&self) -> &'static str;
    /// For tasks judged by whole sequences (Reber): how many sequences of held-out batch
    /// `index` (from `eval_batches(batch)`) the predictions `[time · batch, classes]` get
    /// entirely right. `None` for other tasks.
    fn count_solved(
        &self,
        _index: usize,
        _batch: usize,
        _predictions: &Tensor<f32>,
    ) -> Option<usize> {
        None
    }
    /// The characters of a text task, in class order (so a checkpoint can be sampled).
    fn vocabulary(&self) -> Option<&[char]> {
        None
    }
}

/// One-hot encodes `symbols[t][b]` into `[time, batch, classes]`.
pub fn one_hot_sequence(symbols: &[Vec<usize>], classes: usize) -> Tensor<f32> {
    let (steps, batch) = (symbols.len(), symbols.first().map_or(0, Vec::len));
    let mut data = vec![0.0f32; steps * batch * classes];
    for (t, row) in symbols.iter().enumerate() {
        for (b, &s) in row.iter().enumerate() {
            data[(t * batch + b) * classes + s] = 1.0;
        }
    }
    Tensor::from_vec(data, &[steps, batch, classes])
}
