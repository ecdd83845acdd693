//! Broadcasting follows PyTorch's rule; in-place ops write through views, never change another
//! tensor that shares the storage (copy-on-write), and refuse destinations whose elements
//! overlap.

mod common;

use common::*;
use proptest::prelude::*;
use tapeloop_tensor::{Tensor, broadcast_shapes};

fn small_shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..=3, 0..=4)
}

proptest! {
    #![proptest_config(config())]

    /// `broadcast_shapes`, `broadcast_to` and a binary op agree with the rule written out, and
    /// incompatible shapes give the error naming the first (rightmost) mismatch.
    #[test]
    fn broadcasting_follows_the_pytorch_rule(a in small_shape(), b in small_shape()) {
        let got = broadcast_shapes("add", &a, &b);
        match broadcast_rule(&a, &b) {
            Some(want) => {
                prop_assert_eq!(got.unwrap().to_vec(), want.clone());
                let sum = Tensor::<f32>::zeros(&a).add(&Tensor::zeros(&b));
                prop_assert_eq!(sum.shape(), want.as_slice());
            }
            None => {
                let rank = a.len().max(b.len());
                let size_at = |s: &[usize], d: usize| if d < rank - s.len() { 1 } else { s[d - (rank - s.len())] };
                let message = Tensor::<f32>::zeros(&a).try_add(&Tensor::zeros(&b)).unwrap_err().to_string();
                // The error names the leftmost dimension that does not fit.
                let first = (0..rank).find(|&d| {
                    let (x, y) = (size_at(&a, d), size_at(&b, d));
                    x != y && x != 1 && y != 1
                }).unwrap();
                prop_assert_eq!(
                    message,
                    format!(
                        "add: shapes {:?} and {:?} cannot be broadcast: dimension {} has sizes {} and {}",
                        a, b, first as isize - rank as isize, size_at(&a, first), size_at(&b, first)
                    )
                );
                prop_assert!(got.is_err());
            }
        }
    }

    /// In-place updates through a strided (transposed / narrowed) view give the same values as
    /// the out-of-place op, and leave every other tensor sharing the storage unchanged.
    #[test]
    fn inplace_ops_write_through_views_and_copy_on_write(
        shape in shape_strategy(),
        storage in prop_oneof![
            Just(Storage::Contiguous),
            any::<u64>().prop_map(Storage::Permuted),
            any::<u64>().prop_map(Storage::Narrowed),
            any::<u64>().prop_map(Storage::Mixed),
        ],
        seed in any::<u64>(),
        other_seed in any::<u64>(),
        other_storage in storage_strategy(),
        op in 0u8..6,
    ) {
        let values = randn(&shape, seed);
        let other_shape = broadcastable_to(&shape, other_seed);
        let other: Tensor<f64> = strided(&randn(&other_shape, other_seed), other_storage);
        let original: Tensor<f64> = strided(&values, storage);
        let keep = original.clone(); // shares the storage
        let before = keep.to_vec();
        let alpha = -0.75;
        let want = match op {
            0 => original.add(&other),
            1 => original.add(&other.mul_scalar(alpha)),
            2 => original.mul_scalar(alpha),
            3 => Tensor::full(&shape, alpha),
            4 => other.broadcast_to(&shape).contiguous(),
            _ => original.map(|x| x * x - 1.0),
        };
        let apply = |target: &mut Tensor<f64>| match op {
            0 => target.add_assign(&other),
            1 => target.axpy(alpha, &other),
            2 => target.scale_assign(alpha),
            3 => target.fill(alpha),
            4 => target.copy_from(&other),
            _ => target.map_assign(|x| x * x - 1.0),
        };
        let mut target = original.clone();
        apply(&mut target);
        prop_assert_eq!(target.shape(), shape.as_slice());
        for (g, w) in target.to_vec().iter().zip(want.to_vec()) {
            prop_assert!(close(*g, w, 1e-15), "{} vs {}", g, w);
        }
        prop_assert_eq!(keep.to_vec(), before.clone(), "a clone sharing the storage changed");
        prop_assert_eq!(original.to_vec(), before, "the source view changed");
        prop_assert!(!target.shares_storage(&keep), "the write must have copied");
        prop_assert!(target.is_contiguous(), "a copy-on-write result is compact");

        // The same view as the sole owner of its storage is written in place, through its
        // strides, which it keeps.
        let mut sole: Tensor<f64> = strided(&values, storage);
        let strides = sole.strides().to_vec();
        apply(&mut sole);
        prop_assert_eq!(sole.strides(), strides.as_slice(), "an unshared view keeps its strides");
        for (g, w) in sole.to_vec().iter().zip(want.to_vec()) {
            prop_assert!(close(*g, w, 1e-15), "in place: {} vs {}", g, w);
        }
    }
}

#[test]
fn a_unique_tensor_is_updated_in_place_without_a_copy() {
    let mut a = Tensor::<f32>::zeros(&[4, 4]);
    let before = a.as_slice().unwrap().as_ptr();
    a.add_assign(&Tensor::ones(&[4]));
    a.scale_assign(3.0);
    a.axpy(2.0, &Tensor::ones(&[4, 1]));
    assert_eq!(
        a.as_slice().unwrap().as_ptr(),
        before,
        "unique storage must not be copied"
    );
    assert_eq!(a.to_vec(), vec![5.0; 16]);
}

