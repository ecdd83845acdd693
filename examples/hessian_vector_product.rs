//! A Hessian-vector product through an LSTM: differentiate the gradient itself.
//!
//! Backward rules are written with differentiable ops, so a backward pass run with
//! `create_graph` is recorded on the tape; differentiating ⟨∇L, v⟩ once more gives H·v without
//! ever forming the Hessian. The result is checked against finite differences of the gradient.
//!
//! Run with `cargo run --release --example hessian_vector_product`.

use tapeloop::autograd::{BackwardOptions, grad};
use tapeloop::rnn::{Lstm, Module, Parameter, RecurrentConfig, Tensor, Var, seeded_rng};

fn loss(lstm: &Lstm<f64>, x: &Var<f64>, target: &Var<f64>) -> Var<f64> {
    let out = lstm.forward(x, None, None).expect("shapes fit");
    (&out.output.select(0, x.shape()[0] - 1) - target)
        .square()
        .mean(&[], false)
}

/// ∇L at the current parameter values.
fn gradient(
    lstm: &Lstm<f64>,
    params: &[Parameter<f64>],
    x: &Var<f64>,
    target: &Var<f64>,
) -> Vec<Tensor<f64>> {
    let vars: Vec<Var<f64>> = params.iter().map(Parameter::var).collect();
    let g = grad(
        &[loss(lstm, x, target)],
        &vars,
        None,
        BackwardOptions::default(),
        true,
    )
    .unwrap();
    g.into_iter()
        .zip(params)
        .map(|(g, p)| g.map_or_else(|| Tensor::zeros(&p.shape()), |g| g.value().clone()))
        .collect()
}

fn main() {
    let mut rng = seeded_rng(0);
    let lstm = Lstm::<f64>::lstm(&RecurrentConfig::new(3, 8), 0, &mut rng);
    let x = Var::constant(Tensor::randn(&[10, 4, 3], &mut rng));
    let target = Var::constant(Tensor::randn(&[4, 8], &mut rng));
    let params = lstm.parameters();
    let direction: Vec<Tensor<f64>> = params
        .iter()
        .map(|p| Tensor::randn(&p.shape(), &mut rng))
        .collect();

    // H·v = ∇⟨∇L, v⟩: one backward pass recorded (create_graph), one more through it.
    let vars: Vec<Var<f64>> = params.iter().map(Parameter::var).collect();
    let first = grad(
        &[loss(&lstm, &x, &target)],
        &vars,
        None,
        BackwardOptions::create_graph(),
        true,
    )
    .unwrap();
    let mut inner = Var::constant(Tensor::scalar(0.0));
    for (g, v) in first.iter().zip(&direction) {
        if let Some(g) = g {
            inner = &inner + &(g * &Var::constant(v.clone())).sum(&[], false);
        }
    }
    let hv = grad(&[inner], &vars, None, BackwardOptions::default(), true).unwrap();

    // Finite differences of the gradient along v.
    let eps = 1e-5;
    let shifted = |sign: f64| {
        for (p, v) in params.iter().zip(&direction) {
            p.update(|value| value.axpy(sign * eps, v));
        }
        let g = gradient(&lstm, &params, &x, &target);
        for (p, v) in params.iter().zip(&direction) {
            p.update(|value| value.axpy(-sign * eps, v));
        }
        g
    };
    let (plus, minus) = (shifted(1.0), shifted(-1.0));
    let (mut max_diff, mut norm) = (0.0f64, 0.0f64);
    for ((h, p), m) in hv.iter().zip(&plus).zip(&minus) {
        let numerical = p.sub(m).mul_scalar(1.0 / (2.0 * eps));
        let exact = h
            .as_ref()
            .map_or_else(|| Tensor::zeros(numerical.shape()), |h| h.value().clone());
        max_diff = max_diff.max(exact.sub(&numerical).abs().max(&[], false).item());
        norm += exact.square().sum_all();
    }
    println!(
        "LSTM with {} parameters, sequences of 10 steps",
        lstm.parameter_count()
    );
    println!("‖H·v‖ = {:.6}", norm.sqrt());
    println!("largest |H·v − finite differences of ∇L along v| = {max_diff:.3e}");
    assert!(
        max_diff < 1e-6 * norm.sqrt().max(1.0),
        "Hessian-vector product disagrees with finite differences"
    );
    println!("the tape's second derivative agrees with finite differences");
}
