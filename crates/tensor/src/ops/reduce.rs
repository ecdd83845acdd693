//! Reductions over one or more dimensions (with `keepdim`), and the numerically stable
//! logsumexp, softmax and log_softmax built from them.

use smallvec::SmallVec;

use crate::element::Element;
use crate::error::{Result, TensorError};
use crate::layout::{Layout, element_count, for_each_run, normalize_dim};
use crate::macros::panicking_forms;
use crate::ops::elementwise::{map, zip};
use crate::ops::simd;
use crate::tensor::Tensor;

/// Sums a slice with eight independent accumulators so LLVM can vectorize the loop (a single
/// running sum is a dependency chain it must keep in order).
fn sum_slice<T: Element>(values: &[T]) -> T {
    let mut lanes = [T::zero(); 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    let tail: T = chunks.remainder().iter().copied().sum();
    lanes.iter().copied().sum::<T>() + tail
}

/// How a reduction folds values.
#[derive(Clone, Copy)]
enum Fold {
    Sum,
    Max,
    Min,
}

impl Fold {
    fn init<T: Element>(self) -> T {
        match self {
            Fold::Sum => T::zero(),
            Fold::Max => T::neg_infinity(),
            Fold::Min => T::infinity(),
        }
    }

    #[inline(always)]
    fn combine<T: Element>(self, acc: T, x: T) -> T {
        match self {
            Fold::Sum => acc + x,
            // NaN propagates, as in PyTorch.
            Fold::Max => {
                if x.is_nan() || x > acc {
                    x
                } else {
                    acc
                }
            }
            Fold::Min => {
                if x.is_nan() || x < acc {
                    x
                } else {
                    acc
                }
            }
        }
    }
}

/// Resolves and deduplicates reduction dimensions; an empty list means every dimension.
fn resolve_dims(op: &'static str, dims: &[isize], rank: usize) -> Result<SmallVec<[usize; 4]>> {
    if dims.is_empty() {
        return Ok((0..rank).collect());
    }
    let mut out: SmallVec<[usize; 4]> = SmallVec::new();
    for &d in dims {
        let d = normalize_dim(op, d, rank)?;
        if out.contains(&d) {
            return Err(TensorError::new(
                op,
                format!("dimension {d} is listed twice in {dims:?}"),
            ));
        }
        out.push(d);
    }
    Ok(out)
}

/// Max and min have no value over an empty set (PyTorch refuses them too); the other
/// reductions do (0 for a sum, -inf for logsumexp), so only these two check.
fn check_nonempty<T: Element>(op: &'static str, input: &Tensor<T>, dims: &[isize]) -> Result<()> {
    let resolved = resolve_dims(op, dims, input.rank())?;
    if resolved.iter().any(|&d| input.shape()[d] == 0) {
        return Err(TensorError::new(
            op,
            format!(
                "cannot reduce over an empty dimension (shape {:?})",
                input.shape()
            ),
        ));
    }
    Ok(())
}

/// Folds `input` over `dims`. Over an empty dimension every fold yields its identity (0, or ∓∞
/// for max and min); the public max and min refuse that case first.
fn reduce<T: Element>(
    op: &'static str,
    input: &Tensor<T>,
    dims: &[isize],
    keepdim: bool,
    fold: Fold,
) -> Result<Tensor<T>> {
    let dims = resolve_dims(op, dims, input.rank())?;
    let kept_shape = input.reduced_shape(&dims, true);
    // An empty input can reduce to a shape too large to count: [0, 2⁴⁰, 2⁴⁰] summed over dim 0.
    let mut out = vec![fold.init::<T>(); element_count(op, &kept_shape)?];
    // The output seen through the input's shape: stride 0 along reduced dimensions.
    let out_view = Layout::contiguous(&kept_shape)
        .broadcast_to(op, input.shape())
        .expect("a keepdim shape always broadcasts back to its input");
    let storage = &input.storage[..];
    for_each_run(
        input.shape(),
        [out_view.strides(), input.strides()],
        [0, input.layout.offset()],
        0,
        input.len(),
        |[o, i], len, [out_stride, in_stride]| match (out_stride, in_stride) {
            (0, 1) => {
                let run = &storage[i..i + len];
                out[o] = match fold {
                    Fold::Sum => out[o] + sum_slice(run),
                    _ => run.iter().fold(out[o], |acc, &x| fold.combine(acc, x)),
                };
            }
            (0, _) => {
                out[o] = (0..len).fold(out[o], |acc, k| {
                    fold.combine(acc, storage[i + k * in_stride])
                });
            }
            (1, 1) => {
                let (acc, run) = (&mut out[o..o + len], &storage[i..i + len]);
                match fold {
                    // Summing rows (a bias gradient) is one vector add per row.
                    Fold::Sum => simd::assign(acc, run, &|a, x| a + x),
                    _ => simd::assign(acc, run, &|a, x| fold.combine(a, x)),
                }
            }
            _ => {
                for k in 0..len {
                    let acc = &mut out[o + k * out_stride];
                    *acc = fold.combine(*acc, storage[i + k * in_stride]);
                }
            }
        },
    );
    let shape = input.reduced_shape(&dims, keepdim);
    Ok(Tensor::from_contiguous(out, &shape))
}

impl<T: Element> Tensor<T> {
    /// Sum over `dims` (all dimensions when empty).
    pub fn try_sum(&self, dims: &[isize], keepdim: bool) -> Result<Self> {
        reduce("sum", self, dims, keepdim, Fold::Sum)
    }

    /// Mean over `dims` (all dimensions when empty).
    pub fn try_mean(&self, dims: &[isize], keepdim: bool) -> Result<Self> {
        let resolved = resolve_dims("mean", dims, self.rank())?;
        let count: usize = resolved.iter().map(|&d| self.shape()[d]).product();
        let scale = T::one() / T::from_usize(count).unwrap();
        Ok(self.try_sum(dims, keepdim)?.mul_scalar(scale))
    }

    /// Maximum over `dims` (all dimensions when empty).
    pub fn try_max(&self, dims: &[isize], keepdim: bool) -> Result<Self> {
        check_nonempty("max", self, dims)?;
        reduce("max", self, dims, keepdim, Fold::Max)
    }

    /// Minimum over `dims` (all dimensions when empty).
    pub fn try_min(&self, dims: &[isize], keepdim: bool) -> Result<Self> {
        check_nonempty("min", self, dims)?;
        reduce("min", self, dims, keepdim, Fold::Min)
    }

    /// The Euclidean (L2) norm over `dims` (all dimensions when empty).
    pub fn try_norm_l2(&self, dims: &[isize], keepdim: bool) -> Result<Self> {
        // Resolved here so a bad dimension is reported as norm_l2's, not sum's.
        resolve_dims("norm_l2", dims, self.rank())?;
        Ok(self.square().try_sum(dims, keepdim)?.sqrt())
    }

    /// `log Σ exp(x)` over `dims`, computed as `m + log Σ exp(x − m)` with `m` the maximum so
    /// large inputs do not overflow.
    pub fn try_logsumexp(&self, dims: &[isize], keepdim: bool) -> Result<Self> {
        let shift = self.stable_shift("logsumexp", dims)?;
        let summed = zip("logsumexp", self, &shift, |x, m| (x - m).exp())?.try_sum(dims, true)?;
        let out = zip("logsumexp", &summed, &shift, |s, m| s.ln() + m)?;
        if keepdim {
            Ok(out)
        } else {
            let resolved = resolve_dims("logsumexp", dims, self.rank())?;
            let shape = self.reduced_shape(&resolved, false);
            out.try_reshape(&shape)
        }
    }

    /// Softmax along `dim`, shifted by the maximum for stability.
    pub fn try_softmax(&self, dim: isize) -> Result<Self> {
        let shift = self.stable_shift("softmax", &[dim])?;
        let exps = zip("softmax", self, &shift, |x, m| (x - m).exp())?;
        let total = exps.try_sum(&[dim], true)?;
        zip("softmax", &exps, &total, |e, s| e / s)
    }

    /// Log-softmax along `dim`: `x − logsumexp(x)`, computed as `(x − m) − log Σ exp(x − m)`.
    pub fn try_log_softmax(&self, dim: isize) -> Result<Self> {
        // Subtracting the shift first keeps the result exact for large `x`: in f32,
        // `1000 − logsumexp([1000, 1000])` loses four digits to the rounding of `1000.693`.
        let shift = self.stable_shift("log_softmax", &[dim])?;
        let shifted = zip("log_softmax", self, &shift, |x, m| x - m)?;
        let log_total = map(&shifted, |x| x.exp()).try_sum(&[dim], true)?.log();
        zip("log_softmax", &shifted, &log_total, |x, l| x - l)
    }

    /// The position of the largest element along `dim` (first one on ties), as integer-valued
    /// elements of the tensor's own type.
    pub fn try_argmax(&self, dim: isize, keepdim: bool) -> Result<Self> {
        self.arg_extreme("argmax", dim, keepdim, |x, best| {
            x > best || (x.is_nan() && !best.is_nan())
        })
    }

    /// The position of the smallest element along `dim` (first one on ties).
    pub fn try_argmin(&self, dim: isize, keepdim: bool) -> Result<Self> {
        self.arg_extreme("argmin", dim, keepdim, |x, best| {
            x < best || (x.is_nan() && !best.is_nan())
        })
    }

    fn arg_extreme(
        &self,
        op: &'static str,
        dim: isize,
        keepdim: bool,
        better: impl Fn(T, T) -> bool,
    ) -> Result<Self> {
        let d = normalize_dim(op, dim, self.rank())?;
        let size = self.shape()[d];
        if size == 0 {
            return Err(TensorError::new(
                op,
                format!("dimension {d} is empty (shape {:?})", self.shape()),
            ));
        }
        // Move `dim` to the end keeping the other dimensions in order, so the rows below come
        // out in the order of the result's shape. (A transpose of `dim` with the last one would
        // reorder the others too.)
        let order: Vec<isize> = (0..self.rank())
            .filter(|&k| k != d)
            .chain([d])
            .map(|k| k as isize)
            .collect();
        let moved = self.try_permute(&order)?.contiguous();
        let values = moved.as_slice().expect("contiguous");
        let data: Vec<T> = values
            .chunks_exact(size)
            .map(|row| {
                let mut best = 0;
                for (i, &x) in row.iter().enumerate() {
                    if better(x, row[best]) {
                        best = i;
                    }
                }
                T::from_usize(best).unwrap()
            })
            .collect();
        let shape = self.reduced_shape(&[d], keepdim);
        Ok(Self::from_contiguous(data, &shape))
    }

    /// The maximum over `dims` with keepdim, with infinite maxima replaced by 0 so that
    /// `x − m` stays finite for rows that are entirely `-inf`.
    fn stable_shift(&self, op: &'static str, dims: &[isize]) -> Result<Self> {
        let max = reduce(op, self, dims, true, Fold::Max)?;
        Ok(map(&max, |m| if m.is_finite() { m } else { T::zero() }))
    }

    panicking_forms! {
        /// Sum over `dims` (all when empty); panics on a bad dimension.
        ///
        /// ```
        /// use tapeloop_tensor::Tensor;
        /// let a = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
        /// assert_eq!(a.sum(&[0], false).to_vec(), vec![4.0, 6.0]);
        /// assert_eq!(a.sum(&[], false).item(), 10.0);
        /// ```
        fn sum => try_sum(dims: &[isize], keepdim: bool) -> Self;
        /// Mean over `dims` (all when empty).
        fn mean => try_mean(dims: &[isize], keepdim: bool) -> Self;
        /// Maximum over `dims` (all when empty).
        fn max => try_max(dims: &[isize], keepdim: bool) -> Self;
        /// Minimum over `dims` (all when empty).
        fn min => try_min(dims: &[isize], keepdim: bool) -> Self;
        /// L2 norm over `dims` (all when empty).
        fn norm_l2 => try_norm_l2(dims: &[isize], keepdim: bool) -> Self;
        /// Stable `log Σ exp` over `dims`.
        ///
        /// ```
        /// use tapeloop_tensor::Tensor;
        /// let a = Tensor::<f64>::from_vec(vec![1000.0, 1000.0], &[2]);
        /// assert!((a.logsumexp(&[0], false).item() - (1000.0 + 2f64.ln())).abs() < 1e-9);
        /// ```
        fn logsumexp => try_logsumexp(dims: &[isize], keepdim: bool) -> Self;
        /// Softmax along one dimension.
        ///
        /// ```
        /// use tapeloop_tensor::Tensor;
        /// let p = Tensor::<f64>::from_vec(vec![0.0, 0.0], &[2]).softmax(0);
        /// assert_eq!(p.to_vec(), vec![0.5, 0.5]);
        /// ```
        fn softmax => try_softmax(dim: isize) -> Self;
        /// Log-softmax along one dimension.
        fn log_softmax => try_log_softmax(dim: isize) -> Self;
        /// Index of the maximum along `dim` (as values of type `T`).
        ///
        /// ```
        /// use tapeloop_tensor::Tensor;
        /// let a = Tensor::<f32>::from_vec(vec![1.0, 9.0, 3.0, 7.0, 2.0, 0.0], &[2, 3]);
        /// assert_eq!(a.argmax(1, false).to_vec(), vec![1.0, 0.0]);
        /// ```
        fn argmax => try_argmax(dim: isize, keepdim: bool) -> Self;
        /// Index of the minimum along `dim` (as values of type `T`).
        fn argmin => try_argmin(dim: isize, keepdim: bool) -> Self;
    }

    /// Sums a broadcast result back to `shape` (the inverse of broadcasting `shape` up to
    /// `self.shape()`): how the gradient of a broadcast operand is formed.
    ///
    /// ```
    /// use tapeloop_tensor::Tensor;
    /// let g = Tensor::<f32>::ones(&[4, 3]);
    /// assert_eq!(g.sum_to_shape(&[3]).to_vec(), vec![4.0; 3]);
    /// assert_eq!(g.sum_to_shape(&[4, 1]).to_vec(), vec![3.0; 4]);
    /// ```
    #[track_caller]
    pub fn sum_to_shape(&self, shape: &[usize]) -> Self {
        self.try_sum_to_shape(shape)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sums a broadcast result back to `shape`; an error when `shape` does not broadcast to
    /// this tensor's shape.
    pub fn try_sum_to_shape(&self, shape: &[usize]) -> Result<Self> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let lead = self.rank().checked_sub(shape.len()).ok_or_else(|| {
            TensorError::new(
                "sum_to_shape",
                format!(
                    "cannot reduce shape {:?} to the larger rank of {:?}",
                    self.shape(),
                    shape
                ),
            )
        })?;
        let mut dims: SmallVec<[isize; 4]> = (0..lead as isize).collect();
        for (i, &size) in shape.iter().enumerate() {
            let have = self.shape()[lead + i];
            if size == 1 && have != 1 {
                dims.push((lead + i) as isize);
            } else if size != have {
                return Err(TensorError::new(
                    "sum_to_shape",
                    format!("shape {:?} does not broadcast to {:?}", shape, self.shape()),
                ));
            }
        }
        if dims.is_empty() {
            return self.try_reshape(shape);
        }
        self.try_sum(&dims, true)?.try_reshape(shape)
    }

    /// The sum of all elements as a number.
    pub fn sum_all(&self) -> T {
        self.sum(&[], false).item()
    }
}