#[test]
fn writing_through_one_view_leaves_sibling_views_alone() {
    let base = Tensor::<f32>::arange(0.0, 6.0, 1.0).reshape(&[2, 3]);
    let mut row = base.select(0, 1);
    let column = base.select(1, 1);
    row.fill(-1.0);
    assert_eq!(row.to_vec(), vec![-1.0; 3]);
    assert_eq!(base.to_vec(), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(column.to_vec(), vec![1.0, 4.0]);
    // After the copy the view owns a compact copy of just its elements.
    assert_eq!(row.shape(), &[3]);
    assert!(row.is_contiguous());
}

#[test]
fn a_view_whose_parent_was_dropped_writes_through_its_strides() {
    // The view is the only owner left: no copy is needed, and writes go through the strides.
    let mut t = Tensor::<f64>::arange(0.0, 12.0, 1.0).reshape(&[3, 4]).t();
    t.add_assign(&Tensor::from_vec(vec![100.0, 200.0, 300.0], &[3]));
    assert_eq!(t.shape(), &[4, 3]);
    assert_eq!(t.select(0, 1).to_vec(), vec![101.0, 205.0, 309.0]);
}

const OVERLAP: &str = "cannot write in place to a view whose elements overlap (shape [2, 3], strides [0, 1]); call contiguous() first";

#[test]
fn overlapping_destinations_are_refused_with_an_error() {
    let row = Tensor::<f32>::ones(&[3]);
    let mut expanded = row.broadcast_to(&[2, 3]);
    let err = expanded
        .try_zip_assign("add_assign", &Tensor::ones(&[3]), |a, b| a + b)
        .unwrap_err();
    assert_eq!(err.to_string(), format!("add_assign: {OVERLAP}"));
    assert_eq!(
        row.to_vec(),
        vec![1.0; 3],
        "the refused write changed nothing"
    );
    assert_eq!(expanded.to_vec(), vec![1.0; 6]);
}

#[test]
#[should_panic(
    expected = "add_assign: cannot write in place to a view whose elements overlap (shape [2, 3], strides [0, 1]); call contiguous() first"
)]
fn add_assign_panics_on_an_overlapping_destination() {
    Tensor::<f32>::ones(&[3])
        .broadcast_to(&[2, 3])
        .add_assign(&Tensor::ones(&[3]));
}

#[test]
#[should_panic(expected = "axpy: cannot write in place to a view whose elements overlap")]
fn axpy_panics_on_an_overlapping_destination() {
    Tensor::<f32>::ones(&[3])
        .broadcast_to(&[2, 3])
        .axpy(2.0, &Tensor::ones(&[3]));
}

#[test]
#[should_panic(expected = "copy_from: cannot write in place to a view whose elements overlap")]
fn copy_from_panics_on_an_overlapping_destination() {
    Tensor::<f32>::ones(&[3])
        .broadcast_to(&[2, 3])
        .copy_from(&Tensor::ones(&[3]));
}

#[test]
#[should_panic(
    expected = "map_assign: cannot write in place to a view whose elements overlap (shape [2, 3], strides [0, 1])"
)]
fn fill_panics_on_an_overlapping_destination() {
    Tensor::<f32>::ones(&[3]).broadcast_to(&[2, 3]).fill(0.0);
}

#[test]
#[should_panic(expected = "map_assign: cannot write in place to a view whose elements overlap")]
fn scale_assign_panics_on_an_overlapping_destination() {
    Tensor::<f32>::ones(&[3])
        .broadcast_to(&[2, 3])
        .scale_assign(2.0);
}

#[test]
fn inplace_source_that_does_not_broadcast_is_an_error() {
    let mut a = Tensor::<f32>::zeros(&[2, 2]);
    let err = a
        .try_zip_assign("add_assign", &Tensor::ones(&[3]), |x, y| x + y)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "add_assign: cannot apply add_assign in place: [3] does not broadcast to [2, 2]"
    );
    // The source may not grow the destination either.
    let err = a
        .try_zip_assign("copy_from", &Tensor::ones(&[3, 2, 2]), |_, y| y)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "copy_from: cannot apply copy_from in place: [3, 2, 2] does not broadcast to [2, 2]"
    );
    assert_eq!(a.to_vec(), vec![0.0; 4]);
    // Shared storage, which is written out of place, is refused the same way: the result
    // must keep the destination's shape, so a source with more or larger dimensions is an
    // error, not a larger tensor.
    let keep = a.clone();
    for source in [[1, 2, 2], [3, 2, 2]] {
        let err = a
            .try_zip_assign("add_assign", &Tensor::ones(&source), |x, y| x + y)
            .unwrap_err();
        assert!(
            err.to_string().contains("does not broadcast to [2, 2]"),
            "{err}"
        );
        assert_eq!(a.shape(), &[2, 2]);
        assert_eq!(a.to_vec(), vec![0.0; 4]);
        assert!(a.shares_storage(&keep));
    }
}

#[test]
fn updating_a_tensor_from_a_view_of_itself_reads_the_old_values() {
    let mut a = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let transposed = a.t();
    a.add_assign(&transposed);
    assert_eq!(a.to_vec(), vec![2.0, 5.0, 5.0, 8.0]);
    assert_eq!(transposed.to_vec(), vec![1.0, 3.0, 2.0, 4.0]);
}

#[test]
fn empty_tensors_accept_inplace_writes() {
    // Row-major strides of [2, 0] are [0, 1]; a stride of 0 must not read as an overlap when
    // there are no elements.
    let mut empty = Tensor::<f32>::zeros(&[2, 0]);
    empty.fill(1.0);
    empty.add_assign(&Tensor::zeros(&[0]));
    assert_eq!(empty.shape(), &[2, 0]);
    // Shared storage takes the out-of-place copy-on-write path.
    let shared = empty.clone();
    empty.add_assign(&Tensor::zeros(&[0]));
    assert_eq!(empty.shape(), &[2, 0]);
    assert_eq!(shared.shape(), &[2, 0]);
}
