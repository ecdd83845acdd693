//! Where each element of a tensor lives in its storage: shape, strides and offset.
//!
//! Every view (transpose, narrow, select, broadcast, reshape, squeeze) is a new `Layout` over the
//! same storage; nothing is copied. Kernels walk a layout in *runs*: after merging dimensions
//! that are laid out back to back, the innermost dimension becomes a plain loop the compiler
//! can vectorize.

use smallvec::SmallVec;

use crate::error::{Result, TensorError, shape_str};

/// A list of dimension sizes; rank ≤ 4 lives inline.
pub type Shape = SmallVec<[usize; 4]>;
/// Element strides per dimension (0 for broadcast dimensions).
pub type Strides = SmallVec<[usize; 4]>;

/// Shape, strides (in elements) and offset of a tensor view. Its number of elements always
/// fits in a `usize` ([`element_count`]): kernels size buffers and walk storage by it.
#[derive(Debug, PartialEq, Eq)]
pub struct Layout {
    shape: Shape,
    strides: Strides,
    offset: usize,
}

impl Clone for Layout {
    /// Copies the dimensions as slices: `SmallVec`'s own `clone` pushes them one at a time,
    /// and every tensor clone (several per recorded op) clones its layout.
    fn clone(&self) -> Self {
        Self {
            shape: SmallVec::from_slice(&self.shape),
            strides: SmallVec::from_slice(&self.strides),
            offset: self.offset,
        }
    }
}

/// The number of elements of `shape`, or an error for `op` when that number does not fit in a
/// `usize`: no memory could hold such a tensor, and a layout claiming it would let kernels
/// address elements past their storage. A shape with a size 0 is empty, however large its
/// other sizes.
///
/// ```
/// use tapeloop_tensor::element_count;
/// assert_eq!(element_count("zeros", &[2, 3]).unwrap(), 6);
/// assert_eq!(element_count("zeros", &[1 << 40, 1 << 40, 0]).unwrap(), 0);
/// assert!(element_count("zeros", &[1 << 40, 1 << 40]).is_err());
/// ```
#[inline]
pub fn element_count(op: &'static str, shape: &[usize]) -> Result<usize> {
    // Without the strides `row_major` also makes: this runs for every elementwise op.
    let mut count = 1usize;
    let mut wrapped = false;
    for &size in shape {
        let (next, overflow) = count.overflowing_mul(size);
        count = next;
        wrapped |= overflow;
    }
    unless_wrapped(count, wrapped, shape).ok_or_else(|| too_many_elements(op, shape))
}

/// `count`, the wrapped product of `shape`'s sizes, unless it overflowed for a shape with no
/// size 0. With one, the count is 0 however the other sizes wrapped (and no stride of the
/// shape ever addresses an element).
#[inline]
fn unless_wrapped(count: usize, wrapped: bool, shape: &[usize]) -> Option<usize> {
    (!wrapped || shape.contains(&0)).then_some(count)
}

/// [`element_count`] for the constructors that panic on a bad shape, with its message.
#[track_caller]
pub(crate) fn element_count_or_panic(op: &'static str, shape: &[usize]) -> usize {
    match element_count(op, shape) {
        Ok(count) => count,
        Err(error) => panic!("{error}"),
    }
}

#[cold]
fn too_many_elements(op: &'static str, shape: &[usize]) -> TensorError {
    TensorError::new(
        op,
        format!(
            "shape {} has more elements than a usize can count",
            shape_str(shape)
        ),
    )
}

/// Row-major strides for a shape.
pub fn contiguous_strides(shape: &[usize]) -> Strides {
    row_major(shape).0
}

/// Row-major strides of `shape` and its number of elements, `None` when that does not fit in a
/// `usize`. One pass: this runs for every tensor made, so it is inlined into its callers
/// (as a call, its two results went through memory).
#[inline(always)]
fn row_major(shape: &[usize]) -> (Strides, Option<usize>) {
    // Started as a copy of `shape` (every element is overwritten below): `from_slice` is one
    // copy, where `from_elem` cost more per tensor built (callgrind).
    let mut strides: Strides = SmallVec::from_slice(shape);
    let mut count = 1usize;
    let mut wrapped = false;
    for (stride, &size) in strides.iter_mut().zip(shape).rev() {
        *stride = count;
        let (next, overflow) = count.overflowing_mul(size);
        count = next;
        wrapped |= overflow;
    }
    (strides, unless_wrapped(count, wrapped, shape))
}

