//! In-place updates. Storage is shared between clones and views, so every write first makes the
//! storage unique (copy-on-write): writing through one tensor never changes another.

use std::borrow::Cow;
use std::sync::Arc;

use crate::element::Element;
use crate::error::{Result, TensorError, shape_str};
use crate::layout::{Layout, for_each_run};
use crate::ops::elementwise::zip;
use crate::ops::simd;
use crate::ops::transpose::row_major_if_transposed;
use crate::tensor::Tensor;

/// Copies `src` (any layout) into `dst` viewed through `dst_layout` (same shape, no overlap).
pub(crate) fn copy_strided<T: Element>(dst: &mut [T], dst_layout: &Layout, src: &Tensor<T>) {
    let storage = &src.storage[..];
    for_each_run(
        dst_layout.shape(),
        [dst_layout.strides(), src.strides()],
        [dst_layout.offset(), src.layout.offset()],
        0,
        dst_layout.len(),
        |[d, s], len, [td, ts]| {
            if td == 1 && ts == 1 {
                dst[d..d + len].copy_from_slice(&storage[s..s + len]);
            } else {
                for i in 0..len {
                    dst[d + i * td] = storage[s + i * ts];
                }
            }
        },
    );
}

impl<T: Element> Tensor<T> {
    /// Makes the storage exclusively this tensor's (copying it if shared) and returns it with
    /// the layout to write through. Refuses layouts where one element has several indices.
    fn unique_storage(&mut self, op: &'static str) -> Result<(&mut [T], &Layout)> {
        if self.layout.has_overlap() {
            return Err(TensorError::new(
                op,
                format!(
                    "cannot write in place to a view whose elements overlap (shape {}, strides {:?}); call contiguous() first",
                    shape_str(self.shape()),
                    self.strides()
                ),
            ));
        }
        if Arc::get_mut(&mut self.storage).is_none() {
            // Shared: take a private compact copy of just this view.
            *self = self.deep_clone();
        }
        let storage = Arc::get_mut(&mut self.storage).expect("storage was just made unique");
        Ok((storage.as_mut_slice(), &self.layout))
    }

