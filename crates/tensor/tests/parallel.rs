//! Sizes above `PARALLEL_THRESHOLD`, so the chunked multi-threaded paths run: contiguous and strided,
//! with inner runs that cross chunk boundaries. Each result is checked element by element
//! against a scalar computation through `get`.

mod common;

use common::*;
use tapeloop_tensor::{PARALLEL_THRESHOLD, Tensor, seeded_rng};

/// 257 × 301 = 77 357 elements (above the threshold); rows of 301 do not divide the parallel
/// chunks, so runs cross chunk boundaries.
const ROWS: usize = 257;
const COLS: usize = 301;

fn big(seed: u64) -> Tensor<f32> {
    Tensor::randn(&[ROWS, COLS], &mut seeded_rng(seed))
}

/// Every element of `got` equals `f` of the index.
#[track_caller]
fn assert_each(got: &Tensor<f32>, f: impl Fn(&[usize]) -> f32) {
    let data = got.to_vec();
    for (n, index) in indices(got.shape()).iter().enumerate() {
        let want = f(index);
        assert!(
            data[n] == want || (data[n].is_nan() && want.is_nan()),
            "element {index:?}: got {}, want {want}",
            data[n]
        );
    }
}

// The sizes here are above the threshold (checked when compiling).
const _: () = assert!(ROWS * COLS > PARALLEL_THRESHOLD);
const _: () = assert!((ROWS - 2) * (COLS - 3) > PARALLEL_THRESHOLD);

/// Every element of `got` is within `tolerance` of `f` of the index.
#[track_caller]
fn assert_each_within(got: &Tensor<f32>, tolerance: f32, f: impl Fn(&[usize]) -> f32) {
    let data = got.to_vec();
    for (n, index) in indices(got.shape()).iter().enumerate() {
        let want = f(index);
        assert!(
            (data[n] - want).abs() <= tolerance,
            "element {index:?}: got {}, want {want}",
            data[n]
        );
    }
}

#[test]
fn unary_contiguous_and_strided() {
    let x = big(1);
    // f32 tanh and sigmoid are a rational approximation (ops/approx.rs): within 1e-6.
    assert_each_within(&x.tanh(), 1e-6, |i| x.get(i).tanh());
    // Transposed: inner runs of stride COLS.
    let t = x.t();
    assert_each(&t.exp(), |i| t.get(i).exp());
    // Narrowed: contiguous runs of COLS - 3 that start mid-row, crossing chunk boundaries.
    let n = x.narrow(0, 1, ROWS - 2).narrow(1, 2, COLS - 3);
    assert_each_within(&n.sigmoid(), 1e-6, |i| n.get(i).sigmoid_ref());
    assert_each(&n.relu(), |i| n.get(i).max(0.0));
    // Broadcast: a row repeated.
    let row = x.select(0, 3);
    let b = row.broadcast_to(&[ROWS, COLS]);
    assert_each(&b.square(), |i| row.get(&[i[1]]) * row.get(&[i[1]]));
}

trait SigmoidRef {
    fn sigmoid_ref(self) -> Self;
}
impl SigmoidRef for f32 {
    fn sigmoid_ref(self) -> f32 {
        1.0 / (1.0 + (-self).exp())
    }
}

#[test]
fn binary_contiguous_broadcast_and_strided() {
    let (x, y) = (big(2), big(3));
    assert_each(&x.mul(&y), |i| x.get(i) * y.get(i));
    let row = y.select(0, 0); // [COLS]
    assert_each(&x.add(&row), |i| x.get(i) + row.get(&[i[1]]));
    let column = y.narrow(1, 0, 1); // [ROWS, 1], strided
    assert_each(&x.sub(&column), |i| x.get(i) - column.get(&[i[0], 0]));
    // Outer product by broadcasting [ROWS, 1] against [COLS].
    assert_each(&column.mul(&row), |i| {
        column.get(&[i[0], 0]) * row.get(&[i[1]])
    });
    // Both strided: a transposed operand against a narrowed one of the same shape.
    let square = Tensor::<f32>::randn(&[300, 300], &mut seeded_rng(4));
    let other = Tensor::<f32>::randn(&[302, 305], &mut seeded_rng(5))
        .narrow(0, 1, 300)
        .narrow(1, 4, 300);
    let t = square.t();
    assert_each(&t.div(&other), |i| t.get(i) / other.get(i));
    assert_each(&t.maximum(&other), |i| t.get(i).max(other.get(i)));
}

