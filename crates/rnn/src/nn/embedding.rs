//! [`Embedding`]: a lookup table of vectors, PyTorch's `nn.Embedding`.

use std::cell::Cell;

use autograd::{Parameter, Var};
use tensor::{Element, Indices, Tensor, TensorRng};

use crate::error::RnnError;
use crate::module::Module;

/// A table of `num_embeddings` vectors of size `embedding_dim`; `forward` picks rows by index
/// (PyTorch's `nn.Embedding`). The gradient of the table is the sum of the gradients of the
/// rows picked, so a token seen twice gets both.
///
/// Parameter: `weight` `[num_embeddings, embedding_dim]`, drawn from N(0, 1) as in PyTorch.
/// With a `padding_idx`, that row starts at zero and never receives a gradient, so padding
/// tokens contribute nothing and their vector stays put.
///
/// ```
/// use tapeloop_rnn::nn::Embedding;
/// use tapeloop_rnn::{seeded_rng, tensor::Indices};
///
/// let embedding = Embedding::<f32>::new(10, 4, Some(0), &mut seeded_rng(0));
/// let tokens = Indices::new(vec![3, 1, 0, 0, 7, 2], &[3, 2]); // [time, batch]
/// let vectors = embedding.forward(&tokens).unwrap();
/// assert_eq!(vectors.shape(), &[3, 2, 4]);
/// assert_eq!(vectors.value().get(&[1, 0, 2]), 0.0); // the padding row is zero
/// ```
pub struct Embedding<T: Element> {
    /// `[num_embeddings, embedding_dim]`.
    pub weight: Parameter<T>,
    padding_idx: Option<usize>,
    training: Cell<bool>,
}

impl<T: Element> Embedding<T> {
    /// A table drawn from N(0, 1) (PyTorch's default), with the padding row (if any) zeroed.
    ///
    /// Panics when `padding_idx` is not a row of the table.
    #[track_caller]
    pub fn new(
        num_embeddings: usize,
        embedding_dim: usize,
        padding_idx: Option<usize>,
        rng: &mut TensorRng,
    ) -> Self {
        let mut weight = Tensor::randn(&[num_embeddings, embedding_dim], rng);
        if let Some(pad) = padding_idx {
            assert!(
                pad < num_embeddings,
                "Embedding: padding_idx {pad} is not below num_embeddings {num_embeddings}"
            );
            for column in 0..embedding_dim {
                weight.set(&[pad, column], T::zero());
            }
        }
        Self {
            weight: Parameter::new(weight),
            padding_idx,
            training: Cell::new(true),
        }
    }

    /// A table from given values (kept as they are, the padding row included).
    pub fn from_tensor(weight: Tensor<T>, padding_idx: Option<usize>) -> Result<Self, RnnError> {
        if weight.rank() != 2 {
            return Err(RnnError::Shape(format!(
                "Embedding weight must be [num_embeddings, embedding_dim], got {:?}",
                weight.shape()
            )));
        }
        if let Some(pad) = padding_idx
            && pad >= weight.shape()[0]
        {
            return Err(RnnError::Config(format!(
                "padding_idx {pad} is not a row of an embedding table of shape {:?}",
                weight.shape()
            )));
        }
        Ok(Self {
            weight: Parameter::new(weight),
            padding_idx,
            training: Cell::new(true),
        })
    }

    /// Number of vectors in the table.
    pub fn num_embeddings(&self) -> usize {
        self.weight.shape()[0]
    }

    /// Size of each vector.
    pub fn embedding_dim(&self) -> usize {
        self.weight.shape()[1]
    }

    /// The row that receives no gradient, if any.
    pub fn padding_idx(&self) -> Option<usize> {
        self.padding_idx
    }

    /// The vectors of `indices`, shaped `indices.shape() + [embedding_dim]`; an error names the
    /// first index out of range.
    pub fn forward(&self, indices: &Indices) -> Result<Var<T>, RnnError> {
        let rows = self.num_embeddings();
        if let Some((position, &bad)) = indices
            .as_slice()
            .iter()
            .enumerate()
            .find(|&(_, &i)| i >= rows)
        {
            return Err(RnnError::Shape(format!(
                "Embedding: index {bad} at position {position} is out of range for {rows} embeddings"
            )));
        }
        let picked = self.weight.var().index_select(0, indices.as_slice());
        let picked = match self.padding_idx {
            // Same values everywhere; the gradient passes only where the token is not padding.
            Some(pad) if indices.as_slice().contains(&pad) => {
                let keep: Vec<T> = indices
                    .as_slice()
                    .iter()
                    .map(|&i| if i == pad { T::zero() } else { T::one() })
                    .collect();
                let keep = Tensor::from_vec(keep, &[indices.len(), 1]);
                Var::where_cond(&keep, &picked, &picked.detach())
            }
            _ => picked,
        };
        let mut shape = indices.shape().to_vec();
        shape.push(self.embedding_dim());
        Ok(picked.reshape(&shape))
    }
}

impl<T: Element> Module<T> for Embedding<T> {
    fn named_parameters(&self) -> Vec<(String, Parameter<T>)> {
        vec![("weight".to_string(), self.weight.clone())]
    }

    fn set_training(&self, training: bool) {
        self.training.set(training);
    }

    fn is_training(&self) -> bool {
        self.training.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor::seeded_rng;

    #[test]
    fn gradient_sums_over_repeats_and_skips_padding() {
        let table = Tensor::<f64>::from_vec((0..8).map(f64::from).collect(), &[4, 2]);
        let embedding = Embedding::from_tensor(table, Some(3)).unwrap();
        let out = embedding
            .forward(&Indices::from_slice(&[1, 3, 1, 2]))
            .unwrap();
        assert_eq!(
            out.value().to_vec(),
            vec![2.0, 3.0, 6.0, 7.0, 2.0, 3.0, 4.0, 5.0]
        );
        out.sum(&[], false).backward().unwrap();
        let grad = embedding.weight.grad().unwrap().to_vec();
        assert_eq!(grad, vec![0.0, 0.0, 2.0, 2.0, 1.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn out_of_range_index_is_an_error() {
        let embedding = Embedding::<f32>::new(5, 3, None, &mut seeded_rng(0));
        let err = embedding
            .forward(&Indices::from_slice(&[0, 5]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("index 5 at position 1"), "{err}");
    }
}
