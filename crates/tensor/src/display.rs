//! Printing tensors the way PyTorch does: values with shared precision, long dimensions
//! summarized with `...`, and the shape and dtype.

use std::fmt;

use crate::element::Element;
use crate::tensor::Tensor;

/// Tensors with more elements than this are summarized (PyTorch's `threshold`).
const SUMMARIZE_THRESHOLD: usize = 1000;
/// Elements shown at each end of a summarized dimension (PyTorch's `edgeitems`).
const EDGE_ITEMS: usize = 3;

fn write_nested<T: Element>(
    f: &mut fmt::Formatter<'_>,
    tensor: &Tensor<T>,
    summarize: bool,
    indent: usize,
) -> fmt::Result {
    if tensor.rank() == 0 {
        return write!(f, "{:.4}", tensor.item());
    }
    let size = tensor.shape()[0];
    let shown: Vec<Option<usize>> = if summarize && size > 2 * EDGE_ITEMS {
        (0..EDGE_ITEMS)
            .map(Some)
            .chain(std::iter::once(None))
            .chain((size - EDGE_ITEMS..size).map(Some))
            .collect()
    } else {
        (0..size).map(Some).collect()
    };
    write!(f, "[")?;
    for (n, entry) in shown.iter().enumerate() {
        if n > 0 {
            if tensor.rank() == 1 {
                write!(f, ", ")?;
            } else {
                write!(f, ",\n{:indent$}", "", indent = indent + 1)?;
            }
        }
        match entry {
            Some(i) => write_nested(f, &tensor.select(0, *i), summarize, indent + 1)?,
            None => write!(f, "...")?,
        }
    }
    write!(f, "]")
}

impl<T: Element> fmt::Display for Tensor<T> {
    /// ```
    /// use tapeloop_tensor::Tensor;
    /// let t = Tensor::<f32>::from_vec(vec![1.0, 2.5], &[2]);
    /// assert_eq!(t.to_string(), "tensor([1.0000, 2.5000], shape=[2], dtype=f32)");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tensor(")?;
        if self.is_empty() {
            // As PyTorch prints it, and without walking the rows of a [2⁴⁰, 0] tensor.
            write!(f, "[]")?;
        } else {
            write_nested(f, self, self.len() > SUMMARIZE_THRESHOLD, 7)?;
        }
        write!(f, ", shape={:?}, dtype={})", self.shape(), T::DTYPE)
    }
}

impl<T: Element> fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
