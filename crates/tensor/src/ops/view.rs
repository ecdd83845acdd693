//! Views: new layouts over the same storage. None of these copy, except `reshape` when the
//! strides cannot express the new shape.

use smallvec::SmallVec;

use crate::element::Element;
use crate::error::{Result, TensorError, shape_str};
use crate::layout::{Shape, element_count, normalize_dim};
use crate::macros::panicking_forms;
use crate::tensor::Tensor;

impl<T: Element> Tensor<T> {
    /// Swaps dimensions `dim0` and `dim1`.
    pub fn try_transpose(&self, dim0: isize, dim1: isize) -> Result<Self> {
        let d0 = normalize_dim("transpose", dim0, self.rank())?;
        let d1 = normalize_dim("transpose", dim1, self.rank())?;
        Ok(self.with_layout(self.layout.transpose(d0, d1)))
    }

    /// The transpose of a 2-D tensor (a view).
    pub fn try_t(&self) -> Result<Self> {
        if self.rank() != 2 {
            return Err(TensorError::new(
                "t",
                format!(
                    "expects a 2-D tensor, got shape {}",
                    shape_str(self.shape())
                ),
            ));
        }
        self.try_transpose(0, 1)
    }

    /// Reorders dimensions: dimension `i` of the result is dimension `order[i]` of `self`.
    pub fn try_permute(&self, order: &[isize]) -> Result<Self> {
        if order.len() != self.rank() {
            return Err(TensorError::new(
                "permute",
                format!(
                    "order {:?} has {} entries but the tensor of shape {} has rank {}",
                    order,
                    order.len(),
                    shape_str(self.shape()),
                    self.rank()
                ),
            ));
        }
        let mut resolved: SmallVec<[usize; 4]> = SmallVec::new();
        for &d in order {
            let d = normalize_dim("permute", d, self.rank())?;
            if resolved.contains(&d) {
                return Err(TensorError::new(
                    "permute",
                    format!("order {order:?} repeats dimension {d}"),
                ));
            }
            resolved.push(d);
        }
        Ok(self.with_layout(self.layout.permute(&resolved)))
    }

    /// Keeps `len` positions of `dim` starting at `start` (like `torch.narrow`).
    pub fn try_narrow(&self, dim: isize, start: usize, len: usize) -> Result<Self> {
        let d = normalize_dim("narrow", dim, self.rank())?;
        // Checked: a wrapped `start + len` would pass and point the view outside the storage.
        if start
            .checked_add(len)
            .is_none_or(|end| end > self.shape()[d])
        {
            return Err(TensorError::new(
                "narrow",
                format!(
                    "range {}..{} is out of bounds for dimension {} of size {} (shape {})",
                    start,
                    start as u128 + len as u128,
                    d,
                    self.shape()[d],
                    shape_str(self.shape())
                ),
            ));
        }
        Ok(self.with_layout(self.layout.narrow(d, start, len)))
    }

    /// Fixes dimension `dim` at `index` and removes it (like `torch.select`).
    pub fn try_select(&self, dim: isize, index: usize) -> Result<Self> {
        let d = normalize_dim("select", dim, self.rank())?;
        if index >= self.shape()[d] {
            return Err(TensorError::new(
                "select",
                format!(
                    "index {} is out of bounds for dimension {} of size {} (shape {})",
                    index,
                    d,
                    self.shape()[d],
                    shape_str(self.shape())
                ),
            ));
        }
        Ok(self.with_layout(self.layout.select(d, index)))
    }

    /// Expands size-1 and missing leading dimensions to `shape` with stride 0 (like
    /// `torch.expand`).
    pub fn try_broadcast_to(&self, shape: &[usize]) -> Result<Self> {
        Ok(self.with_layout(self.layout.broadcast_to("broadcast_to", shape)?))
    }

    /// The same elements with a new shape: a view when the strides allow, else a copy.
    pub fn try_reshape(&self, shape: &[usize]) -> Result<Self> {
        let count = element_count("reshape", shape)?;
        if count != self.len() {
            return Err(TensorError::new(
                "reshape",
                format!(
                    "cannot reshape {} ({} elements) to {} ({} elements)",
                    shape_str(self.shape()),
                    self.len(),
                    shape_str(shape),
                    count
                ),
            ));
        }
        Ok(match self.layout.reshape_view(shape) {
            Some(layout) => self.with_layout(layout),
            None => Self::from_contiguous(self.to_vec(), shape),
        })
    }

