//! Fused elementwise ops (`Var::fused`): one node whose value and gradients equal those of the
//! same function written as separate ops, checked against finite differences to second order
//! (the `create_graph` path evaluates the function on dual numbers made of variables).

mod common;

use common::{Domain, check, input};
use proptest::prelude::*;
use tapeloop_autograd::strategies::broadcast_pair;
use tapeloop_autograd::{BackwardOptions, Elementwise, Scalar, Tensor, Var, grad};

/// Every operation a [`Scalar`] offers, on inputs that keep `ln` and `√` defined.
struct EveryOperation;

impl Elementwise<2> for EveryOperation {
    fn eval<S: Scalar>(&self, [x, y]: [S; 2]) -> S {
        let ratio = (x.sqrt() - y.clone()).tanh() / (S::constant(2.0) + y.exp());
        x.ln() * y.sigmoid() + ratio - (-x)
    }
}

/// [`EveryOperation`] as separate recorded ops.
fn every_operation_unfused(x: &Var<f64>, y: &Var<f64>) -> Var<f64> {
    let ratio = &(&x.sqrt() - y).tanh() / &(&y.exp() + 2.0);
    &(&(&x.log() * &y.sigmoid()) + &ratio) - &x.neg()
}

fn positive_pair() -> BoxedStrategy<(Tensor<f64>, Tensor<f64>)> {
    broadcast_pair(3, 3)
        .prop_flat_map(|(a, b)| (input(a, Domain::Positive), input(b, Domain::Positive)))
        .boxed()
}

fn max_difference(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.to_vec()
        .iter()
        .zip(b.to_vec())
        .map(|(p, q)| (p - q).abs() / (1.0 + q.abs()))
        .fold(0.0, f64::max)
}

proptest! {
    #![proptest_config(common::config(64))]

    #[test]
    fn fused_gradients_match_finite_differences((x, y) in positive_pair()) {
        check(|v: &[Var<f64>]| Var::fused("every_operation", [&v[0], &v[1]], EveryOperation), &[x, y])?;
    }

    #[test]
    fn recorded_gradients_equal_the_one_pass_gradients((x, y) in positive_pair()) {
        // Under `create_graph` the gradient is built from recorded ops (dual numbers made of
        // variables); gradgradcheck checks its derivative, this checks its value.
        let (a, b) = (Var::leaf(x), Var::leaf(y));
        let gradients = |options| {
            let out = Var::fused("every_operation", [&a, &b], EveryOperation).sum(&[], false);
            grad(&[out], &[a.clone(), b.clone()], None, options, false).unwrap()
        };
        let recorded = gradients(BackwardOptions::create_graph());
        let one_pass = gradients(BackwardOptions::default());
        for (r, p) in recorded.iter().zip(&one_pass) {
            let (r, p) = (r.as_ref().unwrap(), p.as_ref().unwrap());
            prop_assert!(r.requires_grad() && !p.requires_grad());
            prop_assert!(max_difference(r.value(), p.value()) < 1e-12);
        }
    }

    #[test]
    fn fused_equals_the_same_function_as_separate_ops((x, y) in positive_pair()) {
        let (a, b) = (Var::leaf(x.clone()), Var::leaf(y.clone()));
        let fused = Var::fused("every_operation", [&a, &b], EveryOperation);
        let (c, d) = (Var::leaf(x), Var::leaf(y));
        let unfused = every_operation_unfused(&c, &d);
        prop_assert!(max_difference(fused.value(), unfused.value()) < 1e-12);
        fused.sum(&[], false).backward().unwrap();
        unfused.sum(&[], false).backward().unwrap();
        // Broadcast inputs get their gradients summed back to their own shapes.
        prop_assert!(max_difference(&a.grad().unwrap(), &c.grad().unwrap()) < 1e-12);
        prop_assert!(max_difference(&b.grad().unwrap(), &d.grad().unwrap()) < 1e-12);
    }
}

/// An LSTM's cell state, the body the built-in cell fuses.
struct CellState;

impl Elementwise<4> for CellState {
    #[inline(always)]
    fn eval<S: Scalar>(&self, [i, f, g, c]: [S; 4]) -> S {
        f.sigmoid() * c + i.sigmoid() * g.tanh()
    }
}

/// A cell body: from the gate blocks and the cell state to the new cell state.
type Body = dyn Fn(&[Var<f32>], &Var<f32>) -> Var<f32>;

