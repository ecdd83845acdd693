//! Shared helpers for the tensor integration tests: a dense row-major reference array computed
//! element by element, strided views with known values, and proptest settings.
//!
//! Each test file includes this module with `mod common;`, so not every helper is used by every
//! file.
#![allow(dead_code)]

use proptest::prelude::*;
use tapeloop_tensor::{Element, Tensor, seeded_rng};

/// Proptest cases per property: 64 by default so the suite stays fast, more with
/// `TAPELOOP_PROPTEST_CASES=N`.
pub fn cases() -> u32 {
    std::env::var("TAPELOOP_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

/// Proptest configuration with [`cases`] cases. Failures are not persisted to files: a bug a
/// property finds gets its own unit test.
pub fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases())
    }
}

/// A row-major array of `f64` with a shape: the reference every view and op is checked against.
/// It is deliberately naive: every element is computed from a multi-index.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

/// Every multi-index of `shape` in row-major order.
pub fn indices(shape: &[usize]) -> Vec<Vec<usize>> {
    let count: usize = shape.iter().product();
    let mut out = Vec::with_capacity(count);
    let mut index = vec![0; shape.len()];
    for _ in 0..count {
        out.push(index.clone());
        for d in (0..shape.len()).rev() {
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    out
}

/// Row-major position of a multi-index.
pub fn flat(shape: &[usize], index: &[usize]) -> usize {
    index
        .iter()
        .zip(shape)
        .fold(0, |acc, (&i, &size)| acc * size + i)
}

/// The multi-index of a row-major position.
pub fn unflat(shape: &[usize], mut position: usize) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        index[d] = position % shape[d];
        position /= shape[d];
    }
    index
}

impl Dense {
    /// Builds an array by calling `f` on every multi-index.
    pub fn from_fn(shape: &[usize], f: impl Fn(&[usize]) -> f64) -> Self {
        let data = indices(shape).iter().map(|i| f(i)).collect();
        Self {
            shape: shape.to_vec(),
            data,
        }
    }

    /// The reference for a tensor: its elements read one at a time with `get`.
    pub fn of<T: Element>(t: &Tensor<T>) -> Self {
        Self::from_fn(t.shape(), |i| t.get(i).to_f64_lossy())
    }

    pub fn at(&self, index: &[usize]) -> f64 {
        self.data[flat(&self.shape, index)]
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn tensor<T: Element>(&self) -> Tensor<T> {
        Tensor::from_vec(
            self.data.iter().map(|&x| T::from_f64_lossy(x)).collect(),
            &self.shape,
        )
    }
}

/// Asserts a tensor has the reference's shape and exactly its elements, read both through
/// `to_vec` (the run walker) and through `get` (plain index arithmetic).
#[track_caller]
pub fn assert_matches<T: Element>(t: &Tensor<T>, reference: &Dense) {
    assert_eq!(t.shape(), reference.shape.as_slice(), "shape");
    let got: Vec<f64> = t.to_vec().iter().map(|x| x.to_f64_lossy()).collect();
    assert_eq!(got.len(), reference.len(), "element count");
    for (n, (g, r)) in got.iter().zip(&reference.data).enumerate() {
        assert!(
            same(*g, *r),
            "element {n} (index {:?}): to_vec gives {g}, reference {r}",
            unflat(&reference.shape, n)
        );
    }
    for index in indices(&reference.shape) {
        let g = t.get(&index).to_f64_lossy();
        assert!(same(g, reference.at(&index)), "get({index:?}) gives {g}");
    }
}

/// Equal, or both NaN.
pub fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// Equal within `tol` relative to the magnitude (or both NaN, or equal infinities).
pub fn close(a: f64, b: f64, tol: f64) -> bool {
    same(a, b) || (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

/// Asserts equal shapes and elements equal bit for bit (NaN matching NaN).
#[track_caller]
pub fn assert_identical<T: Element>(got: &Tensor<T>, want: &Tensor<T>) {
    assert_eq!(got.shape(), want.shape(), "shape");
    for (n, (g, w)) in got.to_vec().iter().zip(want.to_vec()).enumerate() {
        assert!(
            same(g.to_f64_lossy(), w.to_f64_lossy()),
            "element {n}: {g} vs {w}"
        );
    }
}

/// Asserts equal shapes and elements within a relative tolerance.
#[track_caller]
pub fn assert_close<T: Element>(got: &Tensor<T>, want: &Dense, tol: f64) {
    assert_eq!(got.shape(), want.shape.as_slice(), "shape");
    for (n, (g, w)) in got.to_vec().iter().zip(&want.data).enumerate() {
        let g = g.to_f64_lossy();
        assert!(
            close(g, *w, tol),
            "element {n} (index {:?}): got {g}, want {w}",
            unflat(&want.shape, n)
        );
    }
}

/// Shapes of rank 0 to 4 with sizes 0 to 5 (size 0 is rarer, so most cases hold elements).
pub fn shape_strategy() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(
        prop_oneof![1 => Just(0usize), 2 => Just(1usize), 7 => 2usize..=5],
        0..=4,
    )
}

/// Shapes of rank 0 to 4 with sizes 1 to 5: every reduction over them is defined.
pub fn nonempty_shape_strategy() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![1 => Just(1usize), 4 => 2usize..=5], 0..=4)
}

