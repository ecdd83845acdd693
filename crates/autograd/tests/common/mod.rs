//! Shared helpers of the autograd integration tests: proptest case counts, inputs with strided
//! layouts, and a check that runs both gradcheck and gradgradcheck.

#![allow(dead_code)] // each test binary uses its own subset

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tapeloop_autograd::strategies::{positive, well_conditioned};
use tapeloop_autograd::{CheckOutputs, GradcheckOptions, Tensor, Var, gradcheck, gradgradcheck};

/// Cases per property: `default`, or `TAPELOOP_PROPTEST_CASES` when set (to search harder, e.g.
/// `TAPELOOP_PROPTEST_CASES=1000 cargo test --release -p tapeloop-autograd`).
pub fn cases(default: u32) -> u32 {
    std::env::var("TAPELOOP_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A proptest configuration with [`cases`] cases.
pub fn config(default: u32) -> ProptestConfig {
    ProptestConfig::with_cases(cases(default))
}

/// Which values an op accepts without a kink, pole or NaN nearby.
#[derive(Clone, Copy, Debug)]
pub enum Domain {
    /// Magnitudes in [0.1, 2] with either sign (away from the kinks of relu, abs, recip at 0).
    AwayFromZero,
    /// Values in [0.1, 2] (log, sqrt, pow bases).
    Positive,
}

fn value(domain: Domain) -> BoxedStrategy<f64> {
    match domain {
        Domain::AwayFromZero => well_conditioned().boxed(),
        Domain::Positive => positive().boxed(),
    }
}

/// How an input tensor is laid out in memory.
#[derive(Clone, Copy, Debug)]
pub enum Layout {
    /// Row-major, no gaps.
    Contiguous,
    /// Every dimension reversed in memory (a permuted view, column-major for matrices).
    Reversed,
    /// A view that skips the first and last element of every row (a narrowed view).
    Narrowed,
}

/// A tensor of `shape` laid out as `layout`, holding `data` in its visible elements.
fn lay_out(shape: &[usize], layout: Layout, data: Vec<f64>) -> Tensor<f64> {
    let rank = shape.len();
    match layout {
        Layout::Contiguous => Tensor::from_vec(data, shape),
        Layout::Reversed => {
            let reversed: Vec<usize> = shape.iter().rev().copied().collect();
            let order: Vec<isize> = (0..rank as isize).rev().collect();
            // The data are generated in the view's order, so write them through the view.
            let mut view = Tensor::zeros(&reversed).permute(&order);
            set_all(&mut view, &data);
            view
        }
        Layout::Narrowed if rank > 0 => {
            let mut wider = shape.to_vec();
            wider[rank - 1] += 2;
            let mut view = Tensor::zeros(&wider).narrow(-1, 1, shape[rank - 1]);
            set_all(&mut view, &data);
            view
        }
        Layout::Narrowed => Tensor::from_vec(data, shape),
    }
}

/// Writes `data` (row-major order of the view) into `view`, keeping its layout.
fn set_all(view: &mut Tensor<f64>, data: &[f64]) {
    let shape = view.shape().to_vec();
    for (flat, &x) in data.iter().enumerate() {
        let mut rest = flat;
        let mut index = vec![0; shape.len()];
        for (slot, &size) in index.iter_mut().zip(&shape).rev() {
            *slot = rest % size;
            rest /= size;
        }
        view.set(&index, x);
    }
}

/// An `f64` input of `shape` with values from `domain`, contiguous or strided at random.
pub fn input(shape: Vec<usize>, domain: Domain) -> BoxedStrategy<Tensor<f64>> {
    let count: usize = shape.iter().product();
    (
        prop::collection::vec(value(domain), count),
        prop_oneof![
            Just(Layout::Contiguous),
            Just(Layout::Reversed),
            Just(Layout::Narrowed)
        ],
    )
        .prop_map(move |(data, layout)| {
            let tensor = lay_out(&shape, layout, data);
            assert_eq!(tensor.shape(), &shape[..]);
            tensor
        })
        .boxed()
}

/// Shapes of rank `0..=max_rank` with dimensions in `1..=max_dim`.
pub fn shape(max_rank: usize, max_dim: usize) -> BoxedStrategy<Vec<usize>> {
    tapeloop_autograd::strategies::shape(max_rank, max_dim).boxed()
}

/// Shapes of rank `1..=max_rank` with dimensions in `1..=max_dim`.
pub fn shape_at_least_1d(max_rank: usize, max_dim: usize) -> BoxedStrategy<Vec<usize>> {
    prop::collection::vec(1..=max_dim, 1..=max_rank).boxed()
}

/// An input of random shape (rank ≤ 3, dims ≤ 3) from `domain`, with a random layout.
pub fn any_input(domain: Domain) -> BoxedStrategy<Tensor<f64>> {
    shape(3, 3).prop_flat_map(move |s| input(s, domain)).boxed()
}

/// Runs `gradcheck` and `gradgradcheck` with the default tolerances, reporting a failure with
/// the check's own message.
pub fn check<F, O>(f: F, inputs: &[Tensor<f64>]) -> Result<(), TestCaseError>
where
    F: Fn(&[Var<f64>]) -> O,
    O: CheckOutputs,
{
    let options = GradcheckOptions::default();
    gradcheck(&f, inputs, &options)
        .map_err(|e| TestCaseError::fail(format!("first derivative: {e}")))?;
    gradgradcheck(&f, inputs, &options)
        .map_err(|e| TestCaseError::fail(format!("second derivative: {e}")))?;
    Ok(())
}

/// `x` itself, or (when `broadcast`) `x` broadcast along a new leading dimension of size 2, so
/// the op under test reads a stride-0 view.
pub fn maybe_broadcast(x: &Var<f64>, broadcast: bool) -> Var<f64> {
    if broadcast {
        let mut shape = vec![2];
        shape.extend_from_slice(x.shape());
        x.unsqueeze(0).broadcast_to(&shape)
    } else {
        x.clone()
    }
}

/// A random subset of a rank-`rank` tensor's dimensions, each written either as a positive or a
/// negative index; empty means "all".
pub fn dims(rank: usize) -> BoxedStrategy<Vec<isize>> {
    (
        prop::collection::vec(any::<bool>(), rank),
        prop::collection::vec(any::<bool>(), rank),
    )
        .prop_map(move |(picked, negative)| {
            (0..rank)
                .filter(|&d| picked[d])
                .map(|d| {
                    if negative[d] {
                        d as isize - rank as isize
                    } else {
                        d as isize
                    }
                })
                .collect()
        })
        .boxed()
}

/// One dimension of a rank-`rank` tensor (rank ≥ 1), positive or negative.
pub fn dim(rank: usize) -> BoxedStrategy<isize> {
    let rank = rank as isize;
    (-rank..rank).boxed()
}

/// Resolves a possibly negative dimension.
pub fn resolve(dim: isize, rank: usize) -> usize {
    if dim < 0 {
        (dim + rank as isize) as usize
    } else {
        dim as usize
    }
}