#[test]
fn f32_cell_state_matches_separate_ops_on_column_blocks() {
    // The gates as the cell has them: column blocks of a [B, 4H] matrix, over 2¹⁵ elements so
    // the pass is split across threads.
    let mut rng = tapeloop_autograd::seeded_rng(3);
    let gates = Var::leaf(Tensor::<f32>::randn(&[64, 4 * 512], &mut rng));
    let c = Var::leaf(Tensor::<f32>::randn(&[64, 512], &mut rng));
    let weights = Var::constant(Tensor::<f32>::randn(&[64, 512], &mut rng));
    // The value and gradients of a body built on a fresh view of the gates.
    let run = |body: &Body| {
        gates.zero_grad();
        c.zero_grad();
        let y = body(&gates.chunk(4, 1), &c);
        (&y * &weights).sum(&[], false).backward().unwrap();
        let gradients = (gates.grad().unwrap().to_vec(), c.grad().unwrap().to_vec());
        (y.value().to_vec(), gradients)
    };
    let (fused, (fused_gates, fused_c)) =
        run(&|g, c| Var::fused("cell_state", [&g[0], &g[1], &g[2], c], CellState));
    let (unfused, (unfused_gates, unfused_c)) =
        run(&|g, c| &(&g[1].sigmoid() * c) + &(&g[0].sigmoid() * &g[2].tanh()));
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(p, q)| (p - q).abs() <= 1e-5);
    assert!(close(&fused, &unfused));
    assert!(close(&fused_gates, &unfused_gates));
    assert!(close(&fused_c, &unfused_c));
    // The output gate's block (not an input of the body) gets a zero gradient.
    assert!(
        fused_gates
            .chunks(512)
            .skip(3)
            .step_by(4)
            .flatten()
            .all(|&g| g == 0.0)
    );
}

/// `eˣ + y·z`: where `eˣ` overflows, `y` and `z` still have finite gradients.
struct ExpPlusProduct;

impl Elementwise<3> for ExpPlusProduct {
    fn eval<S: Scalar>(&self, [x, y, z]: [S; 3]) -> S {
        x.exp() + y * z
    }
}

#[test]
fn an_infinite_derivative_does_not_spread_nan_to_other_inputs() {
    // The separate ops give ∂/∂y = z and ∂/∂z = y whatever eˣ is; a dual number carrying a
    // zero (not an absent) derivative for y through eˣ would give 0·∞ = NaN. So would
    // ∂(y·z)/∂y at z = ∞ taken as 0·y + ∞·1 with y's zero derivative in z.
    let values = |v: [f64; 3]| v.map(|v| Var::leaf(Tensor::from_vec(vec![v], &[1])));
    for [x, y, z] in [[1000.0, 2.0, 3.0], [0.5, f64::INFINITY, 2.0]] {
        for options in [BackwardOptions::default(), BackwardOptions::create_graph()] {
            let fused = values([x, y, z]);
            let [a, b, c] = [&fused[0], &fused[1], &fused[2]];
            let out = Var::fused("exp_plus_product", [a, b, c], ExpPlusProduct);
            let got = grad(&[out], &fused, None, options, false).unwrap();
            let plain = values([x, y, z]);
            let out = &plain[0].exp() + &(&plain[1] * &plain[2]);
            let want = grad(&[out], &plain, None, options, false).unwrap();
            for (g, w) in got.iter().zip(&want) {
                let (g, w) = (g.as_ref().unwrap().item(), w.as_ref().unwrap().item());
                assert!(
                    g == w || (g.is_nan() && w.is_nan()),
                    "{g} against {w} at {x}, {y}, {z}"
                );
            }
        }
    }
}

#[test]
fn fused_records_one_node_and_constants_get_no_gradient() {
    let x = Var::leaf(Tensor::<f64>::from_vec(vec![1.0, 2.0], &[2]));
    let constant = Var::constant(Tensor::<f64>::scalar(3.0));
    let y = Var::fused("every_operation", [&x, &constant], EveryOperation);
    assert_eq!(y.op_name(), "every_operation");
    y.sum(&[], false).backward().unwrap();
    assert_eq!(x.grad().unwrap().shape(), &[2]);
    assert!(constant.grad().is_none());
    // Constants only: nothing is recorded.
    let z = Var::fused("every_operation", [&constant, &constant], EveryOperation);
    assert!(!z.requires_grad());
}

#[test]
fn fused_names_the_shapes_that_do_not_broadcast() {
    let a = Var::leaf(Tensor::<f64>::ones(&[2, 3]));
    let b = Var::leaf(Tensor::<f64>::ones(&[4]));
    let error = Var::try_fused("every_operation", [&a, &b], EveryOperation)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        error,
        "every_operation: the shapes [2, 3], [4] cannot be broadcast together"
    );
}
