//! The GRU cell, PyTorch's (cuDNN's) form: gates r, z, n with the hidden bias inside the reset.

use autograd::{Parameter, Var};
use tensor::{Element, TensorRng};

use crate::cell::{Cell, standard_parameters};
use crate::init::{linear_projection, uniform_parameter};

/// Gated recurrent unit (Cho et al. 2014) as PyTorch computes it:
///
/// ```text
/// r = σ(W_ir x + b_ir + W_hr h + b_hr)
/// z = σ(W_iz x + b_iz + W_hz h + b_hz)
/// n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
/// h' = (1 − z) ⊙ n + z ⊙ h
/// ```
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
        let hidden = self.weight_hh.shape()[1];
        let from_hidden = linear_projection(h, &self.weight_hh, self.bias_hh.as_ref());
        // r and z share one add and one sigmoid over their [B, 2H] block: two recorded ops a
        // step fewer, forward and backward, than a pair per gate.
        let gates = (&projected_input.narrow(1, 0, 2 * hidden)
            + &from_hidden.narrow(1, 0, 2 * hidden))
            .sigmoid()
            .chunk(2, 1);
        let (reset, update) = (&gates[0], &gates[1]);
        let candidate = (&projected_input.narrow(1, 2 * hidden, hidden)
            + &(reset * &from_hidden.narrow(1, 2 * hidden, hidden)))
            .tanh();
        // (1 − z) ⊙ n + z ⊙ h, written as n + z ⊙ (h − n): one op fewer.
        vec![&candidate + &(update * &(h - &candidate))]
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
