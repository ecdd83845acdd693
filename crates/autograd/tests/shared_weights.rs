//! Weights shared across time steps: outside `create_graph` the engine keeps each step's
//! `matmul` gradient as a factor pair and sums them in one GEMM. These tests hold that path to
//! the plain one (a `create_graph` pass, which runs every rule as recorded ops).

use std::cell::RefCell;
use std::rc::Rc;

use tapeloop_autograd::{BackwardOptions, Tensor, Var, grad, seeded_rng};

/// A tanh recurrence `h_t = tanh(x_t W_xᵀ + h_{t-1} W_hᵀ)` over `steps` steps; the loss is the
/// weighted sum of every h_t. The weights' transposes are taken per step, as cells do.
fn recurrence(w_x: &Var<f64>, w_h: &Var<f64>, steps: usize, batch: usize, seed: u64) -> Var<f64> {
    let mut rng = seeded_rng(seed);
    let hidden = w_h.shape()[0];
    let mut h = Var::constant(Tensor::zeros(&[batch, hidden]));
    let mut loss = Var::constant(Tensor::scalar(0.0));
    for _ in 0..steps {
        let x = Var::constant(Tensor::randn(&[batch, w_x.shape()[1]], &mut rng));
        h = (&x.matmul(&w_x.t()) + &h.matmul(&w_h.t())).tanh();
        let readout = Var::constant(Tensor::randn(&[batch, hidden], &mut rng));
        loss = &loss + &(&h * &readout).sum(&[], false);
    }
    loss
}

fn weights(input: usize, hidden: usize, seed: u64) -> (Var<f64>, Var<f64>) {
    let mut rng = seeded_rng(seed);
    let scale = 0.5 / (hidden as f64).sqrt();
    (
        Var::leaf(Tensor::randn(&[hidden, input], &mut rng).mul_scalar(scale)),
        Var::leaf(Tensor::randn(&[hidden, hidden], &mut rng).mul_scalar(scale)),
    )
}

/// The gradients through the plain path: `create_graph` records every rule, so no shortcut
/// applies.
fn reference_gradients(loss: &Var<f64>, inputs: &[Var<f64>]) -> Vec<Vec<f64>> {
    grad(
        std::slice::from_ref(loss),
        inputs,
        None,
        BackwardOptions::create_graph(),
        false,
    )
    .unwrap()
    .into_iter()
    .map(|g| g.unwrap().value().to_vec())
    .collect()
}

fn assert_close(got: &[f64], expected: &[f64], what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}: lengths");
    let scale = expected.iter().fold(1.0f64, |m, x| m.max(x.abs()));
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!(
            (g - e).abs() <= 1e-12 * scale,
            "{what}[{i}]: {g} against {e}"
        );
    }
}

#[test]
fn a_weight_shared_by_every_step_gets_the_sum_of_their_gradients() {
    let (w_x, w_h) = weights(3, 5, 1);
    let loss = recurrence(&w_x, &w_h, 30, 4, 2);
    let expected = reference_gradients(&loss, &[w_x.clone(), w_h.clone()]);
    loss.backward().unwrap();
    assert_close(&w_x.grad().unwrap().to_vec(), &expected[0], "W_x");
    assert_close(&w_h.grad().unwrap().to_vec(), &expected[1], "W_h");
    // The gradient arrives in the weight's own (row-major) layout.
    assert!(w_h.grad().unwrap().is_contiguous());
}

#[test]
fn grad_returns_the_summed_gradient_of_a_shared_weight() {
    let (w_x, w_h) = weights(2, 3, 3);
    let loss = recurrence(&w_x, &w_h, 12, 2, 4);
    let expected = reference_gradients(&loss, std::slice::from_ref(&w_h));
    let got = grad(
        std::slice::from_ref(&loss),
        std::slice::from_ref(&w_h),
        None,
        BackwardOptions::default(),
        false,
    )
    .unwrap();
    assert_close(
        &got[0].as_ref().unwrap().value().to_vec(),
        &expected[0],
        "W_h",
    );
    assert!(w_h.grad().is_none(), "grad() must not accumulate");
}

#[test]
fn a_long_sequence_evaluates_its_deferred_gradient_in_pieces() {
    // Each step pins 2 · 4096 · 8 elements of factors against a 4×8 result, so the engine
    // evaluates the pending sum several times (every ~128 steps) before the sequence ends.
    let mut rng = seeded_rng(5);
    let w = Var::leaf(Tensor::<f64>::randn(&[4, 8], &mut rng));
    let mut loss = Var::constant(Tensor::scalar(0.0));
    for _ in 0..300 {
        let x = Var::constant(Tensor::randn(&[4096, 8], &mut rng));
        loss = &loss + &x.matmul(&w.t()).tanh().sum(&[], false);
    }
    let expected = reference_gradients(&loss, std::slice::from_ref(&w));
    loss.backward().unwrap();
    assert_close(&w.grad().unwrap().to_vec(), &expected[0], "W");
}

#[test]
fn a_transpose_that_is_observed_sees_its_whole_gradient() {
    // One transposed view shared by every step, with a hook and retain_grad on it: the
    // deferred sum must be evaluated there, not passed through.
    let (w_x, w_h) = weights(3, 4, 6);
    let w_h_t = w_h.t();
    w_h_t.retain_grad().unwrap();
    let seen = Rc::new(RefCell::new(None));
    let store = seen.clone();
    w_h_t
        .register_hook(move |g| {
            *store.borrow_mut() = Some(g.value().to_vec());
            None
        })
        .unwrap();
    let mut rng = seeded_rng(7);
    let mut h = Var::constant(Tensor::zeros(&[2, 4]));
    for _ in 0..10 {
        let x = Var::constant(Tensor::randn(&[2, 3], &mut rng));
        h = (&x.matmul(&w_x.t()) + &h.matmul(&w_h_t)).tanh();
    }
    let loss = h.sum(&[], false);
    let expected = reference_gradients(&loss, &[w_h_t.clone(), w_h.clone()]);
    loss.backward().unwrap();
    assert_close(seen.borrow().as_ref().unwrap(), &expected[0], "hook on Wᵀ");
    assert_close(&w_h_t.grad().unwrap().to_vec(), &expected[0], "retained Wᵀ");
    assert_close(&w_h.grad().unwrap().to_vec(), &expected[1], "W_h");
}

#[test]
fn a_retained_graph_defers_again_on_the_second_pass() {
    let (w_x, w_h) = weights(2, 3, 8);
    let loss = recurrence(&w_x, &w_h, 8, 3, 9);
    let expected = reference_gradients(&loss, std::slice::from_ref(&w_h));
    loss.backward_with(&Tensor::scalar(1.0), BackwardOptions::retain_graph())
        .unwrap();
    loss.backward().unwrap();
    let doubled: Vec<f64> = expected[0].iter().map(|x| 2.0 * x).collect();
    assert_close(
        &w_h.grad().unwrap().to_vec(),
        &doubled,
        "W_h after two passes",
    );
}

#[test]
fn a_matrix_multiplied_by_itself_gets_both_gradients() {
    let mut rng = seeded_rng(10);
    let a = Var::leaf(Tensor::<f64>::randn(&[3, 3], &mut rng));
    let loss = a.matmul(&a).matmul(&a.t()).square().sum(&[], false);
    let expected = reference_gradients(&loss, std::slice::from_ref(&a));
    loss.backward().unwrap();
    assert_close(&a.grad().unwrap().to_vec(), &expected[0], "A");
}
