//! Elementwise kernels: unary maps and broadcasting binary and ternary zips.
//!
//! Each kernel has a contiguous fast path over plain slices (which LLVM vectorizes) and a
//! strided path that walks contiguous inner runs; a transposed-matrix operand is first copied
//! row-major by the tiled transpose (and that copy, updated in place, is a binary op's result
//! when the other operand is row-major and of the same shape). Above [`PARALLEL_THRESHOLD`]
//! elements the output is split into chunks shared by the calling thread and its helpers.

use std::mem::MaybeUninit;

use crate::element::Element;
use crate::error::Result;
use crate::layout::{Layout, broadcast_shapes, for_each_run};
use crate::ops::simd;
use crate::ops::transpose::{ColumnMajor, row_major_if_transposed};
use crate::parallel;
use crate::tensor::Tensor;

/// Elementwise ops (and the copy of a transposed operand) with at least this many elements split
/// across threads. Below it the cost of waking the pool exceeds the work (measured in
/// `benches/tensor.rs`). At 2¹⁵ a medium LSTM's
/// [64, 512] gate and state ops run on both cores: its training step took 379 against 440 ms
/// with 2¹⁶ (medians of 4 interleaved runs; GRU 323 against 341).
pub const PARALLEL_THRESHOLD: usize = 1 << 15;

/// Elements per parallel chunk: large enough to amortize scheduling, small enough to balance.
pub(crate) const CHUNK: usize = 1 << 14;

/// Builds the `n` output elements of a kernel without zeroing them first: `fill(chunk, start)`
/// writes elements `start..start + chunk.len()` into `chunk`, front to back, and returns how
/// many it wrote. The chunks are shared between threads when `n` is large.
///
/// Writing into uninitialized memory, rather than into `vec![0; n]`, saves a whole pass over
/// the output: a broadcast add of [1024, 1024] + [1024] took 1.5× as long as a plain loop with
/// the zeroing and matches it without (`benches/tensor.rs`).
///
/// # Safety
///
/// `fill` must have written the first `k` slots of `chunk` whenever it returns `k`. A count
/// short of `chunk.len()` panics; an overstated one would expose uninitialized memory.
pub(crate) unsafe fn build_chunks<T: Element>(
    n: usize,
    fill: impl Fn(&mut [MaybeUninit<T>], usize) -> usize + Sync,
) -> Vec<T> {
    let mut out = Vec::with_capacity(n);
    let slots = &mut out.spare_capacity_mut()[..n];
    let fill_checked = |chunk: &mut [MaybeUninit<T>], start: usize| {
        let written = fill(chunk, start);
        // A short count would leave uninitialized elements behind: refuse before `set_len`.
        assert_eq!(
            written,
            chunk.len(),
            "elementwise kernel left elements unwritten"
        );
    };
    if n >= PARALLEL_THRESHOLD {
        parallel::for_each_chunk_mut(slots, CHUNK, |i, chunk| fill_checked(chunk, i * CHUNK));
    } else {
        fill_checked(slots, 0);
    }
    // SAFETY: the chunks partition `slots`, the first `n` slots of the capacity, and for each
    // chunk `fill` returned `chunk.len()` (checked above, which panics before this line
    // otherwise), which by the caller's contract means it wrote every slot of the chunk.
    unsafe { out.set_len(n) };
    out
}

/// Applies `f` to every element.
pub(crate) fn map<T: Element>(input: &Tensor<T>, f: impl Fn(T) -> T + Sync + Send) -> Tensor<T> {
    let input = &*row_major_if_transposed(input);
    let n = input.len();
    if let Some(src) = input.as_slice() {
        // SAFETY: `simd::unary` writes one slot per source element, and the source slice is
        // exactly as long as the chunk.
        let data = unsafe {
            build_chunks(n, |chunk, start| {
                simd::unary(chunk, &src[start..start + chunk.len()], &f);
                chunk.len()
            })
        };
        return Tensor::from_contiguous(data, input.shape());
    }
    let storage = &input.storage[..];
    let layout = &input.layout;
    // SAFETY: `for_each_run` visits the runs of `start..start + chunk.len()` back to back;
    // each run writes all `len` slots of its destination (its sources are sliced to `len`, or
    // read one element per slot) before `written` counts them.
    let out = unsafe {
        build_chunks(n, |chunk, start| {
            let mut written = 0;
            for_each_run(
                layout.shape(),
                [layout.strides()],
                [layout.offset()],
                start,
                start + chunk.len(),
                |[offset], len, [stride]| {
                    let dst = &mut chunk[written..written + len];
                    if stride == 1 {
                        simd::unary(dst, &storage[offset..offset + len], &f);
                    } else {
                        for (i, d) in dst.iter_mut().enumerate() {
                            d.write(f(storage[offset + i * stride]));
                        }
                    }
                    written += len;
                },
            );
            written
        })
    };
    Tensor::from_contiguous(out, input.shape())
}

