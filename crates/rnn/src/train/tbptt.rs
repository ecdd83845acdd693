//! Truncated backpropagation through time: a long sequence in chunks of `k` steps, the state
//! carried across chunks but cut from the graph.

use std::ops::Range;

use autograd::Var;
use tensor::{Element, Tensor};

use crate::error::RnnError;
use crate::optim::Optimizer;
use crate::train::clip::{clip_grad_norm, grad_norm};

/// The same state values cut from the graph ([`Var::detach`] on each): gradients of the next
/// chunk stop here, so memory and backward time stay bounded by the chunk length.
pub fn detach_state<T: Element>(state: &[Var<T>]) -> Vec<Var<T>> {
    state.iter().map(Var::detach).collect()
}

/// How [`truncated_bptt`] cuts the sequence and treats gradients.
#[derive(Clone, Debug, PartialEq)]
pub struct TbpttOptions {
    /// Steps per chunk (`k`); the last chunk may be shorter.
    pub chunk_len: usize,
    /// Clip gradients to this global norm before each optimizer step
    /// ([`clip_grad_norm`]).
    pub clip_grad_norm: Option<f64>,
}

impl TbpttOptions {
    /// Chunks of `chunk_len` steps, no clipping.
    pub fn new(chunk_len: usize) -> Self {
        Self {
            chunk_len,
            clip_grad_norm: None,
        }
    }

    /// Clips gradients to a global norm of `max_norm` before each step.
    pub fn clip_grad_norm(mut self, max_norm: f64) -> Self {
        self.clip_grad_norm = Some(max_norm);
        self
    }
}

/// What one chunk did.
#[derive(Clone, Debug, PartialEq)]
pub struct ChunkReport {
    /// The time steps of the chunk, `start..end` in the full sequence.
    pub steps: Range<usize>,
    /// The chunk's loss.
    pub loss: f64,
    /// The global gradient norm before clipping.
    pub grad_norm: f64,
}

/// What a run over the whole sequence did.
pub struct TbpttRun<T: Element> {
    /// One report per chunk, in order.
    pub chunks: Vec<ChunkReport>,
    /// The state after the last chunk, detached: pass it as the initial state of the next
    /// sequence to keep carrying it (as char-rnn does across batches).
    pub final_state: Vec<Var<T>>,
}

impl<T: Element> TbpttRun<T> {
    /// The per-chunk losses.
    pub fn losses(&self) -> Vec<f64> {
        self.chunks.iter().map(|c| c.loss).collect()
    }
}

/// Trains on one long time-major sequence `inputs` `[T, …]` (e.g. `[T, B, I]`) by truncated
/// BPTT (Williams & Peng 1990; the form every char-rnn uses): the sequence is cut into chunks
/// of `options.chunk_len` steps and for each chunk
///
/// 1. the optimizer's gradients are zeroed,
/// 2. `chunk_loss(chunk_inputs, steps, state)` runs the model on the chunk's inputs from the
///    carried state and returns the chunk's loss and the new state (`steps` is the chunk's
///    range in the full sequence, for slicing per-step targets),
/// 3. the loss is backpropagated — through this chunk only —, the gradients optionally clipped
///    by global norm, and the optimizer takes one step,
/// 4. the new state is detached and carried into the next chunk.
///
/// The state is a list of tensors, as a recurrent layer's `final_states` (`[h]`, or `[h, c]`
/// for an LSTM).
///
/// ```
/// use tapeloop_rnn::nn::{Linear, Reduction, mse};
/// use tapeloop_rnn::optim::{Adam, AdamConfig};
/// use tapeloop_rnn::train::{TbpttOptions, truncated_bptt};
/// use tapeloop_rnn::{Lstm, Module, RecurrentConfig, Tensor, Var, seeded_rng};
///
/// let mut rng = seeded_rng(0);
/// let lstm = Lstm::<f64>::lstm(&RecurrentConfig::new(1, 8), 0, &mut rng);
/// let head = Linear::new(8, 1, true, &mut rng);
/// let mut params = lstm.parameters();
/// params.extend(head.parameters());
/// let mut optimizer = Adam::new(params, AdamConfig::adam(0.02)).unwrap();
///
/// // One sequence of 64 steps of a sine wave; predict the next value at every step.
/// let wave: Vec<f64> = (0..65).map(|t| (0.3 * t as f64).sin()).collect();
/// let inputs = Tensor::from_vec(wave[..64].to_vec(), &[64, 1, 1]); // [T, B, I]
/// let targets = Tensor::from_vec(wave[1..].to_vec(), &[64, 1, 1]);
/// let options = TbpttOptions::new(16).clip_grad_norm(1.0);
///
/// let mut epoch_losses = Vec::new();
/// for _epoch in 0..25 {
///     let initial = vec![Var::constant(Tensor::zeros(&[1, 1, 8])); 2]; // h0, c0
///     let run = truncated_bptt(&inputs, initial, &options, &mut optimizer, |chunk, steps, state| {
///         let out = lstm.forward(chunk, Some(state), None)?;
///         let prediction = head.forward(&out.output)?;
///         let target = Var::constant(targets.narrow(0, steps.start, steps.len()));
///         Ok((mse(&prediction, &target, Reduction::Mean)?, out.final_states))
///     })
///     .unwrap();
///     assert_eq!(run.chunks.len(), 4); // 64 steps in chunks of 16: four optimizer steps
///     epoch_losses.push(run.losses().iter().sum::<f64>() / 4.0);
/// }
/// assert!(epoch_losses[24] < epoch_losses[0] / 5.0, "{epoch_losses:?}");
/// ```
pub fn truncated_bptt<T, O, F>(
    inputs: &Tensor<T>,
    initial_state: Vec<Var<T>>,
    options: &TbpttOptions,
    optimizer: &mut O,
    mut chunk_loss: F,
) -> Result<TbpttRun<T>, RnnError>
where
    T: Element,
    O: Optimizer<T> + ?Sized,
    F: FnMut(&Var<T>, Range<usize>, &[Var<T>]) -> Result<(Var<T>, Vec<Var<T>>), RnnError>,
{
    if options.chunk_len == 0 {
        return Err(RnnError::Config(
            "truncated_bptt: chunk_len must be at least 1".into(),
        ));
    }
    if inputs.rank() == 0 {
        return Err(RnnError::Shape(
            "truncated_bptt: inputs must be time-major [T, ...], got a scalar".into(),
        ));
    }
    let total = inputs.shape()[0];
    let mut state = detach_state(&initial_state);
    let mut chunks = Vec::with_capacity(total.div_ceil(options.chunk_len));
    let mut start = 0;
    while start < total {
        let len = options.chunk_len.min(total - start);
        let steps = start..start + len;
        let chunk = Var::constant(inputs.narrow(0, start, len));
        optimizer.zero_grad();
        let (loss, next_state) = chunk_loss(&chunk, steps.clone(), &state)?;
        if loss.value().len() != 1 {
            return Err(RnnError::Shape(format!(
                "truncated_bptt: the chunk loss must be a single number, got shape {:?}",
                loss.shape()
            )));
        }
        loss.backward()?;
        let norm = match options.clip_grad_norm {
            Some(max_norm) => clip_grad_norm(optimizer.parameters(), max_norm),
            None => grad_norm(optimizer.parameters()),
        };
        optimizer.step();
        state = detach_state(&next_state);
        chunks.push(ChunkReport {
            steps,
            loss: loss.item().to_f64_lossy(),
            grad_norm: norm,
        });
        start += len;
    }
    Ok(TbpttRun {
        chunks,
        final_state: state,
    })
}
