//! Long-running behaviour: weights shared across time steps, flat memory over many training
//! iterations, and chains far deeper than the stack could recurse through.

use tapeloop_autograd::{Parameter, Tensor, Var, live_nodes, seeded_rng};

/// h_{t+1} = tanh(W h_t + x_t) for every step, with `weight(t)` giving the W used at step t;
/// returns Σ_t Σ h_t.
fn recurrence(weight: impl Fn(usize) -> Var<f64>, inputs: &[Tensor<f64>]) -> Var<f64> {
    let hidden = inputs[0].shape()[0];
    // A non-zero start, so even the first step's W receives a gradient.
    let mut h = Var::constant(Tensor::full(&[hidden, 1], 0.5));
    let mut total = Var::constant(Tensor::scalar(0.0));
    for (t, x) in inputs.iter().enumerate() {
        h = (&weight(t).matmul(&h) + &Var::constant(x.clone())).tanh();
        total = &total + &h.sum(&[], false);
    }
    total
}

#[test]
fn a_weight_shared_by_100_steps_receives_the_sum_of_the_step_gradients() {
    let mut rng = seeded_rng(7);
    let w0 = Tensor::<f64>::randn(&[4, 4], &mut rng).mul_scalar(0.5);
    let inputs: Vec<Tensor<f64>> = (0..100).map(|_| Tensor::randn(&[4, 1], &mut rng)).collect();

    // One leaf used by every step.
    let shared = Var::leaf(w0.clone());
    recurrence(|_| shared.clone(), &inputs).backward().unwrap();
    let shared_grad = shared.grad().unwrap().to_vec();

    // The same function with a separate copy of W per step: each copy's gradient is that
    // step's contribution alone.
    let copies: Vec<Var<f64>> = (0..100).map(|_| Var::leaf(w0.clone())).collect();
    recurrence(|t| copies[t].clone(), &inputs)
        .backward()
        .unwrap();
    let mut summed = vec![0.0; 16];
    for copy in &copies {
        let contribution = copy.grad().unwrap().to_vec();
        assert!(contribution.iter().any(|g| *g != 0.0));
        for (s, c) in summed.iter_mut().zip(contribution) {
            *s += c;
        }
    }
    for (a, b) in shared_grad.iter().zip(&summed) {
        assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn a_scalar_weight_times_100_inputs_has_gradient_the_sum_of_the_inputs() {
    let w = Var::leaf(Tensor::<f64>::scalar(0.3));
    let xs: Vec<f64> = (0..100).map(|t| (t as f64 * 0.37).sin()).collect();
    let mut total = Var::constant(Tensor::scalar(0.0));
    for &x in &xs {
        total = &total + &(&w * x);
    }
    total.backward().unwrap();
    let expected: f64 = xs.iter().sum();
    assert!((w.grad().unwrap().item() - expected).abs() < 1e-12);
}

/// One training iteration of a small tanh regression on a persistent parameter; returns the
/// number of nodes alive while its graph existed.
fn train_step(w: &Parameter<f64>, b: &Parameter<f64>, x: &Var<f64>, target: &Var<f64>) -> usize {
    let prediction = (&x.matmul(&w.var().t()) + &b.var()).tanh();
    let loss = (&prediction - target).square().mean(&[], false);
    loss.backward().unwrap();
    let alive_with_graph = live_nodes();
    for p in [w, b] {
        let step = p.grad().unwrap().mul_scalar(-0.05);
        p.update(|value| value.add_assign(&step));
        p.zero_grad();
    }
    alive_with_graph
}

#[test]
fn ten_thousand_training_iterations_keep_the_node_count_flat() {
    let mut rng = seeded_rng(3);
    let w = Parameter::new(Tensor::<f64>::randn(&[2, 3], &mut rng));
    let b = Parameter::new(Tensor::<f64>::zeros(&[2]));
    let x = Var::constant(Tensor::randn(&[8, 3], &mut rng));
    let target = Var::constant(Tensor::randn(&[8, 2], &mut rng).tanh());
    let baseline = live_nodes();
    let mut after_ten = None;
    for iteration in 1..=10_000 {
        let during = train_step(&w, &b, &x, &target);
        // The graph existed (matmul, t, add, tanh, sub, square, sum, mul_scalar)…
        assert!(during >= baseline + 8, "iteration {iteration}: {during}");
        // …and is gone.
        assert_eq!(live_nodes(), baseline, "iteration {iteration}");
        if iteration == 10 {
            after_ten = Some(live_nodes());
        }
    }
    assert_eq!(Some(live_nodes()), after_ten);
    // The parameters stayed usable throughout.
    assert!(w.value().to_vec().iter().all(|v| v.is_finite()));
}

#[test]
fn dropping_parameters_and_leaves_frees_their_nodes() {
    let before = live_nodes();
    let p = Parameter::new(Tensor::<f64>::ones(&[2]));
    let x = Var::leaf(Tensor::<f64>::ones(&[2]));
    let y = &p.var() * &x;
    assert_eq!(live_nodes(), before + 3);
    drop(p);
    drop(x);
    // y still holds its inputs.
    assert_eq!(live_nodes(), before + 3);
    drop(y);
    assert_eq!(live_nodes(), before);
}

/// x through `steps` of x ← x + 0.001·tanh(x) (three nodes a step), on a thread with the
/// default stack; returns x's gradient (after a backward pass) and the chain's value.
fn deep_chain(steps: usize, backward: bool) -> (Option<f64>, f64) {
    std::thread::spawn(move || {
        let x = Var::leaf(Tensor::<f64>::scalar(0.5));
        let baseline = live_nodes();
        let mut y = x.clone();
        // dy_{k+1}/dy_k = 1 + 0.001·(1 − tanh² y_k): the product stays far from under- and
        // overflow, so the tape's gradient can be checked exactly.
        let mut expected_grad = 1.0;
        for _ in 0..steps {
            let t = y.tanh();
            expected_grad *= 1.0 + 0.001 * (1.0 - t.item() * t.item());
            y = &y + &(&t * 0.001);
        }
        assert_eq!(live_nodes(), baseline + 3 * steps);
        if backward {
            y.backward().unwrap();
        }
        let value = y.item();
        drop(y);
        assert_eq!(live_nodes(), baseline);
        let grad = x.grad().map(|g| g.item());
        if let Some(g) = grad {
            // Products of 20,000 factors in a different order: rounding differs by far less.
            assert!(
                (g / expected_grad - 1.0).abs() < 1e-9,
                "{g} vs {expected_grad}"
            );
        }
        (grad, value)
    })
    .join()
    .expect("the chain thread panicked (stack overflow aborts the process instead)")
}

#[test]
fn a_20000_step_chain_backpropagates_and_drops_without_recursion() {
    let (grad, value) = deep_chain(20_000, true);
    assert!(grad.is_some());
    assert!(value.is_finite());
}

#[test]
fn a_20000_step_chain_drops_without_backward() {
    // Without a backward pass every node still holds its rule and the inputs it captured.
    let (grad, _) = deep_chain(20_000, false);
    assert!(grad.is_none());
}