/// Turns a possibly negative dimension index (`-1` is the last) into a position, or an error
/// for `op` naming the dimension and the rank.
///
/// ```
/// use tapeloop_tensor::normalize_dim;
/// assert_eq!(normalize_dim("sum", -1, 3).unwrap(), 2);
/// assert_eq!(
///     normalize_dim("sum", 3, 3).unwrap_err().to_string(),
///     "sum: dimension 3 is out of range for a tensor of rank 3"
/// );
/// ```
#[inline]
pub fn normalize_dim(op: &'static str, dim: isize, rank: usize) -> Result<usize> {
    let resolved = if dim < 0 { dim + rank as isize } else { dim };
    if resolved < 0 || resolved >= rank as isize {
        return Err(TensorError::new(
            op,
            format!("dimension {dim} is out of range for a tensor of rank {rank}"),
        ));
    }
    Ok(resolved as usize)
}

/// The shape two shapes broadcast to under NumPy/PyTorch rules: align at the right; sizes must
/// be equal or one of them 1. An error too when that shape has more elements than a `usize`
/// can count ([`element_count`]).
pub fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Shape> {
    let out = broadcast_sizes(op, a, b)?;
    element_count(op, &out)?;
    Ok(out)
}

/// [`broadcast_shapes`] without counting the result's elements: the error is always about
/// sizes that disagree.
pub(crate) fn broadcast_sizes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Shape> {
    let rank = a.len().max(b.len());
    let mut out: Shape = SmallVec::from_elem(0, rank);
    for i in 0..rank {
        let da = if i < rank - a.len() {
            1
        } else {
            a[i - (rank - a.len())]
        };
        let db = if i < rank - b.len() {
            1
        } else {
            b[i - (rank - b.len())]
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(TensorError::new(
                    op,
                    format!(
                        "shapes {} and {} cannot be broadcast: dimension {} has sizes {} and {}",
                        shape_str(a),
                        shape_str(b),
                        i as isize - rank as isize,
                        da,
                        db
                    ),
                ));
            }
        };
    }
    Ok(out)
}

impl Layout {
    /// A row-major layout starting at offset 0. Panics when the number of elements does not
    /// fit in a `usize` ([`element_count`]); fallible operations check that first.
    pub fn contiguous(shape: &[usize]) -> Self {
        Self::contiguous_with_len(shape).0
    }

    /// [`Layout::contiguous`] and its number of elements, counted by the same pass that makes
    /// the strides (this runs for every tensor made).
    pub(crate) fn contiguous_with_len(shape: &[usize]) -> (Self, usize) {
        let (strides, count) = row_major(shape);
        let Some(count) = count else {
            panic!("{}", too_many_elements("layout", shape));
        };
        let layout = Self {
            shape: SmallVec::from_slice(shape),
            strides,
            offset: 0,
        };
        (layout, count)
    }

