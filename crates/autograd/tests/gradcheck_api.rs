//! gradcheck itself: it must catch a wrong backward rule and say where, in full and fast mode,
//! refuse inputs whose elements share memory, and gradgradcheck must catch a wrong second
//! derivative that gradcheck cannot see.

mod common;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use tapeloop_autograd::{
    GradcheckError, GradcheckOptions, Tensor, Var, gradcheck, gradgradcheck, gradients, seeded_rng,
};

/// `a · b` elementwise whose rule for `b` is wrong at element `[1, 2]` only (it adds `g` there).
fn mul_wrong_at_1_2(a: &Var<f64>, b: &Var<f64>) -> Var<f64> {
    let (lhs, rhs) = (a.clone(), b.clone());
    let mut bump = Tensor::zeros(b.shape());
    bump.set(&[1, 2], 1.0);
    let bump = Var::constant(bump);
    Var::record(
        "mul_wrong_at_1_2",
        a.value().mul(b.value()),
        &[a, b],
        false,
        move |ctx| {
            gradients([
                Some(ctx.grad * &rhs),
                Some(&(ctx.grad * &lhs) + &(ctx.grad * &bump)),
            ])
        },
    )
}

/// `x²` with a first derivative that is right but built from a constant, so its own derivative
/// (the second derivative of `x²`, which is 2) comes out as 0.
fn square_with_constant_rule(x: &Var<f64>) -> Var<f64> {
    let input = x.clone();
    Var::record(
        "square_with_constant_rule",
        x.value().square(),
        &[x],
        false,
        move |ctx| {
            let slope = Var::constant(input.value().mul_scalar(2.0));
            gradients([Some(ctx.grad * &slope)])
        },
    )
}

fn two_by_three(seed: u64) -> Tensor<f64> {
    Tensor::randn(&[2, 3], &mut seeded_rng(seed))
}

#[test]
fn a_wrong_rule_fails_naming_the_input_and_element() {
    let inputs = [two_by_three(1), two_by_three(2)];
    let error = gradcheck(
        |v: &[Var<f64>]| mul_wrong_at_1_2(&v[0], &v[1]),
        &inputs,
        &GradcheckOptions::default(),
    )
    .unwrap_err();
    let GradcheckError::Mismatch(mismatch) = &error else {
        panic!("expected a mismatch, got {error:?}");
    };
    assert_eq!(mismatch.output, 0);
    assert_eq!(mismatch.input, 1);
    assert_eq!(mismatch.input_index, vec![1, 2]);
    assert_eq!(mismatch.output_index, vec![1, 2]);
    // The tape says a + 1, finite differences say a.
    let a = inputs[0].get(&[1, 2]);
    assert!((mismatch.analytical - (a + 1.0)).abs() < 1e-12);
    assert!((mismatch.numerical - a).abs() < 1e-6);
    let message = error.to_string();
    assert!(
        message.contains("input 1 element [1, 2]"),
        "message does not name the input and element: {message}"
    );
}

#[test]
fn the_same_op_with_the_right_rule_passes() {
    // The counterpart of the test above: the failure comes from the wrong rule, not the setup.
    let inputs = [two_by_three(1), two_by_three(2)];
    let report = gradcheck(
        |v: &[Var<f64>]| &v[0] * &v[1],
        &inputs,
        &GradcheckOptions::default(),
    )
    .unwrap();
    assert_eq!(report.compared, 2 * 6 * 6);
    assert!(report.max_abs_error < 1e-8, "{report:?}");
}

#[test]
fn fast_mode_catches_the_wrong_rule_and_names_the_input() {
    let inputs = [two_by_three(1), two_by_three(2)];
    let fast = GradcheckOptions {
        fast_mode: true,
        ..GradcheckOptions::default()
    };
    let error = gradcheck(
        |v: &[Var<f64>]| mul_wrong_at_1_2(&v[0], &v[1]),
        &inputs,
        &fast,
    )
    .unwrap_err();
    let GradcheckError::Mismatch(mismatch) = error else {
        panic!("expected a mismatch, got {error:?}");
    };
    assert_eq!(mismatch.input, 1);
    // The right rule passes fast mode, comparing one projection per input.
    let report = gradcheck(|v: &[Var<f64>]| &v[0] * &v[1], &inputs, &fast).unwrap();
    assert_eq!(report.compared, 2);
}

#[test]
fn overlapping_input_is_refused() {
    let broadcast = Tensor::<f64>::ones(&[3]).unsqueeze(0).broadcast_to(&[2, 3]);
    let error = gradcheck(
        |v: &[Var<f64>]| &v[0] + &v[1],
        &[two_by_three(1), broadcast],
        &GradcheckOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        error,
        GradcheckError::OverlappingInput {
            input: 1,
            shape: vec![2, 3],
            strides: vec![0, 1],
        }
    );
    assert!(error.to_string().contains("contiguous copy"), "{error}");
}