/// How [`strided`] lays out a tensor of a requested shape.
#[derive(Clone, Copy, Debug)]
pub enum Storage {
    /// Plain row-major.
    Contiguous,
    /// Stored with the dimensions in another order, then permuted back (a transposed view).
    Permuted(u64),
    /// Stored with padding around every dimension, then narrowed (a block of a larger tensor).
    Narrowed(u64),
    /// Size-1 dimensions in storage broadcast up (stride 0) wherever `seed` picks.
    Broadcast(u64),
    /// Permuted, padded and narrowed together.
    Mixed(u64),
}

pub fn storage_strategy() -> impl Strategy<Value = Storage> {
    prop_oneof![
        Just(Storage::Contiguous),
        any::<u64>().prop_map(Storage::Permuted),
        any::<u64>().prop_map(Storage::Narrowed),
        any::<u64>().prop_map(Storage::Broadcast),
        any::<u64>().prop_map(Storage::Mixed),
    ]
}

/// A small deterministic generator for choices inside a test case (proptest supplies the seed).
pub struct Picker(u64);

impl Picker {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z % n as u64) as usize
    }

    /// A random order of `0..n`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, self.below(i + 1));
        }
        order
    }
}

/// A tensor of `shape` with the elements of `values` (row-major), laid out as `storage` says.
/// The result is a view whose strides are not row-major (except for `Storage::Contiguous`), but
/// whose elements are exactly `values`. For `Storage::Broadcast` the broadcast dimensions repeat
/// the values at index 0 along them, so use [`Dense::of`] on the result as the reference.
pub fn strided<T: Element>(values: &Dense, storage: Storage) -> Tensor<T> {
    let shape = &values.shape;
    let rank = shape.len();
    let base: Tensor<T> = values.tensor();
    match storage {
        Storage::Contiguous => base,
        Storage::Permuted(seed) => permuted(values, &Picker::new(seed).permutation(rank)),
        Storage::Narrowed(seed) => padded(values, &(0..rank).collect::<Vec<_>>(), seed),
        Storage::Mixed(seed) => {
            let mut pick = Picker::new(seed);
            let order = pick.permutation(rank);
            padded(values, &order, seed.rotate_left(17))
        }
        Storage::Broadcast(seed) => {
            let mut pick = Picker::new(seed);
            // Keep index 0 of the dimensions chosen for broadcasting, then expand them back.
            let mut small = base.clone();
            for (d, &size) in shape.iter().enumerate() {
                if pick.below(2) == 0 && size > 0 {
                    small = small.narrow(d as isize, 0, 1);
                }
            }
            let small = small.contiguous();
            // Occasionally also drop a leading broadcast dimension entirely.
            let squeezed = if rank > 0 && small.shape()[0] == 1 && pick.below(2) == 0 {
                small.squeeze(0)
            } else {
                small
            };
            squeezed.broadcast_to(shape)
        }
    }
}