    /// Dimension sizes.
    #[inline]
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Strides in elements.
    #[inline]
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    /// Position of element `[0, 0, …]` in the storage.
    #[inline]
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Number of dimensions.
    #[inline]
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        // Exact: every layout's count fits in a usize (`element_count`), and an empty shape's
        // product is 0 however its other sizes wrap.
        self.shape
            .iter()
            .fold(1, |count, &size| count.wrapping_mul(size))
    }

    /// True when the view holds no element.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when elements are row-major and back to back (the offset may be anything).
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        let mut step = 1;
        for (&size, &stride) in self.shape.iter().zip(&self.strides).rev() {
            if size != 1 && stride != step {
                return false;
            }
            step = step.wrapping_mul(size);
        }
        true
    }

    /// The storage range `[offset, offset + len)` when the layout is contiguous.
    #[inline]
    pub fn contiguous_range(&self) -> Option<std::ops::Range<usize>> {
        self.is_contiguous()
            .then(|| self.offset..self.offset + self.len())
    }

    /// One past the largest storage position the view touches (its `offset` if empty).
    pub fn max_storage_extent(&self) -> usize {
        if self.is_empty() {
            return self.offset;
        }
        self.offset
            + self
                .shape
                .iter()
                .zip(&self.strides)
                .map(|(&size, &stride)| (size - 1) * stride)
                .sum::<usize>()
            + 1
    }

    /// True when two different indices may address the same storage element (a broadcast
    /// dimension with stride 0, or strides that interleave). Conservative: a layout it calls
    /// free of overlap certainly is.
    pub fn has_overlap(&self) -> bool {
        // An empty view has no elements to overlap. (Its strides may still be 0: the row-major
        // strides of [2, 0] are [0, 1].)
        if self.is_empty() {
            return false;
        }
        let mut dims: SmallVec<[(usize, usize); 4]> = self
            .shape
            .iter()
            .zip(&self.strides)
            .filter(|(size, _)| **size > 1)
            .map(|(&size, &stride)| (stride, size))
            .collect();
        dims.sort_unstable();
        // Sorted by stride, each dimension must step past everything the smaller ones reach.
        let mut span = 1;
        for (stride, size) in dims {
            if stride < span {
                return true;
            }
            span += stride * (size - 1);
        }
        false
    }

    /// Swaps two dimensions.
    pub fn transpose(&self, dim0: usize, dim1: usize) -> Layout {
        let mut out = self.clone();
        out.shape.swap(dim0, dim1);
        out.strides.swap(dim0, dim1);
        out
    }

    /// Reorders dimensions: dimension `i` of the result is dimension `order[i]` of `self`.
    pub fn permute(&self, order: &[usize]) -> Layout {
        Layout {
            shape: order.iter().map(|&d| self.shape[d]).collect(),
            strides: order.iter().map(|&d| self.strides[d]).collect(),
            offset: self.offset,
        }
    }

    /// Keeps `len` positions of `dim` starting at `start`.
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Layout {
        let mut out = self.clone();
        out.shape[dim] = len;
        // An empty view keeps its parent's offset: moving it could point past the end of the
        // storage (a [3, 0] transpose of empty storage has stride 1 along its first dimension),
        // and slicing `storage[offset..offset]` would then panic.
        if !out.is_empty() {
            out.offset += start * self.strides[dim];
        }
        out
    }

    /// Fixes `dim` at `index` and removes it.
    pub fn select(&self, dim: usize, index: usize) -> Layout {
        let mut out = self.clone();
        out.shape.remove(dim);
        out.strides.remove(dim);
        // As in `narrow`: an empty view keeps an offset that is inside the storage.
        if !out.is_empty() {
            out.offset += index * self.strides[dim];
        }
        out
    }

    /// Inserts a dimension of size 1 at `dim`.
    pub fn unsqueeze(&self, dim: usize) -> Layout {
        let mut out = self.clone();
        let stride = if dim < self.rank() {
            self.strides[dim] * self.shape[dim]
        } else {
            1
        };
        out.shape.insert(dim, 1);
        out.strides.insert(dim, stride);
        out
    }

    /// Removes dimension `dim`, which must have size 1.
    pub fn squeeze(&self, dim: usize) -> Layout {
        let mut out = self.clone();
        out.shape.remove(dim);
        out.strides.remove(dim);
        out
    }

    /// Expands to `shape` (right-aligned): size-1 and missing dimensions get stride 0.
    pub fn broadcast_to(&self, op: &'static str, shape: &[usize]) -> Result<Layout> {
        element_count(op, shape)?;
        let fail = || {
            TensorError::new(
                op,
                format!(
                    "cannot broadcast shape {} to {}",
                    shape_str(&self.shape),
                    shape_str(shape)
                ),
            )
        };
        if shape.len() < self.rank() {
            return Err(fail());
        }
        let lead = shape.len() - self.rank();
        let mut strides: Strides = SmallVec::from_elem(0, shape.len());
        for (i, &target) in shape.iter().enumerate().skip(lead) {
            let size = self.shape[i - lead];
            strides[i] = if size == target {
                self.strides[i - lead]
            } else if size == 1 {
                0
            } else {
                return Err(fail());
            };
        }
        Ok(Layout {
            shape: SmallVec::from_slice(shape),
            strides,
            offset: self.offset,
        })
    }

    /// A view with the new shape when the strides allow one (PyTorch's `view` rule), else
    /// `None`: then the data must be copied.
    pub fn reshape_view(&self, shape: &[usize]) -> Option<Layout> {
        if self.is_contiguous() {
            return Some(Layout {
                shape: SmallVec::from_slice(shape),
                strides: contiguous_strides(shape),
                offset: self.offset,
            });
        }
        // PyTorch's stride computation: split the old dimensions into chunks that are laid out
        // back to back; each chunk may be re-split into new dimensions of the same total size.
        let old_shape = &self.shape;
        let old_strides = &self.strides;
        let mut new_strides: Strides = SmallVec::from_elem(0, shape.len());
        let mut view_d = shape.len() as isize - 1;
        let mut chunk_base_stride = *old_strides.last()?;
        let (mut tensor_numel, mut view_numel) = (1usize, 1usize);
        for tensor_d in (0..old_shape.len()).rev() {
            tensor_numel *= old_shape[tensor_d];
            let chunk_ends = tensor_d == 0
                || (old_shape[tensor_d - 1] != 1
                    && old_strides[tensor_d - 1] != tensor_numel * chunk_base_stride);
            if chunk_ends {
                while view_d >= 0 && (view_numel < tensor_numel || shape[view_d as usize] == 1) {
                    new_strides[view_d as usize] = view_numel * chunk_base_stride;
                    view_numel *= shape[view_d as usize];
                    view_d -= 1;
                }
                if view_numel != tensor_numel {
                    return None;
                }
                if tensor_d > 0 {
                    chunk_base_stride = old_strides[tensor_d - 1];
                    tensor_numel = 1;
                    view_numel = 1;
                }
            }
        }
        if view_d != -1 {
            return None;
        }
        Some(Layout {
            shape: SmallVec::from_slice(shape),
            strides: new_strides,
            offset: self.offset,
        })
    }
}

