//! proptest strategies for property tests of ops and cells (feature `proptest`).
//!
//! ```
//! use proptest::prelude::*;
//! use tapeloop_autograd::strategies::{shape, tensor_with_shape};
//! use tapeloop_autograd::{GradcheckOptions, Var, gradcheck};
//!
//! proptest! {
//!     #![proptest_config(ProptestConfig::with_cases(8))]
//!     // In a test file, put #[test] here.
//!     fn tanh_passes_gradcheck(x in shape(3, 4).prop_flat_map(tensor_with_shape)) {
//!         gradcheck(|v: &[Var<f64>]| v[0].tanh(), &[x], &GradcheckOptions::default()).unwrap();
//!     }
//! }
//! # tanh_passes_gradcheck();
//! ```

use proptest::prelude::*;
use tensor::Tensor;

/// Shapes of rank `0..=max_rank` with every dimension in `1..=max_dim`.
pub fn shape(max_rank: usize, max_dim: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1..=max_dim, 0..=max_rank)
}

/// Well-conditioned values: magnitudes in `[0.1, 2]` with random sign, away from the kinks
/// and poles (0 for `abs`, `log`, `recip`) where finite differences mislead.
pub fn well_conditioned() -> impl Strategy<Value = f64> {
    (0.1f64..2.0, any::<bool>()).prop_map(|(m, negative)| if negative { -m } else { m })
}

/// Positive well-conditioned values in `[0.1, 2]` (for `log`, `sqrt`, `pow` bases).
pub fn positive() -> impl Strategy<Value = f64> {
    0.1f64..2.0
}

/// An `f64` tensor of `shape` with well-conditioned values.
pub fn tensor_with_shape(shape: Vec<usize>) -> impl Strategy<Value = Tensor<f64>> {
    let count = shape.iter().product::<usize>();
    prop::collection::vec(well_conditioned(), count)
        .prop_map(move |data| Tensor::from_vec(data, &shape))
}

/// An `f64` tensor of random shape (rank ≤ `max_rank`, dims ≤ `max_dim`).
pub fn tensor(max_rank: usize, max_dim: usize) -> impl Strategy<Value = Tensor<f64>> {
    shape(max_rank, max_dim).prop_flat_map(tensor_with_shape)
}

/// Two shapes that broadcast together under PyTorch's rules: the second is the first with some
/// dimensions set to 1 and some leading dimensions dropped, in either order.
pub fn broadcast_pair(
    max_rank: usize,
    max_dim: usize,
) -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    shape(max_rank, max_dim)
        .prop_flat_map(|full| {
            let rank = full.len();
            (
                Just(full),
                prop::collection::vec(any::<bool>(), rank),
                0..=rank,
                any::<bool>(),
            )
        })
        .prop_map(|(full, ones, dropped, swap)| {
            let reduced: Vec<usize> = full
                .iter()
                .zip(&ones)
                .map(|(&d, &one)| if one { 1 } else { d })
                .skip(dropped)
                .collect();
            if swap {
                (reduced, full)
            } else {
                (full, reduced)
            }
        })
}
