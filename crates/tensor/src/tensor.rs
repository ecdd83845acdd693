//! The [`Tensor`] type: shared storage plus a [`Layout`].

use std::sync::Arc;

use crate::element::Element;
use crate::error::{Result, TensorError, shape_str};
use crate::layout::{
    Layout, Shape, element_count, element_count_or_panic, for_each_run, normalize_dim,
};
use crate::ops::transpose::ColumnMajor;

/// An n-dimensional array of `f32` or `f64` on the CPU.
///
/// A tensor is a [`Layout`] (shape, strides, offset) over reference-counted storage. Cloning a
/// tensor, and every view (transpose, narrow, select, broadcast, reshape when possible), shares
/// the storage and copies nothing. Writes go through copy-on-write: writing through one tensor
/// never changes another.
///
/// ```
/// use tapeloop_tensor::Tensor;
/// let a = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
/// let t = a.transpose(0, 1); // a view: shape [3, 2], no copy
/// assert_eq!(t.shape(), &[3, 2]);
/// assert_eq!(t.to_vec(), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
/// assert!(t.shares_storage(&a));
/// ```
#[derive(Clone)]
pub struct Tensor<T: Element> {
    pub(crate) storage: Arc<Vec<T>>,
    pub(crate) layout: Layout,
}

impl<T: Element> Tensor<T> {
    /// A tensor over `data` laid out row-major with `shape`.
    pub fn try_from_vec(data: Vec<T>, shape: &[usize]) -> Result<Self> {
        let expected = element_count("from_vec", shape)?;
        if data.len() != expected {
            return Err(TensorError::new(
                "from_vec",
                format!(
                    "shape {} needs {} elements but {} were given",
                    shape_str(shape),
                    expected,
                    data.len()
                ),
            ));
        }
        Ok(Self::from_contiguous(data, shape))
    }