/// Applies `f` pairwise after broadcasting `a` and `b` to a common shape.
pub(crate) fn zip<T: Element>(
    op: &'static str,
    a: &Tensor<T>,
    b: &Tensor<T>,
    f: impl Fn(T, T) -> T + Sync + Send,
) -> Result<Tensor<T>> {
    if let Some(out) = zip_one_transposed(a, b, &f) {
        return Ok(out);
    }
    let (a, b) = (&*row_major_if_transposed(a), &*row_major_if_transposed(b));
    if a.shape() == b.shape()
        && let (Some(x), Some(y)) = (a.as_slice(), b.as_slice())
    {
        // SAFETY: `simd::binary` writes one slot per pair of operand elements, and both operand
        // slices are exactly as long as the chunk.
        let data = unsafe {
            build_chunks(x.len(), |chunk, start| {
                let end = start + chunk.len();
                simd::binary(chunk, &x[start..end], &y[start..end], &f);
                chunk.len()
            })
        };
        return Ok(Tensor::from_contiguous(data, a.shape()));
    }
    let shape = broadcast_shapes(op, a.shape(), b.shape())?;
    let la = a.layout.broadcast_to(op, &shape)?;
    let lb = b.layout.broadcast_to(op, &shape)?;
    let (sa, sb) = (&a.storage[..], &b.storage[..]);
    // SAFETY: `for_each_run` visits the runs of `start..start + chunk.len()` back to back;
    // each run writes all `len` slots of its destination (its sources are sliced to `len`, or
    // read one element per slot) before `written` counts them.
    let out = unsafe {
        build_chunks(shape.iter().product(), |chunk, start| {
            let mut written = 0;
            for_each_run(
                &shape,
                [la.strides(), lb.strides()],
                [la.offset(), lb.offset()],
                start,
                start + chunk.len(),
                |[oa, ob], len, [ta, tb]| {
                    let dst = &mut chunk[written..written + len];
                    match (ta, tb) {
                        (1, 1) => simd::binary(dst, &sa[oa..oa + len], &sb[ob..ob + len], &f),
                        (1, 0) => simd::binary_with_right(dst, &sa[oa..oa + len], sb[ob], &f),
                        (0, 1) => simd::binary_with_left(dst, sa[oa], &sb[ob..ob + len], &f),
                        _ => {
                            for (i, d) in dst.iter_mut().enumerate() {
                                d.write(f(sa[oa + i * ta], sb[ob + i * tb]));
                            }
                        }
                    }
                    written += len;
                },
            );
            written
        })
    };
    Ok(Tensor::from_contiguous(out, &shape))
}

/// `f` applied pairwise when one operand is a transposed matrix and the other a row-major one
/// of the same shape (the gates sum `x·Wᵢₕᵀ + h·Wₕₕᵀ` of a recurrent cell, whose second term is
/// a column-major GEMM result); `None` otherwise. The row-major copy of the transposed operand
/// becomes the result, updated in place: one buffer written instead of two.
fn zip_one_transposed<T: Element>(
    a: &Tensor<T>,
    b: &Tensor<T>,
    f: &(impl Fn(T, T) -> T + Sync),
) -> Option<Tensor<T>> {
    let (matrix, other, matrix_first) =
        match (ColumnMajor::transposed(a), ColumnMajor::transposed(b)) {
            (Some(matrix), None) => (matrix, b, true),
            (None, Some(matrix)) => (matrix, a, false),
            _ => return None,
        };
    if other.shape() != [matrix.rows, matrix.cols] {
        return None;
    }
    let other = other.as_slice()?;
    let mut out = matrix.to_row_major();
    let update = |out: &mut [T], other: &[T]| {
        if matrix_first {
            simd::assign(out, other, f);
        } else {
            simd::assign(out, other, &|x, y| f(y, x));
        }
    };
    if out.len() >= PARALLEL_THRESHOLD {
        parallel::for_each_chunk_mut(&mut out, CHUNK, |index, chunk| {
            update(chunk, &other[index * CHUNK..][..chunk.len()])
        });
    } else {
        update(&mut out, other);
    }
    Some(Tensor::from_contiguous(out, a.shape()))
}

/// Applies `f` to triples after broadcasting all three tensors to a common shape.
pub(crate) fn zip3<T: Element>(
    op: &'static str,
    a: &Tensor<T>,
    b: &Tensor<T>,
    c: &Tensor<T>,
    f: impl Fn(T, T, T) -> T + Sync + Send,
) -> Result<Tensor<T>> {
    let (a, b, c) = (
        &*row_major_if_transposed(a),
        &*row_major_if_transposed(b),
        &*row_major_if_transposed(c),
    );
    let shape = broadcast_shapes(op, &broadcast_shapes(op, a.shape(), b.shape())?, c.shape())?;
    let layouts: [Layout; 3] = [
        a.layout.broadcast_to(op, &shape)?,
        b.layout.broadcast_to(op, &shape)?,
        c.layout.broadcast_to(op, &shape)?,
    ];
    let storages = [&a.storage[..], &b.storage[..], &c.storage[..]];
    // SAFETY: `for_each_run` visits the runs of `start..start + chunk.len()` back to back;
    // each run writes all `len` slots of its destination (its sources are sliced to `len`, or
    // read one element per slot) before `written` counts them.
    let out = unsafe {
        build_chunks(shape.iter().product(), |chunk, start| {
            let mut written = 0;
            for_each_run(
                &shape,
                [
                    layouts[0].strides(),
                    layouts[1].strides(),
                    layouts[2].strides(),
                ],
                [
                    layouts[0].offset(),
                    layouts[1].offset(),
                    layouts[2].offset(),
                ],
                start,
                start + chunk.len(),
                |[o0, o1, o2], len, [t0, t1, t2]| {
                    for (i, d) in chunk[written..written + len].iter_mut().enumerate() {
                        d.write(f(
                            storages[0][o0 + i * t0],
                            storages[1][o1 + i * t1],
                            storages[2][o2 + i * t2],
                        ));
                    }
                    written += len;
                },
            );
            written
        })
    };
    Ok(Tensor::from_contiguous(out, &shape))
}