/// Stores `values` with dimensions in `order` (storage dimension `i` is logical dimension
/// `order[i]`), then permutes back to the logical order.
fn permuted<T: Element>(values: &Dense, order: &[usize]) -> Tensor<T> {
    let stored_shape: Vec<usize> = order.iter().map(|&d| values.shape[d]).collect();
    let stored = Dense::from_fn(&stored_shape, |si| {
        let mut logical = vec![0; order.len()];
        for (i, &d) in order.iter().enumerate() {
            logical[d] = si[i];
        }
        values.at(&logical)
    });
    let mut inverse = vec![0isize; order.len()];
    for (i, &d) in order.iter().enumerate() {
        inverse[d] = i as isize;
    }
    stored.tensor::<T>().permute(&inverse)
}

/// Stores `values` permuted by `order` inside a larger array padded with NaN-free junk, then
/// narrows and permutes back.
fn padded<T: Element>(values: &Dense, order: &[usize], seed: u64) -> Tensor<T> {
    let mut pick = Picker::new(seed);
    let rank = order.len();
    let before: Vec<usize> = (0..rank).map(|_| pick.below(3)).collect();
    let after: Vec<usize> = (0..rank).map(|_| pick.below(3)).collect();
    let stored_shape: Vec<usize> = (0..rank)
        .map(|i| before[i] + values.shape[order[i]] + after[i])
        .collect();
    let stored = Dense::from_fn(&stored_shape, |si| {
        let mut logical = vec![0; rank];
        for (i, &d) in order.iter().enumerate() {
            if si[i] < before[i] || si[i] >= before[i] + values.shape[d] {
                return 1.0e6 + flat(&stored_shape, si) as f64; // junk that must never be read
            }
            logical[d] = si[i] - before[i];
        }
        values.at(&logical)
    });
    let mut t = stored.tensor::<T>();
    for i in 0..rank {
        t = t.narrow(i as isize, before[i], values.shape[order[i]]);
    }
    let mut inverse = vec![0isize; rank];
    for (i, &d) in order.iter().enumerate() {
        inverse[d] = i as isize;
    }
    t.permute(&inverse)
}

/// Random normal values with a shape, from a seed.
pub fn randn(shape: &[usize], seed: u64) -> Dense {
    Dense::of(&Tensor::<f64>::randn(shape, &mut seeded_rng(seed)))
}

/// Random uniform values in `[low, high)` with a shape, from a seed.
pub fn uniform(shape: &[usize], low: f64, high: f64, seed: u64) -> Dense {
    Dense::of(&Tensor::<f64>::rand_uniform(
        shape,
        low,
        high,
        &mut seeded_rng(seed),
    ))
}

/// A shape that broadcasts to `shape`: each dimension kept or set to 1, and leading dimensions
/// possibly dropped, as `seed` picks.
pub fn broadcastable_to(shape: &[usize], seed: u64) -> Vec<usize> {
    let mut pick = Picker::new(seed);
    let drop = pick.below(shape.len() + 1);
    shape[drop..]
        .iter()
        .map(|&s| if pick.below(3) == 0 { 1 } else { s })
        .collect()
}

/// The element of `values` that broadcasting it to `index` (right-aligned) reads.
pub fn broadcast_at(values: &Dense, index: &[usize]) -> f64 {
    let lead = index.len() - values.shape.len();
    let source: Vec<usize> = values
        .shape
        .iter()
        .enumerate()
        .map(|(d, &size)| if size == 1 { 0 } else { index[lead + d] })
        .collect();
    values.at(&source)
}

/// PyTorch's broadcasting rule written out: align at the right, sizes equal or one of them 1.
/// `None` when the shapes are incompatible.
pub fn broadcast_rule(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let size_at = |s: &[usize], d: usize| {
        if d < rank - s.len() {
            1
        } else {
            s[d - (rank - s.len())]
        }
    };
    (0..rank)
        .map(|d| match (size_at(a, d), size_at(b, d)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}
