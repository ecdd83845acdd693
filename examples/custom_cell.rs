//! A cell written in user code — a peephole LSTM (Gers & Schmidhuber 2000) — trained on the
//! adding problem and gradient-checked. Implementing `Cell` is all it takes: the layer
//! machinery (time loop, stacking, bidirectionality, variable lengths), parameter naming,
//! safetensors I/O and gradient checks come with it, and BPTT comes from the tape.
//!
//! Run with `cargo run --release --example custom_cell`.

use tapeloop::autograd::GradcheckOptions;
use tapeloop::rnn::check::check_layer;
use tapeloop::rnn::init::{linear_projection, uniform_parameter};
use tapeloop::rnn::nn::{Linear, Reduction, mse};
use tapeloop::rnn::optim::{Adam, AdamConfig, Optimizer};
use tapeloop::rnn::train::clip_grad_norm;
use tapeloop::rnn::{
    Cell, Element, Module, Parameter, Recurrent, RecurrentConfig, TensorRng, Var, seeded_rng,
};
use tapeloop::tasks::{Adding, Targets, Task};

/// An LSTM whose gates also look at the cell state through diagonal "peephole" weights:
///
/// ```text
/// i = σ(W_i x + U_i h + p_i ⊙ c + b_i)      f = σ(W_f x + U_f h + p_f ⊙ c + b_f)
/// c' = f ⊙ c + i ⊙ tanh(W_g x + U_g h + b_g)
/// o = σ(W_o x + U_o h + p_o ⊙ c' + b_o)     h' = o ⊙ tanh(c')
/// ```
struct PeepholeLstmCell<T: Element> {
    weight_ih: Parameter<T>,
    weight_hh: Parameter<T>,
    bias: Parameter<T>,
    /// `[3, hidden]`: the peepholes of the input, forget and output gates.
    peephole: Parameter<T>,
}

impl<T: Element> PeepholeLstmCell<T> {
    fn new(input: usize, hidden: usize, rng: &mut TensorRng) -> Self {
        Self {
            weight_ih: uniform_parameter(&[4 * hidden, input], hidden, rng),
            weight_hh: uniform_parameter(&[4 * hidden, hidden], hidden, rng),
            bias: uniform_parameter(&[4 * hidden], hidden, rng),
            peephole: uniform_parameter(&[3, hidden], hidden, rng),
        }
    }
}

impl<T: Element> Cell<T> for PeepholeLstmCell<T> {
    fn input_size(&self) -> usize {
        self.weight_ih.shape()[1]
    }

    fn state_sizes(&self) -> Vec<usize> {
        let hidden = self.weight_hh.shape()[1];
        vec![hidden, hidden]
    }

    // W x + b for every step at once: one matrix multiply per layer.
    fn project_inputs(&self, x: &Var<T>) -> Var<T> {
        linear_projection(x, &self.weight_ih, Some(&self.bias))
    }

    fn step(&self, x: &Var<T>, state: &[Var<T>]) -> Vec<Var<T>> {
        let (h, c) = (&state[0], &state[1]);
        let gates = (x + &linear_projection(h, &self.weight_hh, None)).chunk(4, 1);
        let peephole = self.peephole.var();
        let (p_input, p_forget, p_output) = (
            peephole.select(0, 0),
            peephole.select(0, 1),
            peephole.select(0, 2),
        );
        let input_gate = (&gates[0] + &(&p_input * c)).sigmoid();
        let forget_gate = (&gates[1] + &(&p_forget * c)).sigmoid();
        let c_next = &(&forget_gate * c) + &(&input_gate * &gates[2].tanh());
        let output_gate = (&gates[3] + &(&p_output * &c_next)).sigmoid();
        vec![&output_gate * &c_next.tanh(), c_next]
    }

    fn parameters(&self) -> Vec<(String, Parameter<T>)> {
        vec![
            ("weight_ih".into(), self.weight_ih.clone()),
            ("weight_hh".into(), self.weight_hh.clone()),
            ("bias".into(), self.bias.clone()),
            ("peephole".into(), self.peephole.clone()),
        ]
    }
}

fn main() {
    // 1. Gradient check in f64: two layers, both directions, variable lengths.
    let mut rng = seeded_rng(0);
    let config = RecurrentConfig::new(2, 4).num_layers(2).bidirectional(true);
    let layer = Recurrent::<f64, _>::with_cells(&config, &mut rng, |input, rng| {
        PeepholeLstmCell::new(input, 4, rng)
    })
    .unwrap();
    let report = check_layer(
        &layer,
        5,
        3,
        Some(&[5, 2, 4]),
        &GradcheckOptions::default(),
        &mut rng,
    )
    .unwrap();
    println!(
        "gradcheck passed: {} parameter entries (largest error {:.2e}), {} input entries (largest error {:.2e})",
        report.parameters.compared,
        report.parameters.max_abs_error,
        report.inputs.compared,
        report.inputs.max_abs_error
    );
    let names: Vec<String> = layer
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    println!("parameters: {}", names.join(", "));

    // 2. Train on the adding problem.
    let (steps, hidden, batch) = (40, 64, 50);
    let mut task = Adding::new(steps, 1);
    let mut rng = seeded_rng(1);
    let cell_layer = Recurrent::<f32, _>::with_cells(
        &RecurrentConfig::new(2, hidden),
        &mut rng,
        |input, rng| PeepholeLstmCell::new(input, hidden, rng),
    )
    .unwrap();
    let head = Linear::<f32>::new(hidden, 1, true, &mut rng);
    let mut params = cell_layer.parameters();
    params.extend(head.parameters());
    let mut adam = Adam::new(params, AdamConfig::adam(1e-2)).unwrap();
    let predict = |inputs: &tapeloop::rnn::Tensor<f32>| {
        let out = cell_layer
            .forward(&Var::constant(inputs.clone()), None, None)
            .unwrap();
        head.forward(&out.output.select(0, steps - 1)).unwrap()
    };
    let held_out = task.eval_batches(200);
    let evaluate = || {
        let b = &held_out[0];
        let Targets::LastStepRegression(target) = &b.targets else {
            unreachable!()
        };
        mse(
            &predict(&b.inputs),
            &Var::constant(target.clone()),
            Reduction::Mean,
        )
        .unwrap()
        .item()
    };
    println!(
        "adding problem, T = {steps}: baseline MSE {:.3}, before training {:.3}",
        task.baseline(),
        evaluate()
    );
    for step in 1..=600 {
        let b = task.train_batch(batch, &mut rng);
        let Targets::LastStepRegression(target) = &b.targets else {
            unreachable!()
        };
        let loss = mse(
            &predict(&b.inputs),
            &Var::constant(target.clone()),
            Reduction::Mean,
        )
        .unwrap();
        loss.backward().unwrap();
        clip_grad_norm(adam.parameters(), 1.0);
        adam.step();
        adam.zero_grad();
        if step % 100 == 0 {
            println!(
                "step {step:>4}: training MSE {:.4}, held-out MSE {:.4}",
                loss.item(),
                evaluate()
            );
        }
    }
    let final_mse = evaluate();
    println!(
        "held-out MSE after training: {final_mse:.4} (baseline {:.3})",
        task.baseline()
    );
    assert!(
        final_mse < 0.05,
        "the peephole LSTM should beat the baseline clearly"
    );
}
