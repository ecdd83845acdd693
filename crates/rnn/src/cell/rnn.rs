//! The plain (Elman) RNN cell: h' = act(W_ih x + b_ih + W_hh h + b_hh).

use autograd::{Parameter, Var};
use tensor::{Element, TensorRng};

use crate::cell::{Cell, standard_parameters};
use crate::init::{input_projection_with_both_biases, uniform_parameter};

/// The RNN's activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nonlinearity {
    /// `tanh`, PyTorch's default.
    Tanh,
    /// `max(x, 0)`.
    Relu,
}

/// `h' = act(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)`, PyTorch's `nn.RNNCell`.
///
/// [`Cell::project_inputs`] adds both biases (`x W_ihᵀ + b_ih + b_hh`, once for all steps), so
/// [`Cell::step`] expects its output, not `x W_ihᵀ + b_ih` alone.
pub struct RnnCell<T: Element> {
    /// `[hidden, input]`.
    pub weight_ih: Parameter<T>,
    /// `[hidden, hidden]`.
    pub weight_hh: Parameter<T>,
    /// `[hidden]`, when the cell has biases.
    pub bias_ih: Option<Parameter<T>>,
    /// `[hidden]`, when the cell has biases.
    pub bias_hh: Option<Parameter<T>>,
    /// The activation.
    pub nonlinearity: Nonlinearity,
}

impl<T: Element> RnnCell<T> {
    /// A cell with PyTorch's default initialization, U(−1/√H, 1/√H).
    pub fn new(
        input_size: usize,
        hidden_size: usize,
        bias: bool,
        nonlinearity: Nonlinearity,
        rng: &mut TensorRng,
    ) -> Self {
        let param =
            |shape: &[usize], rng: &mut TensorRng| uniform_parameter(shape, hidden_size, rng);
        Self {
            weight_ih: param(&[hidden_size, input_size], rng),
            weight_hh: param(&[hidden_size, hidden_size], rng),
            bias_ih: bias.then(|| param(&[hidden_size], rng)),
            bias_hh: bias.then(|| param(&[hidden_size], rng)),
            nonlinearity,
        }
    }
}

impl<T: Element> Cell<T> for RnnCell<T> {
    fn input_size(&self) -> usize {
        self.weight_ih.shape()[1]
    }

    fn state_sizes(&self) -> Vec<usize> {
        vec![self.weight_hh.shape()[0]]
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
        // `projected_input` already holds both biases (see `project_inputs`).
        let pre = projected_input + &state[0].matmul(&self.weight_hh.var().t());
        let h = match self.nonlinearity {
            Nonlinearity::Tanh => pre.tanh(),
            Nonlinearity::Relu => pre.relu(),
        };
        vec![h]
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
