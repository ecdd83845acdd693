//! Slice gradients kept apart until their input's gradient is needed.
//!
//! `narrow`, `select` and `chunk` each send their gradient to one block of their input's
//! gradient. Added one by one into a zero-filled buffer, every element is written by the fill,
//! then read and written again by the addition. When the blocks tile the input exactly — every
//! time step of a sequence, every gate of a chunked gate matrix — the input's gradient is just
//! the blocks joined, one write per element, as PyTorch's backward of `split` joins its pieces
//! with `cat`. Anything else (overlapping or partial blocks, blocks along different dimensions,
//! a gradient that also arrives whole) still goes through the buffer.
//!
//! Only small gradients are joined. A sequence's per-step blocks arrive over the whole backward
//! pass; held to the end, they have left the cache by the time they are joined, and reading
//! them back cost more than the fill saved (a medium LSTM step, whose input projection's
//! gradient is 52 MB, took 4–5% longer). Added as they arrive, each is still in cache.

use tensor::{Element, Tensor};

use crate::node::SliceOf;
use crate::var::Var;

/// Inputs with more elements than this get their slice gradients added as they arrive: about
/// the second-level cache of a core (1 MiB of `f32`), so that held blocks are still in cache
/// when they are joined.
const MAX_JOINED_ELEMENTS: usize = 1 << 18;

/// The blocks received so far for one node's gradient, not yet joined.
pub(crate) struct SliceGradients<T: Element> {
    /// The dimension every held block was cut along.
    dim: usize,
    /// `(start along dim, gradient)`, each gradient with `dim` kept (a `select`'s unsqueezed).
    blocks: Vec<(usize, Tensor<T>)>,
    /// Sum of the held blocks' lengths along `dim`. Never above the input's length, so held
    /// blocks never pin more memory than the joined gradient will need.
    covered: usize,
}

impl<T: Element> Default for SliceGradients<T> {
    fn default() -> Self {
        Self {
            dim: 0,
            blocks: Vec::new(),
            covered: 0,
        }
    }
}

impl<T: Element> SliceGradients<T> {
    pub(crate) fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Adds a slice's gradient for the block `slice` of an input of `shape`, whose gradient
    /// accumulated so far is `dense`. Held back while the blocks may still tile the input;
    /// otherwise added into `dense` (made first from the held blocks if need be).
    pub(crate) fn add(
        &mut self,
        dense: &mut Option<Var<T>>,
        shape: &[usize],
        slice: SliceOf,
        gradient: Tensor<T>,
    ) {
        let block = if slice.squeezed {
            gradient.unsqueeze(slice.dim as isize)
        } else {
            gradient
        };
        let len = block.shape()[slice.dim];
        let may_tile = dense.is_none()
            && shape.iter().product::<usize>() <= MAX_JOINED_ELEMENTS
            && (self.blocks.is_empty() || self.dim == slice.dim)
            && self.covered + len <= shape[slice.dim];
        if may_tile {
            self.dim = slice.dim;
            self.covered += len;
            self.blocks.push((slice.start, block));
            return;
        }
        let mut whole = std::mem::take(self)
            .join(dense.take(), shape)
            .unwrap_or_else(|| Var::constant(Tensor::zeros(shape)));
        // A whole gradient may be a broadcast (stride-0) view, a `sum`'s say.
        crate::engine::writable(&mut whole.value).narrow_add_assign(
            slice.dim as isize,
            slice.start,
            &block,
        );
        *dense = Some(whole);
    }

