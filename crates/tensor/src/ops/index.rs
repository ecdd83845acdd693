//! Integer indexing: `index_select` (embedding lookups), `gather`, `scatter_add` and `one_hot`.

use crate::element::Element;
use crate::error::{Result, TensorError, shape_str};
use crate::layout::{
    Layout, Shape, contiguous_strides, element_count, element_count_or_panic, normalize_dim,
};
use crate::macros::panicking_forms;
use crate::tensor::Tensor;

/// A row-major array of indices with a shape: the index argument of [`Tensor::gather`],
/// [`Tensor::scatter_add`] and [`Tensor::one_hot`] (PyTorch uses int64 tensors there).
///
/// ```
/// use tapeloop_tensor::Indices;
/// let targets = Indices::new(vec![2, 0, 1], &[3]);
/// assert_eq!(targets.shape(), &[3]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Indices {
    data: Vec<usize>,
    shape: Shape,
}

impl Indices {
    /// Indices with a shape; panics if the sizes differ.
    #[track_caller]
    pub fn new(data: Vec<usize>, shape: &[usize]) -> Self {
        let expected = element_count_or_panic("Indices::new", shape);
        assert_eq!(
            data.len(),
            expected,
            "Indices::new: shape {} needs {} indices but {} were given",
            shape_str(shape),
            expected,
            data.len()
        );
        Self {
            data,
            shape: shape.into(),
        }
    }

    /// A 1-D list of indices.
    pub fn from_slice(data: &[usize]) -> Self {
        Self::new(data.to_vec(), &[data.len()])
    }

    /// The indices in row-major order.
    pub fn as_slice(&self) -> &[usize] {
        &self.data
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of indices.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when there is no index.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Storage position of every element of a `shape`-shaped view where dimension `dim` is replaced
/// by `index[i]`, for gather/scatter: returns (position in the indexed tensor, index position).
fn gather_positions(
    op: &'static str,
    target: &Layout,
    dim: usize,
    index: &Indices,
) -> Result<Vec<usize>> {
    let size = target.shape()[dim];
    let index_strides = contiguous_strides(index.shape());
    let mut positions = Vec::with_capacity(index.len());
    for (flat, &i) in index.as_slice().iter().enumerate() {
        if i >= size {
            return Err(TensorError::new(
                op,
                format!("index {i} is out of bounds for dimension {dim} of size {size}"),
            ));
        }
        let mut position = target.offset();
        for d in 0..index.shape().len() {
            let coordinate = (flat / index_strides[d]) % index.shape()[d];
            let coordinate = if d == dim { i } else { coordinate };
            position += coordinate * target.strides()[d];
        }
        positions.push(position);
    }
    Ok(positions)
}

fn check_gather_shapes(
    op: &'static str,
    shape: &[usize],
    dim: usize,
    index: &Indices,
) -> Result<()> {
    let fits = index.shape().len() == shape.len()
        && index
            .shape()
            .iter()
            .zip(shape)
            .enumerate()
            .all(|(d, (i, s))| d == dim || i <= s);
    if fits {
        Ok(())
    } else {
        Err(TensorError::new(
            op,
            format!(
                "index of shape {} does not fit a tensor of shape {} along dimension {dim}",
                shape_str(index.shape()),
                shape_str(shape)
            ),
        ))
    }
}

impl<T: Element> Tensor<T> {
    /// Picks positions `indices` along `dim` (an embedding lookup is `table.index_select(0, ids)`).
    pub fn try_index_select(&self, dim: isize, indices: &[usize]) -> Result<Self> {
        let d = normalize_dim("index_select", dim, self.rank())?;
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.shape()[d]) {
            return Err(TensorError::new(
                "index_select",
                format!(
                    "index {bad} is out of bounds for dimension {d} of size {} (shape {})",
                    self.shape()[d],
                    shape_str(self.shape())
                ),
            ));
        }
        let pieces: Vec<Self> = indices
            .iter()
            .map(|&i| self.narrow(d as isize, i, 1))
            .collect();
        if pieces.is_empty() {
            let mut shape = self.shape_vec();
            shape[d] = 0;
            return Ok(Self::zeros(&shape));
        }
        let refs: Vec<&Self> = pieces.iter().collect();
        Self::try_cat(&refs, d as isize)
    }

    /// `out[i][j] = self[index[i][j]][j]` for `dim = 0` (and likewise for other dimensions), as
    /// `torch.gather`. The result has the index's shape.
    pub fn try_gather(&self, dim: isize, index: &Indices) -> Result<Self> {
        let d = normalize_dim("gather", dim, self.rank())?;
        check_gather_shapes("gather", self.shape(), d, index)?;
        let positions = gather_positions("gather", &self.layout, d, index)?;
        let data = positions.iter().map(|&p| self.storage[p]).collect();
        Ok(Self::from_contiguous(data, index.shape()))
    }

    /// Adds `src` into a copy of `self` at the positions `index` names along `dim` (as
    /// `torch.scatter_add`): `out[index[i][j]][j] += src[i][j]` for `dim = 0`. This is the
    /// gradient of `gather`.
    pub fn try_scatter_add(&self, dim: isize, index: &Indices, src: &Self) -> Result<Self> {
        let d = normalize_dim("scatter_add", dim, self.rank())?;
        check_gather_shapes("scatter_add", self.shape(), d, index)?;
        if src.shape() != index.shape() {
            return Err(TensorError::new(
                "scatter_add",
                format!(
                    "source shape {} differs from index shape {}",
                    shape_str(src.shape()),
                    shape_str(index.shape())
                ),
            ));
        }
        let mut out = self.deep_clone();
        let positions = gather_positions("scatter_add", &out.layout, d, index)?;
        let values = src.to_vec();
        let storage = std::sync::Arc::get_mut(&mut out.storage).expect("fresh copy is unique");
        for (p, v) in positions.into_iter().zip(values) {
            storage[p] += v;
        }
        Ok(out)
    }

    /// One-hot rows: shape `index.shape() + [classes]`, with 1 at each index.
    ///
    /// ```
    /// use tapeloop_tensor::{Indices, Tensor};
    /// let hot = Tensor::<f32>::one_hot(&Indices::from_slice(&[2, 0]), 3);
    /// assert_eq!(hot.to_vec(), vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn one_hot(index: &Indices, classes: usize) -> Self {
        Self::try_one_hot(index, classes).unwrap_or_else(|e| panic!("{e}"))
    }

