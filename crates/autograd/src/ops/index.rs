//! Integer indexing: `gather` and `scatter_add` (each the other's gradient), and
//! `index_select` / `embedding` built on them.

use tensor::{Element, Indices, Shape, Tensor, TensorError};

use crate::node::Gradients;
use crate::ops::panicking_forms;
use crate::var::Var;

/// The gather index equivalent to `index_select(dim, indices)` on a tensor of `shape`.
fn expand_index(shape: &[usize], dim: usize, indices: &[usize]) -> Indices {
    let mut out_shape = shape.to_vec();
    out_shape[dim] = indices.len();
    let inner: usize = out_shape[dim + 1..].iter().product();
    let total: usize = out_shape.iter().product();
    let data = (0..total)
        .map(|flat| indices[(flat / inner) % indices.len()])
        .collect();
    Indices::new(data, &out_shape)
}

impl<T: Element> Var<T> {
    /// `torch.gather` along `dim`; the gradient scatters back with `scatter_add`.
    #[track_caller]
    pub fn try_gather(&self, dim: isize, index: &Indices) -> Result<Var<T>, TensorError> {
        let value = self.value.try_gather(dim, index)?;
        let (index, shape) = (index.clone(), Shape::from_slice(self.shape()));
        Ok(Var::record("gather", value, &[self], false, move |ctx| {
            let zeros = Var::constant(Tensor::zeros(&shape));
            Gradients::from_iter([Some(zeros.scatter_add(dim, &index, ctx.grad))])
        }))
    }

    /// `self` plus `src` added at the positions `index` names along `dim` (`torch.scatter_add`).
    #[track_caller]
    pub fn try_scatter_add(
        &self,
        dim: isize,
        index: &Indices,
        src: &Var<T>,
    ) -> Result<Var<T>, TensorError> {
        let value = self.value.try_scatter_add(dim, index, &src.value)?;
        let index = index.clone();
        Ok(Var::record(
            "scatter_add",
            value,
            &[self, src],
            false,
            move |ctx| {
                Gradients::from_iter([
                    ctx.needs[0].then(|| ctx.grad.clone()),
                    ctx.needs[1].then(|| ctx.grad.gather(dim, &index)),
                ])
            },
        ))
    }

    /// Picks positions `indices` along `dim`.
    #[track_caller]
    pub fn try_index_select(&self, dim: isize, indices: &[usize]) -> Result<Var<T>, TensorError> {
        let d = if dim < 0 {
            dim + self.rank() as isize
        } else {
            dim
        };
        self.value.try_index_select(dim, indices)?;
        if indices.is_empty() {
            let mut shape = self.shape().to_vec();
            shape[d as usize] = 0;
            return Ok(Var::constant(Tensor::zeros(&shape)));
        }
        self.try_gather(d, &expand_index(self.shape(), d as usize, indices))
    }

    panicking_forms! {
        /// Gathers along `dim` (as `torch.gather`).
        fn gather => try_gather(dim: isize, index: &Indices) -> Var<T>;
        /// Scatter-adds along `dim` (as `torch.scatter_add`).
        fn scatter_add => try_scatter_add(dim: isize, index: &Indices, src: &Var<T>) -> Var<T>;
        /// Picks positions along `dim`; an embedding lookup is `table.index_select(0, ids)`.
        ///
        /// ```
        /// use tapeloop_autograd::{Var, Tensor};
        /// let table = Var::leaf(Tensor::<f64>::ones(&[5, 2]));
        /// let rows = table.index_select(0, &[1, 1, 4]);
        /// rows.sum(&[], false).backward().unwrap();
        /// assert_eq!(table.grad().unwrap().to_vec(), vec![0., 0., 2., 2., 0., 0., 0., 0., 1., 1.]);
        /// ```
        fn index_select => try_index_select(dim: isize, indices: &[usize]) -> Var<T>;
    }
}
