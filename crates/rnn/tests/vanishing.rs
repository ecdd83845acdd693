//! The classic vanishing-gradient derivation, checked against the tape: for a tanh RNN,
//! ∂h_t/∂h_k = Π_{j=k+1..t} diag(1 − h_j²) W_hh (newest factor on the left).

use tapeloop_rnn::autograd::{BackwardOptions, grad};
use tapeloop_rnn::{Module, Nonlinearity, RecurrentConfig, Rnn, Tensor, Var, seeded_rng};

/// The Jacobian ∂h_t/∂h_k from the tape, one backward pass per row.
fn tape_jacobian(h_t: &Var<f64>, h_k: &Var<f64>) -> Tensor<f64> {
    let hidden = h_t.shape()[1];
    let mut rows = Vec::with_capacity(hidden * h_k.shape()[1]);
    for i in 0..hidden {
        let mut seed = vec![0.0; hidden];
        seed[i] = 1.0;
        let seed = Var::constant(Tensor::from_vec(seed, &[1, hidden]));
        let g = grad(
            std::slice::from_ref(h_t),
            std::slice::from_ref(h_k),
            Some(&[seed]),
            BackwardOptions::retain_graph(),
            false,
        )
        .unwrap();
        rows.extend(g[0].as_ref().unwrap().value().to_vec());
    }
    Tensor::from_vec(rows, &[hidden, h_k.shape()[1]])
}

#[test]
fn tape_jacobian_equals_the_product_of_step_jacobians() {
    let (hidden, steps, k, t) = (5, 12, 3, 11);
    let mut rng = seeded_rng(7);
    let rnn = Rnn::<f64>::rnn(
        &RecurrentConfig::new(3, hidden),
        Nonlinearity::Tanh,
        &mut rng,
    );
    let x = Var::constant(Tensor::randn(&[steps, 1, 3], &mut rng));
    let out = rnn.forward(&x, None, None).unwrap();
    let h = |j: usize| out.steps[0][j][0].clone();

    let from_tape = tape_jacobian(&h(t), &h(k));

    // Independently: multiply diag(1 − h_j²)·W_hh from j = k+1 up to t, newest on the left.
    let w_hh = rnn
        .named_parameters()
        .into_iter()
        .find(|(name, _)| name == "weight_hh_l0")
        .unwrap()
        .1
        .value();
    let mut product = Tensor::<f64>::eye(hidden);
    for j in k + 1..=t {
        let derivative = h(j)
            .value()
            .square()
            .mul_scalar(-1.0)
            .add_scalar(1.0)
            .reshape(&[hidden, 1]);
        let step_jacobian = derivative.mul(&w_hh); // diag(1 − h_j²) W_hh
        product = step_jacobian.matmul(&product);
    }
    let error = from_tape.sub(&product).abs().max(&[], false).item();
    let scale = product.abs().max(&[], false).item();
    assert!(
        error <= 1e-12 * scale.max(1.0),
        "max |tape − product| = {error:e} (scale {scale:e})"
    );
    // And the product does shrink with the lag, as the account predicts for a small W_hh.
    assert!(
        scale < 1.0,
        "eight steps of diag(tanh')·W should contract, got {scale}"
    );
}

#[test]
fn gradients_vanish_geometrically_for_small_recurrent_weights() {
    let (hidden, steps) = (16, 40);
    let mut rng = seeded_rng(1);
    let rnn = Rnn::<f64>::rnn(
        &RecurrentConfig::new(2, hidden),
        Nonlinearity::Tanh,
        &mut rng,
    );
    let x = Var::constant(Tensor::randn(&[steps, 4, 2], &mut rng));
    let out = rnn.forward(&x, None, None).unwrap();
    let states: Vec<Var<f64>> = out.steps[0].iter().map(|s| s[0].clone()).collect();
    let loss = states[steps - 1].sum(&[], false);
    let grads = grad(&[loss], &states, None, BackwardOptions::default(), true).unwrap();
    let norm = |k: usize| {
        grads[k]
            .as_ref()
            .map_or(0.0, |g| g.value().norm_l2(&[], false).item())
    };
    let (late, early) = (norm(steps - 1), norm(steps - 31));
    assert!(
        early < 1e-3 * late,
        "‖∂L/∂h_(T−30)‖ = {early:e} should be far below ‖∂L/∂h_T‖ = {late:e}"
    );
}