#[test]
fn where_cond_large() {
    let (x, y) = (big(6), big(7));
    let mask = x.gt_mask(&y);
    let picked = mask.where_cond(&x, &y.t().contiguous().t());
    assert_each(&picked, |i| x.get(i).max(y.get(i)));
}

/// Contiguous pieces of uneven sizes (one empty), joined along either dimension: the parallel
/// chunks of the result start mid-row and mid-piece.
#[test]
fn cat_large_from_uneven_pieces() {
    let x = big(9);
    for (dim, len) in [(0, ROWS), (1, COLS)] {
        let cuts = [0, 7, 7, 100, len];
        let pieces: Vec<Tensor<f32>> = cuts
            .windows(2)
            .map(|w| x.narrow(dim, w[0], w[1] - w[0]).contiguous())
            .collect();
        let refs: Vec<&Tensor<f32>> = pieces.iter().collect();
        let joined = Tensor::cat(&refs, dim);
        assert_eq!(joined.shape(), x.shape());
        assert_each(&joined, |i| x.get(i));
    }
    // Many small pieces, as a recurrent layer's per-step gradients are joined.
    let steps: Vec<Tensor<f32>> = (0..ROWS).map(|r| x.narrow(0, r, 1).contiguous()).collect();
    let refs: Vec<&Tensor<f32>> = steps.iter().collect();
    assert_each(&Tensor::stack(&refs, 0), |i| x.get(&[i[0], i[2]]));
}

#[test]
fn reductions_large() {
    let x = Tensor::<f64>::randn(&[1 << 10, 1 << 10], &mut seeded_rng(8));
    let data = x.to_vec();
    let total: f64 = data.iter().sum();
    let magnitude: f64 = data.iter().map(|v| v.abs()).sum();
    assert!((x.sum_all() - total).abs() <= 1e-12 * magnitude);
    assert!((x.t().sum_all() - total).abs() <= 1e-12 * magnitude);
    let rows = x.sum(&[1], false).to_vec();
    let columns = x.sum(&[0], false).to_vec();
    for k in [0, 511, 1023] {
        let row: f64 = (0..1024).map(|j| x.get(&[k, j])).sum();
        let column: f64 = (0..1024).map(|i| x.get(&[i, k])).sum();
        assert!((rows[k] - row).abs() < 1e-10 && (columns[k] - column).abs() < 1e-10);
    }
    let max = x.t().max(&[0], false).to_vec();
    for (k, &m) in max.iter().enumerate().step_by(97) {
        assert_eq!(
            m,
            (0..1024)
                .map(|j| x.get(&[k, j]))
                .fold(f64::NEG_INFINITY, f64::max)
        );
    }
    let p = x.narrow(1, 3, 1000).softmax(-1);
    let sums = p.sum(&[1], false).to_vec();
    assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-12));
}

/// `x` (a transposed `big`, [COLS, ROWS]) plus `0, 1, …, ROWS − 1` along its rows, in place;
/// checks that element `[i, j]` gained `j`, sampling every `step`-th element.
fn add_column_indices(x: &mut Tensor<f32>, step: usize) {
    let before = x.to_vec();
    let column = Tensor::<f32>::from_vec((0..ROWS).map(|i| i as f32).collect(), &[ROWS]);
    x.add_assign(&column);
    let after = x.to_vec();
    for (n, index) in indices(x.shape()).iter().enumerate().step_by(step) {
        assert_eq!(after[n], before[n] + index[1] as f32);
    }
}

#[test]
fn inplace_large_on_shared_storage_writes_a_copy() {
    // Shared storage is updated out of place, by the multi-threaded kernel at this size.
    let original = big(11).t();
    let before = original.to_vec();
    let mut x = original.clone();
    add_column_indices(&mut x, 97);
    assert!(!x.shares_storage(&original) && x.is_contiguous());
    assert_eq!(
        original.to_vec(),
        before,
        "the shared tensor must not change"
    );
}

#[test]
fn inplace_large_through_a_view() {
    let mut x = big(9).t(); // unique storage, transposed strides
    let before = x.to_vec();
    let y = big(10).select(0, 5); // [COLS]: one value per row of x
    add_column_indices(&mut x, 101);
    x.axpy(0.5, &y.unsqueeze(1));
    assert_eq!(
        x.get(&[7, 3]),
        before[7 * ROWS + 3] + 3.0 + 0.5 * y.get(&[7])
    );
}