    /// One-hot rows: shape `index.shape() + [classes]`, with 1 at each index.
    pub fn try_one_hot(index: &Indices, classes: usize) -> Result<Self> {
        let mut shape: Shape = index.shape().into();
        shape.push(classes);
        let mut data = vec![T::zero(); element_count("one_hot", &shape)?];
        for (row, &i) in index.as_slice().iter().enumerate() {
            if i >= classes {
                return Err(TensorError::new(
                    "one_hot",
                    format!("index {i} is out of range for {classes} classes"),
                ));
            }
            data[row * classes + i] = T::one();
        }
        Ok(Self::from_contiguous(data, &shape))
    }

    panicking_forms! {
        /// Picks positions along `dim`; panics on an index out of bounds.
        ///
        /// ```
        /// use tapeloop_tensor::Tensor;
        /// let table = Tensor::<f32>::arange(0.0, 6.0, 1.0).reshape(&[3, 2]);
        /// assert_eq!(table.index_select(0, &[2, 0]).to_vec(), vec![4.0, 5.0, 0.0, 1.0]);
        /// ```
        fn index_select => try_index_select(dim: isize, indices: &[usize]) -> Self;
        /// Gathers along `dim` (as `torch.gather`).
        ///
        /// ```
        /// use tapeloop_tensor::{Indices, Tensor};
        /// let logits = Tensor::<f32>::arange(0.0, 6.0, 1.0).reshape(&[2, 3]);
        /// let picked = logits.gather(1, &Indices::new(vec![2, 0], &[2, 1]));
        /// assert_eq!(picked.to_vec(), vec![2.0, 3.0]);
        /// ```
        fn gather => try_gather(dim: isize, index: &Indices) -> Self;
        /// Scatter-adds along `dim` (as `torch.scatter_add`).
        fn scatter_add => try_scatter_add(dim: isize, index: &Indices, src: &Self) -> Self;
    }
}