#[test]
fn strided_inputs_keep_their_layout_and_pass() {
    // A transposed and a narrowed view: perturbing an element must move exactly that element.
    let transposed = Tensor::<f64>::randn(&[3, 2], &mut seeded_rng(3)).t();
    let narrowed = Tensor::<f64>::randn(&[2, 5], &mut seeded_rng(4)).narrow(1, 1, 3);
    assert!(!transposed.is_contiguous() && !narrowed.is_contiguous());
    let seen_contiguous = std::cell::Cell::new(None);
    gradcheck(
        |v: &[Var<f64>]| {
            seen_contiguous.set(Some(v[0].value().is_contiguous()));
            (&v[0] * &v[1]).tanh()
        },
        &[transposed, narrowed],
        &GradcheckOptions::default(),
    )
    .unwrap();
    assert_eq!(seen_contiguous.get(), Some(false));
}

#[test]
fn gradgradcheck_catches_a_wrong_second_derivative() {
    let x = [two_by_three(5)];
    // First derivatives are right…
    gradcheck(
        |v: &[Var<f64>]| square_with_constant_rule(&v[0]),
        &x,
        &GradcheckOptions::default(),
    )
    .unwrap();
    // …but the rule is not differentiable through `x`.
    let error = gradgradcheck(
        |v: &[Var<f64>]| square_with_constant_rule(&v[0]),
        &x,
        &GradcheckOptions::default(),
    )
    .unwrap_err();
    let GradcheckError::Mismatch(mismatch) = error else {
        panic!("expected a mismatch, got {error:?}");
    };
    // Input 0 is x (input 1 is the random output gradient); the true second derivative is
    // 2·v on the diagonal, the tape's is 0.
    assert_eq!(mismatch.input, 0);
    assert_eq!(mismatch.analytical, 0.0);
    assert_eq!(mismatch.input_index, mismatch.output_index);
    // The built-in square passes.
    gradgradcheck(
        |v: &[Var<f64>]| v[0].square(),
        &x,
        &GradcheckOptions::default(),
    )
    .unwrap();
}

#[test]
fn the_property_harness_fails_on_a_wrong_rule() {
    // The op property tests use `common::check`; it must report, not swallow, a failure.
    let inputs = [two_by_three(1), two_by_three(2)];
    assert!(common::check(|v: &[Var<f64>]| mul_wrong_at_1_2(&v[0], &v[1]), &inputs).is_err());
    assert!(
        common::check(
            |v: &[Var<f64>]| square_with_constant_rule(&v[0]),
            &inputs[..1]
        )
        .is_err()
    );
    assert!(common::check(|v: &[Var<f64>]| &v[0] * &v[1], &inputs).is_ok());
}

#[test]
fn the_property_inputs_include_every_layout() {
    // The op property tests claim strided inputs: check the generator really makes them.
    let mut runner = TestRunner::deterministic();
    let strategy = common::input(vec![2, 3], common::Domain::AwayFromZero);
    let mut strides = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let tensor = strategy.new_tree(&mut runner).unwrap().current();
        assert_eq!(tensor.shape(), &[2, 3]);
        assert!(
            tensor
                .to_vec()
                .iter()
                .all(|v| (0.1..=2.0).contains(&v.abs()))
        );
        strides.insert(tensor.strides().to_vec());
    }
    let expected: std::collections::BTreeSet<Vec<usize>> =
        [vec![3, 1], vec![1, 2], vec![5, 1]].into_iter().collect();
    assert_eq!(strides, expected);
}

#[test]
fn gradgradcheck_refuses_a_recorded_rule_that_disagrees_with_the_plain_one() {
    // x² whose rule is right outside `create_graph` and 1% off when recorded: consistent with
    // its own derivative, so only the comparison of values catches it.
    fn square_recorded_wrong(x: &Var<f64>) -> Var<f64> {
        let input = x.clone();
        Var::record("square", x.value().square(), &[x], false, move |ctx| {
            let slope = if tapeloop_autograd::is_grad_enabled() {
                2.02
            } else {
                2.0
            };
            gradients([Some(ctx.grad * &(&input * slope))])
        })
    }
    let error = gradgradcheck(
        |v: &[Var<f64>]| square_recorded_wrong(&v[0]),
        &[two_by_three(1)],
        &GradcheckOptions::default(),
    )
    .unwrap_err();
    let GradcheckError::RecordedGradientMismatch {
        input,
        index,
        recorded,
        plain,
    } = &error
    else {
        panic!("expected a recorded-gradient mismatch, got {error:?}");
    };
    assert_eq!((*input, index.as_slice()), (0, &[0, 0][..]));
    assert!((recorded / plain - 1.01).abs() < 1e-12);
    assert!(
        error.to_string().contains("recorded under create_graph"),
        "{error}"
    );
}