/// Walks elements `[start, end)` (in row-major order of `shape`) of several layouts that share
/// that shape, as runs: `visit(offsets, run_len, inner_strides)` is called once per run, where
/// `offsets[i]` is the storage position of the run's first element in operand `i`.
///
/// Dimensions that are back to back in every operand are merged first, so a contiguous operand
/// yields long runs with stride 1 — a plain slice loop the compiler vectorizes.
pub fn for_each_run<const N: usize>(
    shape: &[usize],
    strides: [&[usize]; N],
    offsets: [usize; N],
    start: usize,
    end: usize,
    mut visit: impl FnMut([usize; N], usize, [usize; N]),
) {
    if start >= end {
        return;
    }
    // Merge dimensions (drop size-1 ones; join i and i+1 when stride[i] = stride[i+1]·size[i+1]
    // in every operand).
    let mut dims: SmallVec<[(usize, [usize; N]); 6]> = SmallVec::new();
    for d in 0..shape.len() {
        if shape[d] == 1 {
            continue;
        }
        let here: [usize; N] = std::array::from_fn(|i| strides[i][d]);
        if let Some((size, last)) = dims.last_mut()
            && (0..N).all(|i| last[i] == here[i] * shape[d])
        {
            *size *= shape[d];
            *last = here;
            continue;
        }
        dims.push((shape[d], here));
    }
    let Some(&(inner_len, inner_strides)) = dims.last() else {
        // A scalar (or all-ones shape): one element.
        visit(offsets, 1, [0; N]);
        return;
    };
    let outer = &dims[..dims.len() - 1];
    // Odometer over outer dimensions, positioned at `start`.
    let mut index: SmallVec<[usize; 6]> = SmallVec::from_elem(0, outer.len());
    let mut rest = start / inner_len;
    for (slot, (size, _)) in index.iter_mut().zip(outer).rev() {
        *slot = rest % size;
        rest /= size;
    }
    let mut inner_pos = start % inner_len;
    let mut remaining = end - start;
    while remaining > 0 {
        let mut run_offsets = offsets;
        for (&i, (_, st)) in index.iter().zip(outer) {
            for k in 0..N {
                run_offsets[k] += i * st[k];
            }
        }
        for k in 0..N {
            run_offsets[k] += inner_pos * inner_strides[k];
        }
        let run = (inner_len - inner_pos).min(remaining);
        visit(run_offsets, run, inner_strides);
        remaining -= run;
        inner_pos = 0;
        for (slot, (size, _)) in index.iter_mut().zip(outer).rev() {
            *slot += 1;
            if *slot < *size {
                break;
            }
            *slot = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_rules_follow_pytorch() {
        assert_eq!(
            broadcast_shapes("add", &[3, 1], &[4]).unwrap().as_slice(),
            &[3, 4]
        );
        assert_eq!(
            broadcast_shapes("add", &[], &[2, 3]).unwrap().as_slice(),
            &[2, 3]
        );
        let err = broadcast_shapes("add", &[3, 2], &[4]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "add: shapes [3, 2] and [4] cannot be broadcast: dimension -1 has sizes 2 and 4"
        );
    }

    #[test]
    fn reshape_view_of_transposed_is_refused_when_impossible() {
        let t = Layout::contiguous(&[2, 3]).transpose(0, 1);
        assert!(t.reshape_view(&[6]).is_none());
        assert_eq!(t.reshape_view(&[3, 2, 1]).unwrap().strides(), &[1, 3, 3]);
        let narrowed = Layout::contiguous(&[4, 6]).narrow(1, 1, 4);
        assert_eq!(
            narrowed.reshape_view(&[4, 2, 2]).unwrap().strides(),
            &[6, 2, 1]
        );
        assert!(narrowed.reshape_view(&[16]).is_none());
    }

    #[test]
    fn overlap_is_detected_for_broadcast_views() {
        let b = Layout::contiguous(&[3])
            .broadcast_to("expand", &[4, 3])
            .unwrap();
        assert!(b.has_overlap());
        assert!(!Layout::contiguous(&[4, 3]).transpose(0, 1).has_overlap());
    }

    #[test]
    fn runs_cover_a_range_in_row_major_order() {
        let layout = Layout::contiguous(&[3, 4]).transpose(0, 1); // shape [4, 3], strides [1, 4]
        let mut seen = Vec::new();
        for_each_run(
            layout.shape(),
            [layout.strides()],
            [0],
            2,
            9,
            |[off], len, [st]| {
                for i in 0..len {
                    seen.push(off + i * st);
                }
            },
        );
        // Row-major over [4,3] of the transposed [3,4] matrix: element (r, c) is at c*4 + r.
        assert_eq!(seen, vec![8, 1, 5, 9, 2, 6, 10]);
    }
}