    /// The gradient of an input of `shape`: the held blocks joined when they tile it and
    /// nothing else arrived, or else `dense` (zeros if `None`) with every block added.
    pub(crate) fn join(mut self, dense: Option<Var<T>>, shape: &[usize]) -> Option<Var<T>> {
        if self.blocks.is_empty() {
            return dense;
        }
        self.blocks.sort_by_key(|&(start, _)| start);
        let mut next = 0;
        let tiles = self.blocks.iter().all(|(start, block)| {
            let at = *start == next;
            next += block.shape()[self.dim];
            at
        }) && next == shape[self.dim];
        if dense.is_none() && tiles {
            let blocks: Vec<&Tensor<T>> = self.blocks.iter().map(|(_, b)| b).collect();
            return Some(Var::constant(Tensor::cat(&blocks, self.dim as isize)));
        }
        let mut whole = dense.unwrap_or_else(|| Var::constant(Tensor::zeros(shape)));
        let value = crate::engine::writable(&mut whole.value);
        for (start, block) in &self.blocks {
            value.narrow_add_assign(self.dim as isize, *start, block);
        }
        Some(whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(dim: usize, start: usize) -> SliceOf {
        SliceOf {
            dim,
            start,
            squeezed: false,
        }
    }

    fn filled(value: f64, shape: &[usize]) -> Tensor<f64> {
        Tensor::full(shape, value)
    }

    #[test]
    fn blocks_that_tile_are_joined_in_order_of_position() {
        let mut held = SliceGradients::default();
        let mut dense = None;
        held.add(&mut dense, &[2, 3], slice(1, 1), filled(2.0, &[2, 2]));
        held.add(&mut dense, &[2, 3], slice(1, 0), filled(1.0, &[2, 1]));
        assert!(dense.is_none(), "tiling blocks are held, not added");
        let joined = held.join(None, &[2, 3]).unwrap();
        assert_eq!(joined.value.to_vec(), vec![1.0, 2.0, 2.0, 1.0, 2.0, 2.0]);
    }

    #[test]
    fn selected_rows_are_joined_along_the_selected_dimension() {
        let mut held = SliceGradients::default();
        let mut dense = None;
        for t in [1, 0] {
            let select = SliceOf {
                dim: 0,
                start: t,
                squeezed: true,
            };
            held.add(&mut dense, &[2, 2], select, filled(t as f64, &[2]));
        }
        let joined = held.join(None, &[2, 2]).unwrap();
        assert_eq!(joined.value.to_vec(), vec![0.0, 0.0, 1.0, 1.0]);
    }

    #[test]
    fn overlapping_partial_and_crossing_blocks_are_summed() {
        // The same block twice: covers the length, but does not tile.
        let mut held = SliceGradients::default();
        let mut dense = None;
        held.add(&mut dense, &[4], slice(0, 0), filled(1.0, &[2]));
        held.add(&mut dense, &[4], slice(0, 0), filled(1.0, &[2]));
        let sum = held.join(dense, &[4]).unwrap();
        assert_eq!(sum.value.to_vec(), vec![2.0, 2.0, 0.0, 0.0]);

        // More than the length: the third block makes the held ones dense at once.
        let mut held = SliceGradients::default();
        let mut dense = None;
        for start in [0, 1, 2] {
            held.add(&mut dense, &[3], slice(0, start), filled(1.0, &[1]));
        }
        held.add(&mut dense, &[3], slice(0, 1), filled(5.0, &[1]));
        assert!(held.is_empty() && dense.is_some());
        assert_eq!(dense.unwrap().value.to_vec(), vec![1.0, 6.0, 1.0]);

        // Blocks along two dimensions.
        let mut held = SliceGradients::default();
        let mut dense = None;
        held.add(&mut dense, &[2, 2], slice(0, 0), filled(1.0, &[1, 2]));
        held.add(&mut dense, &[2, 2], slice(1, 1), filled(3.0, &[2, 1]));
        let sum = held.join(dense, &[2, 2]).unwrap();
        assert_eq!(sum.value.to_vec(), vec![1.0, 4.0, 0.0, 3.0]);
    }

    #[test]
    fn blocks_of_a_large_input_are_added_as_they_arrive() {
        let shape = [MAX_JOINED_ELEMENTS / 4 + 1, 4];
        let mut held = SliceGradients::default();
        let mut dense = None;
        held.add(&mut dense, &shape, slice(0, 1), filled(3.0, &[1, 4]));
        assert!(held.is_empty());
        let dense = dense.expect("added at once");
        assert_eq!(dense.value.shape(), &shape);
        assert_eq!(
            dense.value.narrow(0, 0, 3).to_vec(),
            [[0.0; 4], [3.0; 4], [0.0; 4]].concat()
        );
    }

    #[test]
    fn a_whole_gradient_is_added_to_and_not_replaced() {
        let mut held = SliceGradients::default();
        let mut dense = None;
        held.add(&mut dense, &[2], slice(0, 0), filled(1.0, &[1]));
        held.add(&mut dense, &[2], slice(0, 1), filled(2.0, &[1]));
        let whole = Var::constant(filled(10.0, &[2]));
        let shared = whole.value.clone();
        let sum = held.join(Some(whole), &[2]).unwrap();
        assert_eq!(sum.value.to_vec(), vec![11.0, 12.0]);
        assert_eq!(
            shared.to_vec(),
            vec![10.0, 10.0],
            "copy-on-write kept the original"
        );
    }
}