    /// A tensor over `data` laid out row-major with `shape`; panics if the sizes differ.
    ///
    /// ```
    /// use tapeloop_tensor::Tensor;
    /// let m = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
    /// assert_eq!(m.get(&[1, 0]), 3.0);
    /// ```
    #[track_caller]
    pub fn from_vec(data: Vec<T>, shape: &[usize]) -> Self {
        Self::try_from_vec(data, shape).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A tensor copying `data` with `shape`; panics if the sizes differ.
    #[track_caller]
    pub fn from_slice(data: &[T], shape: &[usize]) -> Self {
        Self::from_vec(data.to_vec(), shape)
    }

    pub(crate) fn from_contiguous(data: Vec<T>, shape: &[usize]) -> Self {
        let (layout, len) = Layout::contiguous_with_len(shape);
        // Kernels trust a layout to stay inside its storage (some through raw pointers): a
        // mismatch here must stop, not become a read past the end.
        if data.len() != len {
            storage_mismatch(data.len(), shape);
        }
        Self {
            storage: Arc::new(data),
            layout,
        }
    }

    /// A view of `storage` through `layout`; the layout must stay inside the storage.
    pub(crate) fn from_parts(storage: Arc<Vec<T>>, layout: Layout) -> Self {
        debug_assert!(layout.max_storage_extent() <= storage.len());
        Self { storage, layout }
    }

    /// A tensor of one element and rank 0.
    ///
    /// ```
    /// use tapeloop_tensor::Tensor;
    /// let s = Tensor::scalar(2.5f32);
    /// assert_eq!(s.shape(), &[] as &[usize]);
    /// assert_eq!(s.item(), 2.5);
    /// ```
    pub fn scalar(value: T) -> Self {
        Self::from_contiguous(vec![value], &[])
    }

    /// A tensor filled with `value`. Panics when the shape has more elements than a `usize`
    /// can count ([`element_count`]).
    #[track_caller]
    pub fn full(shape: &[usize], value: T) -> Self {
        let len = element_count_or_panic("full", shape);
        Self::from_contiguous(vec![value; len], shape)
    }

    /// A tensor of zeros.
    #[track_caller]
    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, T::zero())
    }

    /// A tensor of ones.
    #[track_caller]
    pub fn ones(shape: &[usize]) -> Self {
        Self::full(shape, T::one())
    }

    /// Zeros with the shape of `other`.
    pub fn zeros_like(other: &Self) -> Self {
        Self::zeros(other.shape())
    }

    /// Ones with the shape of `other`.
    pub fn ones_like(other: &Self) -> Self {
        Self::ones(other.shape())
    }

    /// `start, start + step, …` up to but excluding `end`, as a 1-D tensor (like `torch.arange`).
    ///
    /// ```
    /// use tapeloop_tensor::Tensor;
    /// assert_eq!(Tensor::<f32>::arange(0.0, 2.0, 0.5).to_vec(), vec![0.0, 0.5, 1.0, 1.5]);
    /// ```
    #[track_caller]
    pub fn arange(start: T, end: T, step: T) -> Self {
        assert!(step != T::zero(), "arange: step must not be zero");
        assert!(
            start.is_finite() && end.is_finite() && step.is_finite(),
            "arange: start {start}, end {end} and step {step} must be finite"
        );
        let steps = ((end - start) / step).ceil();
        let count = if steps > T::zero() {
            steps.to_usize().unwrap_or_else(|| {
                panic!("arange: {start} to {end} by {step} is more elements than a usize can count")
            })
        } else {
            0
        };
        let data: Vec<T> = (0..count)
            .map(|i| start + T::from_usize(i).unwrap() * step)
            .collect();
        Self::from_contiguous(data, &[count])
    }

    /// The `n × n` identity matrix.
    #[track_caller]
    pub fn eye(n: usize) -> Self {
        let len = element_count_or_panic("eye", &[n, n]);
        let mut data = vec![T::zero(); len];
        for i in 0..n {
            data[i * n + i] = T::one();
        }
        Self::from_contiguous(data, &[n, n])
    }

    /// The layout: shape, strides and offset.
    #[inline]
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Dimension sizes.
    #[inline]
    pub fn shape(&self) -> &[usize] {
        self.layout.shape()
    }

    /// Strides in elements.
    #[inline]
    pub fn strides(&self) -> &[usize] {
        self.layout.strides()
    }

    /// Number of dimensions.
    #[inline]
    pub fn rank(&self) -> usize {
        self.layout.rank()
    }

    /// Number of elements.
    #[inline]
    pub fn len(&self) -> usize {
        self.layout.len()
    }

    /// True when the tensor holds no element.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.layout.is_empty()
    }

    /// The size of dimension `dim` (negative counts from the end); panics if out of range.
    #[track_caller]
    pub fn dim(&self, dim: isize) -> usize {
        let d = normalize_dim("dim", dim, self.rank()).unwrap_or_else(|e| panic!("{e}"));
        self.shape()[d]
    }

    /// True when the elements are row-major and back to back.
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// True when both tensors view the same storage.
    pub fn shares_storage(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    /// The elements as a slice when the tensor is contiguous.
    pub fn as_slice(&self) -> Option<&[T]> {
        self.layout
            .contiguous_range()
            .map(|range| &self.storage[range])
    }

    /// The elements in row-major order, copied into a `Vec`.
    pub fn to_vec(&self) -> Vec<T> {
        if let Some(slice) = self.as_slice() {
            return slice.to_vec();
        }
        if let Some(matrix) = ColumnMajor::of(self) {
            // Walking it row by row would read one element per cache line: `contiguous()` of a
            // transposed 2048×512 weight took 5.7 ms that way.
            return matrix.to_row_major();
        }
        let storage = &self.storage[..];
        let mut out = Vec::with_capacity(self.len());
        for_each_run(
            self.shape(),
            [self.strides()],
            [self.layout.offset()],
            0,
            self.len(),
            |[offset], len, [stride]| {
                if stride == 1 {
                    out.extend_from_slice(&storage[offset..offset + len]);
                } else {
                    out.extend((0..len).map(|i| storage[offset + i * stride]));
                }
            },
        );
        out
    }

    /// The element at a multi-index; panics when the index does not fit the shape.
    #[track_caller]
    pub fn get(&self, index: &[usize]) -> T {
        self.try_get(index).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The element at a multi-index.
    pub fn try_get(&self, index: &[usize]) -> Result<T> {
        if index.len() != self.rank() || index.iter().zip(self.shape()).any(|(i, s)| i >= s) {
            return Err(TensorError::new(
                "get",
                format!(
                    "index {:?} is out of bounds for shape {}",
                    index,
                    shape_str(self.shape())
                ),
            ));
        }
        let position = self.layout.offset()
            + index
                .iter()
                .zip(self.strides())
                .map(|(i, s)| i * s)
                .sum::<usize>();
        Ok(self.storage[position])
    }

    /// The single element of a one-element tensor; panics otherwise.
    #[track_caller]
    pub fn item(&self) -> T {
        assert!(
            self.len() == 1,
            "item: the tensor has shape {} ({} elements), not one element",
            shape_str(self.shape()),
            self.len()
        );
        self.storage[self.layout.offset()]
    }

    /// A row-major copy, or `self` (shared, no copy) if already contiguous.
    pub fn contiguous(&self) -> Self {
        if self.is_contiguous() {
            return self.clone();
        }
        Self::from_contiguous(self.to_vec(), self.shape())
    }

    /// A contiguous copy that owns fresh storage.
    pub fn deep_clone(&self) -> Self {
        Self::from_contiguous(self.to_vec(), self.shape())
    }

    /// The elements converted to another element type.
    ///
    /// ```
    /// use tapeloop_tensor::Tensor;
    /// let a = Tensor::<f32>::from_vec(vec![0.5, 1.5], &[2]);
    /// assert_eq!(a.cast::<f64>().to_vec(), vec![0.5f64, 1.5]);
    /// ```
    pub fn cast<U: Element>(&self) -> Tensor<U> {
        let data = self
            .to_vec()
            .into_iter()
            .map(|x| U::from_f64_lossy(x.to_f64_lossy()))
            .collect();
        Tensor::from_contiguous(data, self.shape())
    }

    pub(crate) fn with_layout(&self, layout: Layout) -> Self {
        Self::from_parts(self.storage.clone(), layout)
    }

    pub(crate) fn shape_vec(&self) -> Shape {
        Shape::from_slice(self.shape())
    }
}

impl<T: Element> PartialEq for Tensor<T> {
    /// Equal shapes and equal elements (NaN ≠ NaN, as for floats).
    fn eq(&self, other: &Self) -> bool {
        self.shape() == other.shape() && self.to_vec() == other.to_vec()
    }
}

#[cold]
fn storage_mismatch(len: usize, shape: &[usize]) -> ! {
    panic!("storage of {len} elements for shape {}", shape_str(shape))
}
