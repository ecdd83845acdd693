//! Recurrent cells: one time step written with autograd ops.
//!
//! A cell owns its parameters and computes `(x_t, state) → state`. The layer machinery
//! ([`Recurrent`](crate::Recurrent)) runs it over time, stacks layers, adds the reverse
//! direction, handles variable lengths and initial states — for any cell, including yours.

mod gru;
mod lstm;
mod rnn;

pub use gru::GruCell;
pub use lstm::LstmCell;
pub use rnn::{Nonlinearity, RnnCell};

use autograd::{Parameter, Var};
use tensor::Element;

/// The parameter list every built-in cell starts with: `weight_ih`, `weight_hh`, and the two
/// biases when the cell has them.
pub(crate) fn standard_parameters<T: Element>(
    weight_ih: &Parameter<T>,
    weight_hh: &Parameter<T>,
    bias_ih: Option<&Parameter<T>>,
    bias_hh: Option<&Parameter<T>>,
) -> Vec<(String, Parameter<T>)> {
    let mut out = vec![
        ("weight_ih".to_string(), weight_ih.clone()),
        ("weight_hh".to_string(), weight_hh.clone()),
    ];
    if let (Some(b_ih), Some(b_hh)) = (bias_ih, bias_hh) {
        out.push(("bias_ih".into(), b_ih.clone()));
        out.push(("bias_hh".into(), b_hh.clone()));
    }
    out
}

/// One step of a recurrent network.
///
/// The state is a list of tensors of shape `[batch, size]`; the first is the output `h` (what
/// the layer emits at each step and feeds to the next layer), the others are internal (an
/// LSTM's cell `c`).
///
/// Implementing this trait is all a new cell needs: the layer, multi-layer stacking,
/// bidirectionality, variable lengths, parameter naming, safetensors I/O and gradient checking
/// all come with it. See `examples/custom_cell.rs` for a peephole LSTM.
///
/// ```
/// use tapeloop_rnn::{Cell, Var, Parameter, Tensor, seeded_rng};
///
/// /// h' = tanh(W [x; h]): an Elman cell in six lines.
/// struct Elman { weight: Parameter<f64>, input_size: usize, hidden_size: usize }
///
/// impl Cell<f64> for Elman {
///     fn input_size(&self) -> usize { self.input_size }
///     fn state_sizes(&self) -> Vec<usize> { vec![self.hidden_size] }
///     fn step(&self, x: &Var<f64>, state: &[Var<f64>]) -> Vec<Var<f64>> {
///         vec![Var::cat(&[x, &state[0]], 1).matmul(&self.weight.var().t()).tanh()]
///     }
///     fn parameters(&self) -> Vec<(String, Parameter<f64>)> {
///         vec![("weight".into(), self.weight.clone())]
///     }
/// }
///
/// let cell = Elman {
///     weight: Parameter::new(Tensor::randn(&[4, 7], &mut seeded_rng(0))),
///     input_size: 3,
///     hidden_size: 4,
/// };
/// let x = Var::constant(Tensor::ones(&[2, 3]));
/// let h = Var::constant(Tensor::zeros(&[2, 4]));
/// assert_eq!(cell.step(&x, &[h])[0].shape(), &[2, 4]);
/// ```
pub trait Cell<T: Element> {
    /// Size of the input at each step.
    fn input_size(&self) -> usize;

    /// Size of each state tensor (per batch row); the first is the output `h`.
    fn state_sizes(&self) -> Vec<usize>;

    /// Names of the state tensors, for messages and for `h_n`/`c_n`-style outputs.
    fn state_names(&self) -> Vec<String> {
        match self.state_sizes().len() {
            1 => vec!["h".into()],
            2 => vec!["h".into(), "c".into()],
            n => (0..n).map(|i| format!("state{i}")).collect(),
        }
    }

    /// The part of every step that depends only on the input, for all steps at once:
    /// `[steps · batch, input_size] → [steps · batch, k]`. The layer calls it once per layer
    /// and direction (one large matrix multiply instead of one per step) and hands row block
    /// `t` to [`Cell::step`]. The default passes the input through unchanged.
    fn project_inputs(&self, inputs: &Var<T>) -> Var<T> {
        inputs.clone()
    }

    /// One step: the projected input of this step `[batch, k]` and the previous state, to the
    /// new state.
    fn step(&self, projected_input: &Var<T>, state: &[Var<T>]) -> Vec<Var<T>>;

    /// The cell's parameters under their local names (`weight_ih`, `bias_hh`, …); the layer
    /// adds PyTorch's `_l{k}` and `_reverse` suffixes.
    fn parameters(&self) -> Vec<(String, Parameter<T>)>;
}

/// The `K` equal column blocks (views) of a `[B, K·H]` gate matrix, one per gate.
pub(crate) fn gate_blocks<T: Element, const K: usize>(gates: &Var<T>) -> [Var<T>; K] {
    let blocks = gates.chunk(K, 1);
    blocks
        .try_into()
        .expect("chunk(K, 1) of a [B, K·H] matrix gives K blocks")
}
