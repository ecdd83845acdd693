//! The GRU cell, PyTorch's (cuDNN's) form: gates r, z, n with the hidden bias inside the reset.

use autograd::{Elementwise, Parameter, Scalar, Var};
use tensor::{Element, TensorRng};

use crate::cell::{Cell, gate_blocks, standard_parameters};
use crate::init::{linear_projection, uniform_parameter};

/// Gated recurrent unit (Cho et al. 2014) as PyTorch computes it:
///
/// ```text
/// r = σ(W_ir x + b_ir + W_hr h + b_hr)
/// z = σ(W_iz x + b_iz + W_hz h + b_hz)
/// n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
/// h' = (1 − z) ⊙ n + z ⊙ h
/// ```
///
/// Everything after the two matrix products is one [`Var::fused`] op.
pub struct GruCell<T: Element> {
    /// `[3·hidden, input]`, blocks r, z, n.
    pub weight_ih: Parameter<T>,
    /// `[3·hidden, hidden]`.
    pub weight_hh: Parameter<T>,
    /// `[3·hidden]`.
    pub bias_ih: Option<Parameter<T>>,
    /// `[3·hidden]`.
    pub bias_hh: Option<Parameter<T>>,
}

impl<T: Element> GruCell<T> {
    /// A cell with PyTorch's default initialization.
    pub fn new(input_size: usize, hidden_size: usize, bias: bool, rng: &mut TensorRng) -> Self {
        let param =
            |shape: &[usize], rng: &mut TensorRng| uniform_parameter(shape, hidden_size, rng);
        Self {
            weight_ih: param(&[3 * hidden_size, input_size], rng),
            weight_hh: param(&[3 * hidden_size, hidden_size], rng),
            bias_ih: bias.then(|| param(&[3 * hidden_size], rng)),
            bias_hh: bias.then(|| param(&[3 * hidden_size], rng)),
        }
    }
}

impl<T: Element> Cell<T> for GruCell<T> {
    fn input_size(&self) -> usize {
        self.weight_ih.shape()[1]
    }

    fn state_sizes(&self) -> Vec<usize> {
        vec![self.weight_hh.shape()[1]]
    }

    fn project_inputs(&self, inputs: &Var<T>) -> Var<T> {
        linear_projection(inputs, &self.weight_ih, self.bias_ih.as_ref())
    }

    fn step(&self, projected_input: &Var<T>, state: &[Var<T>]) -> Vec<Var<T>> {
        let h = &state[0];
        let from_hidden = linear_projection(h, &self.weight_hh, self.bias_hh.as_ref());
        let [xr, xz, xn] = gate_blocks(projected_input);
        let [hr, hz, hn] = gate_blocks(&from_hidden);
        vec![Var::fused(
            "gru_hidden_state",
            [&xr, &xz, &xn, &hr, &hz, &hn, h],
            HiddenState,
        )]
    }

    fn parameters(&self) -> Vec<(String, Parameter<T>)> {
        standard_parameters(
            &self.weight_ih,
            &self.weight_hh,
            self.bias_ih.as_ref(),
            self.bias_hh.as_ref(),
        )
    }
}

/// The whole step after the two products, one pass forward and one backward:
/// `r = σ(x_r + h_r)`, `z = σ(x_z + h_z)`, `n = tanh(x_n + r ⊙ h_n)`, `h' = n + z ⊙ (h − n)`
/// (that is, `(1 − z) ⊙ n + z ⊙ h`).
struct HiddenState;

impl Elementwise<7> for HiddenState {
    #[inline(always)]
    fn eval<S: Scalar>(&self, [xr, xz, xn, hr, hz, hn, h]: [S; 7]) -> S {
        let reset = (xr + hr).sigmoid();
        let update = (xz + hz).sigmoid();
        let candidate = (xn + reset * hn).tanh();
        candidate.clone() + update * (h - candidate)
    }
}