    /// Removes dimension `dim`, which must have size 1.
    pub fn try_squeeze(&self, dim: isize) -> Result<Self> {
        let d = normalize_dim("squeeze", dim, self.rank())?;
        if self.shape()[d] != 1 {
            return Err(TensorError::new(
                "squeeze",
                format!(
                    "dimension {} has size {}, not 1 (shape {})",
                    d,
                    self.shape()[d],
                    shape_str(self.shape())
                ),
            ));
        }
        Ok(self.with_layout(self.layout.squeeze(d)))
    }

    /// Inserts a dimension of size 1 at `dim` (`-1` appends one at the end).
    pub fn try_unsqueeze(&self, dim: isize) -> Result<Self> {
        let d = normalize_dim("unsqueeze", dim, self.rank() + 1)?;
        Ok(self.with_layout(self.layout.unsqueeze(d)))
    }

    panicking_forms! {
        /// Swaps two dimensions (a view); panics on a bad dimension.
        ///
        /// ```
        /// use tapeloop_tensor::Tensor;
        /// let a = Tensor::<f32>::zeros(&[2, 3, 4]);
        /// assert_eq!(a.transpose(0, -1).shape(), &[4, 3, 2]);
        /// ```
        fn transpose => try_transpose(dim0: isize, dim1: isize) -> Self;
        /// The transpose of a 2-D tensor (a view); panics for other ranks.
        fn t => try_t() -> Self;
        /// Reorders dimensions (a view); panics on a bad order.
        ///
        /// ```
        /// use tapeloop_tensor::Tensor;
        /// let a = Tensor::<f32>::zeros(&[2, 3, 4]);
        /// assert_eq!(a.permute(&[2, 0, 1]).shape(), &[4, 2, 3]);
        /// ```
        fn permute => try_permute(order: &[isize]) -> Self;
        /// A range along one dimension (a view); panics when out of bounds.
        ///
        /// ```
        /// use tapeloop_tensor::Tensor;
        /// let a = Tensor::<f32>::arange(0.0, 6.0, 1.0).reshape(&[2, 3]);
        /// assert_eq!(a.narrow(1, 1, 2).to_vec(), vec![1.0, 2.0, 4.0, 5.0]);
        /// ```
        fn narrow => try_narrow(dim: isize, start: usize, len: usize) -> Self;
        /// One index along a dimension, which is removed (a view); panics when out of bounds.
        ///
        /// ```
        /// use tapeloop_tensor::Tensor;
        /// let a = Tensor::<f32>::arange(0.0, 6.0, 1.0).reshape(&[2, 3]);
        /// assert_eq!(a.select(0, 1).to_vec(), vec![3.0, 4.0, 5.0]);
        /// ```
        fn select => try_select(dim: isize, index: usize) -> Self;
        /// Broadcasts to a larger shape with stride-0 dimensions (a view); panics when the
        /// shapes do not fit.
        ///
        /// ```
        /// use tapeloop_tensor::Tensor;
        /// let row = Tensor::<f32>::from_vec(vec![1.0, 2.0], &[2]);
        /// assert_eq!(row.broadcast_to(&[2, 2]).to_vec(), vec![1.0, 2.0, 1.0, 2.0]);
        /// ```
        fn broadcast_to => try_broadcast_to(shape: &[usize]) -> Self;
        /// Same as [`Tensor::broadcast_to`], under PyTorch's name.
        fn expand => try_broadcast_to(shape: &[usize]) -> Self;
        /// A new shape with the same elements; a view when possible. Panics when the element
        /// counts differ.
        ///
        /// ```
        /// use tapeloop_tensor::Tensor;
        /// let a = Tensor::<f32>::zeros(&[2, 6]);
        /// assert_eq!(a.reshape(&[3, 4]).shape(), &[3, 4]);
        /// ```
        fn reshape => try_reshape(shape: &[usize]) -> Self;
        /// Removes a size-1 dimension (a view); panics if its size is not 1.
        fn squeeze => try_squeeze(dim: isize) -> Self;
        /// Inserts a size-1 dimension (a view).
        ///
        /// ```
        /// use tapeloop_tensor::Tensor;
        /// assert_eq!(Tensor::<f32>::zeros(&[3]).unsqueeze(0).shape(), &[1, 3]);
        /// ```
        fn unsqueeze => try_unsqueeze(dim: isize) -> Self;
    }

    /// All elements as one dimension (a view when contiguous).
    pub fn flatten(&self) -> Self {
        self.reshape(&[self.len()])
    }

    /// The shape with dimension `dim` removed or kept as 1, for reductions.
    pub(crate) fn reduced_shape(&self, dims: &[usize], keepdim: bool) -> Shape {
        let mut out = Shape::new();
        for (d, &size) in self.shape().iter().enumerate() {
            if dims.contains(&d) {
                if keepdim {
                    out.push(1);
                }
            } else {
                out.push(size);
            }
        }
        out
    }
}