    /// `src` as an in-place update into `self` reads it best: copied row-major when `self` is
    /// row-major and `src` a transposed matrix (see `row_major_if_transposed`), else as it is.
    fn readable_source<'a>(&self, src: &'a Self) -> Cow<'a, Self> {
        if self.is_contiguous() {
            row_major_if_transposed(src)
        } else {
            Cow::Borrowed(src)
        }
    }

    /// Applies `f(self_element, other_element)` in place, broadcasting `other` to `self`'s shape.
    /// When the storage is shared, the result goes to fresh storage in one pass instead, through
    /// the out-of-place kernel: above [`PARALLEL_THRESHOLD`](crate::PARALLEL_THRESHOLD) elements
    /// `f` then runs on several threads at once, in no fixed order.
    pub fn try_zip_assign(
        &mut self,
        op: &'static str,
        other: &Self,
        f: impl Fn(T, T) -> T + Sync + Send,
    ) -> Result<()> {
        other.layout.broadcast_to(op, self.shape()).map_err(|_| {
            TensorError::new(
                op,
                format!(
                    "cannot apply {} in place: {} does not broadcast to {}",
                    op,
                    shape_str(other.shape()),
                    shape_str(self.shape())
                ),
            )
        })?;
        if !self.layout.has_overlap() && Arc::get_mut(&mut self.storage).is_none() {
            // Copy-on-write as one out-of-place pass: copying the view and then updating the
            // copy would read and write every element twice. (An overlapping view is refused
            // below, as for unshared storage.)
            *self = zip(op, self, other, f)?;
            return Ok(());
        }
        let other = self.readable_source(other);
        let other_layout = other
            .layout
            .broadcast_to(op, self.shape())
            .expect("checked above; a row-major copy has the same shape");
        let other_storage = other.storage.clone();
        let (dst, layout) = self.unique_storage(op)?;
        for_each_run(
            layout.shape(),
            [layout.strides(), other_layout.strides()],
            [layout.offset(), other_layout.offset()],
            0,
            layout.len(),
            |[d, s], len, [td, ts]| {
                if td == 1 && ts == 1 {
                    simd::assign(&mut dst[d..d + len], &other_storage[s..s + len], &f);
                } else {
                    for i in 0..len {
                        dst[d + i * td] = f(dst[d + i * td], other_storage[s + i * ts]);
                    }
                }
            },
        );
        Ok(())
    }

    /// Writes one element in place. Copy-on-write keeps this view's layout (strides and offset)
    /// by copying the whole storage when it is shared, so a strided view stays strided: what a
    /// finite-difference check needs to perturb one element of any input.
    ///
    /// ```
    /// use tapeloop_tensor::Tensor;
    /// let a = Tensor::<f64>::zeros(&[2, 3]);
    /// let mut t = a.t();
    /// t.set(&[2, 1], 5.0);
    /// assert_eq!(t.strides(), &[1, 3]);
    /// assert_eq!(t.get(&[2, 1]), 5.0);
    /// assert_eq!(a.get(&[1, 2]), 0.0);
    /// ```
    #[track_caller]
    pub fn set(&mut self, index: &[usize], value: T) {
        self.try_set(index, value).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Writes one element in place; an error when the index is out of bounds or the view
    /// overlaps itself.
    pub fn try_set(&mut self, index: &[usize], value: T) -> Result<()> {
        self.try_get(index)
            .map_err(|e| TensorError::new("set", e.message))?;
        if self.layout.has_overlap() {
            return Err(TensorError::new(
                "set",
                format!(
                    "cannot write one element of a view whose elements overlap (shape {}, strides {:?})",
                    shape_str(self.shape()),
                    self.strides()
                ),
            ));
        }
        let position = self.layout.offset()
            + index
                .iter()
                .zip(self.layout.strides())
                .map(|(i, s)| i * s)
                .sum::<usize>();
        Arc::make_mut(&mut self.storage)[position] = value;
        Ok(())
    }

    /// Applies `f` to every element in place.
    pub fn map_assign(&mut self, f: impl Fn(T) -> T) {
        let (dst, layout) = self
            .unique_storage("map_assign")
            .unwrap_or_else(|e| panic!("{e}"));
        for_each_run(
            layout.shape(),
            [layout.strides()],
            [layout.offset()],
            0,
            layout.len(),
            |[d], len, [td]| {
                for i in 0..len {
                    dst[d + i * td] = f(dst[d + i * td]);
                }
            },
        );
    }

    /// `self += other` (broadcasting `other`), in place.
    ///
    /// ```
    /// use tapeloop_tensor::Tensor;
    /// let mut a = Tensor::<f32>::ones(&[2, 2]);
    /// let shared = a.clone();
    /// a.add_assign(&Tensor::from_vec(vec![1.0, 2.0], &[2]));
    /// assert_eq!(a.to_vec(), vec![2.0, 3.0, 2.0, 3.0]);
    /// assert_eq!(shared.to_vec(), vec![1.0; 4]); // copy-on-write: the clone is untouched
    /// ```
    #[track_caller]
    pub fn add_assign(&mut self, other: &Self) {
        self.try_zip_assign("add_assign", other, |x, y| x + y)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Adds `src` into the block `start..start + src.dim(dim)` of dimension `dim`, in place
    /// (copy-on-write). This is how the gradient of a slice is accumulated into its source
    /// without materializing a zero-padded copy.
    ///
    /// ```
    /// use tapeloop_tensor::Tensor;
    /// let mut grad = Tensor::<f32>::zeros(&[2, 4]);
    /// grad.narrow_add_assign(1, 1, &Tensor::ones(&[2, 2]));
    /// assert_eq!(grad.to_vec(), vec![0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn narrow_add_assign(&mut self, dim: isize, start: usize, src: &Self) {
        self.try_narrow_add_assign(dim, start, src)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Adds `src` into a block along `dim`, in place; an error when the block does not fit.
    pub fn try_narrow_add_assign(&mut self, dim: isize, start: usize, src: &Self) -> Result<()> {
        let fits = src.rank() == self.rank()
            && dim >= -(self.rank() as isize)
            && dim < self.rank() as isize;
        let d = if dim < 0 {
            (dim + self.rank() as isize) as usize
        } else {
            dim as usize
        };
        let block_fits = fits
            && src
                .shape()
                .iter()
                .zip(self.shape())
                .enumerate()
                .all(|(i, (a, b))| {
                    if i == d {
                        start.checked_add(*a).is_some_and(|end| end <= *b)
                    } else {
                        a == b
                    }
                });
        if !block_fits {
            return Err(TensorError::new(
                "narrow_add_assign",
                format!(
                    "a block of shape {} at {start} along dimension {dim} does not fit in shape {}",
                    shape_str(src.shape()),
                    shape_str(self.shape())
                ),
            ));
        }
        let src = self.readable_source(src);
        let (dst, layout) = self.unique_storage("narrow_add_assign")?;
        let block = layout.narrow(d, start, src.shape()[d]);
        let source = &src.storage[..];
        for_each_run(
            block.shape(),
            [block.strides(), src.strides()],
            [block.offset(), src.layout.offset()],
            0,
            block.len(),
            |[o, i], len, [to, ti]| {
                if to == 1 && ti == 1 {
                    simd::assign(&mut dst[o..o + len], &source[i..i + len], &|x, y| x + y);
                } else {
                    for k in 0..len {
                        dst[o + k * to] += source[i + k * ti];
                    }
                }
            },
        );
        Ok(())
    }

    /// `self += alpha · x`, in place (BLAS's axpy).
    ///
    /// ```
    /// use tapeloop_tensor::Tensor;
    /// let mut w = Tensor::<f64>::ones(&[2]);
    /// w.axpy(-0.5, &Tensor::from_vec(vec![2.0, 4.0], &[2]));
    /// assert_eq!(w.to_vec(), vec![0.0, -1.0]);
    /// ```
    #[track_caller]
    pub fn axpy(&mut self, alpha: T, x: &Self) {
        self.try_zip_assign("axpy", x, |y, v| y + alpha * v)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Multiplies every element by `s`, in place.
    pub fn scale_assign(&mut self, s: T) {
        self.map_assign(|x| x * s)
    }

    /// Sets every element to `value`, in place.
    pub fn fill(&mut self, value: T) {
        self.map_assign(|_| value)
    }

    /// Copies `src` (broadcast to this shape) into this tensor, in place.
    #[track_caller]
    pub fn copy_from(&mut self, src: &Self) {
        self.try_zip_assign("copy_from", src, |_, y| y)
            .unwrap_or_else(|e| panic!("{e}"))
    }
}
