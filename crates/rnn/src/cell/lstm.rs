//! The LSTM cell, PyTorch's form: gates i, f, g, o stacked in that order, optional projection.

use autograd::{Elementwise, Parameter, Scalar, Var};
use tensor::{Element, TensorRng};

use crate::cell::{Cell, gate_blocks, standard_parameters};
use crate::init::{input_projection_with_both_biases, uniform_parameter};

/// Long short-term memory (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al.):
///
/// ```text
/// i, f, g, o = split(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)      (row blocks in that order)
/// c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)
/// h' = σ(o) ⊙ tanh(c')            (then h' W_hrᵀ with a projection)
/// ```
///
/// The cell path `c' = f ⊙ c + …` is additive: backprop along it multiplies by the forget gate
/// instead of by `tanh'·W`, which is why gradients survive long lags.
///
/// The elementwise body is two [`Var::fused`] ops, one for `c'` and one for `h'`: one pass each,
/// forward and backward, instead of nine ops.
///
/// [`Cell::project_inputs`] adds both biases (`x W_ihᵀ + b_ih + b_hh`, once for all steps), so
/// [`Cell::step`] expects its output, not `x W_ihᵀ + b_ih` alone.
pub struct LstmCell<T: Element> {
    /// `[4·hidden, input]`.
    pub weight_ih: Parameter<T>,
    /// `[4·hidden, output]` (output = proj_size if projecting, else hidden).
    pub weight_hh: Parameter<T>,
    /// `[4·hidden]`.
    pub bias_ih: Option<Parameter<T>>,
    /// `[4·hidden]`.
    pub bias_hh: Option<Parameter<T>>,
    /// `[proj_size, hidden]` when the cell projects its output (PyTorch's `proj_size`).
    pub weight_hr: Option<Parameter<T>>,
}

impl<T: Element> LstmCell<T> {
    /// A cell with PyTorch's default initialization; `proj_size` 0 means no projection.
    pub fn new(
        input_size: usize,
        hidden_size: usize,
        bias: bool,
        proj_size: usize,
        rng: &mut TensorRng,
    ) -> Self {
        let output_size = if proj_size > 0 {
            proj_size
        } else {
            hidden_size
        };
        let param =
            |shape: &[usize], rng: &mut TensorRng| uniform_parameter(shape, hidden_size, rng);
        Self {
            weight_ih: param(&[4 * hidden_size, input_size], rng),
            weight_hh: param(&[4 * hidden_size, output_size], rng),
            bias_ih: bias.then(|| param(&[4 * hidden_size], rng)),
            bias_hh: bias.then(|| param(&[4 * hidden_size], rng)),
            weight_hr: (proj_size > 0).then(|| param(&[proj_size, hidden_size], rng)),
        }
    }

    /// The hidden (cell) size.
    pub fn hidden_size(&self) -> usize {
        self.weight_ih.shape()[0] / 4
    }
}

impl<T: Element> Cell<T> for LstmCell<T> {
    fn input_size(&self) -> usize {
        self.weight_ih.shape()[1]
    }

    fn state_sizes(&self) -> Vec<usize> {
        vec![self.weight_hh.shape()[1], self.hidden_size()]
    }

    fn project_inputs(&self, inputs: &Var<T>) -> Var<T> {
        input_projection_with_both_biases(
            inputs,
            &self.weight_ih,
            self.bias_ih.as_ref(),
            self.bias_hh.as_ref(),
        )
    }

    fn step(&self, projected_input: &Var<T>, state: &[Var<T>]) -> Vec<Var<T>> {
        let (h, c) = (&state[0], &state[1]);
        // `projected_input` already holds both biases (see `project_inputs`).
        let gates = projected_input + &h.matmul(&self.weight_hh.var().t());
        let [i, f, g, o] = gate_blocks(&gates);
        let c_next = Var::fused("lstm_cell_state", [&i, &f, &g, c], CellState);
        let mut h_next = Var::fused("lstm_hidden_state", [&o, &c_next], HiddenState);
        if let Some(weight_hr) = &self.weight_hr {
            h_next = h_next.matmul(&weight_hr.var().t());
        }
        vec![h_next, c_next]
    }

    fn parameters(&self) -> Vec<(String, Parameter<T>)> {
        let mut out = standard_parameters(
            &self.weight_ih,
            &self.weight_hh,
            self.bias_ih.as_ref(),
            self.bias_hh.as_ref(),
        );
        if let Some(w_hr) = &self.weight_hr {
            out.push(("weight_hr".into(), w_hr.clone()));
        }
        out
    }
}

/// `c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)`, one pass.
struct CellState;

impl Elementwise<4> for CellState {
    #[inline(always)]
    fn eval<S: Scalar>(&self, [i, f, g, c]: [S; 4]) -> S {
        f.sigmoid() * c + i.sigmoid() * g.tanh()
    }
}

/// `h' = σ(o) ⊙ tanh(c')`, one pass.
struct HiddenState;

impl Elementwise<2> for HiddenState {
    #[inline(always)]
    fn eval<S: Scalar>(&self, [o, c]: [S; 2]) -> S {
        o.sigmoid() * c.tanh()
    }
}
