//! Joining and splitting along a dimension: `cat`, `stack`, `split`, `chunk`. Splits are views.

use std::mem::MaybeUninit;

use crate::element::Element;
use crate::error::{Result, TensorError, shape_str};
use crate::layout::{Layout, element_count, normalize_dim};
use crate::macros::panicking_forms;
use crate::ops::elementwise::build_chunks;
use crate::ops::inplace::copy_strided;
use crate::tensor::Tensor;

impl<T: Element> Tensor<T> {
    /// Concatenates tensors along `dim`; all other dimensions must agree.
    ///
    /// ```
    /// use tapeloop_tensor::Tensor;
    /// let a = Tensor::<f32>::ones(&[2, 1]);
    /// let b = Tensor::<f32>::zeros(&[2, 2]);
    /// let c = Tensor::cat(&[&a, &b], 1);
    /// assert_eq!(c.to_vec(), vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn cat(tensors: &[&Self], dim: isize) -> Self {
        Self::try_cat(tensors, dim).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Concatenates tensors along `dim`.
    pub fn try_cat(tensors: &[&Self], dim: isize) -> Result<Self> {
        let first = tensors
            .first()
            .ok_or_else(|| TensorError::new("cat", "needs at least one tensor"))?;
        let d = normalize_dim("cat", dim, first.rank())?;
        let mut total = 0usize;
        for t in tensors {
            let fits = t.rank() == first.rank()
                && t.shape()
                    .iter()
                    .zip(first.shape())
                    .enumerate()
                    .all(|(i, (a, b))| i == d || a == b);
            if !fits {
                let shapes: Vec<String> = tensors.iter().map(|t| shape_str(t.shape())).collect();
                return Err(TensorError::new(
                    "cat",
                    format!("shapes {} differ outside dimension {d}", shapes.join(", ")),
                ));
            }
            total = total.checked_add(t.shape()[d]).ok_or_else(|| {
                TensorError::new(
                    "cat",
                    format!("the sizes along dimension {d} add up to more than a usize"),
                )
            })?;
        }
        let mut shape = first.shape_vec();
        shape[d] = total;
        if element_count("cat", &shape)? == 0 {
            // Nothing to copy, however many (empty) rows there are to walk.
            return Ok(Self::zeros(&shape));
        }
        let out_layout = Layout::contiguous(&shape);
        // Each index before `dim` owns one row of the result: every input's matching block,
        // one after the other. Appended, the result needs no zero fill first.
        let rows: usize = shape[..d].iter().product();
        let contiguous: Option<Vec<&[T]>> = tensors.iter().map(|t| t.as_slice()).collect();
        if let Some(inputs) = contiguous {
            // SAFETY: `copy_joined_rows` copies a source slice of exactly `take` elements into
            // `take` slots before counting them.
            let out = unsafe {
                build_chunks(out_layout.len(), |chunk, start| {
                    copy_joined_rows(&inputs, rows, start, chunk)
                })
            };
            return Ok(Self::from_contiguous(out, &shape));
        }
        if rows == 1 {
            let mut out = Vec::with_capacity(out_layout.len());
            for t in tensors {
                out.extend(t.to_vec());
            }
            return Ok(Self::from_contiguous(out, &shape));
        }
        let mut out = vec![T::zero(); out_layout.len()];
        let mut start = 0;
        for t in tensors {
            let size = t.shape()[d];
            copy_strided(&mut out, &out_layout.narrow(d, start, size), t);
            start += size;
        }
        Ok(Self::from_contiguous(out, &shape))
    }

    /// Stacks equally shaped tensors along a new dimension `dim`.
    ///
    /// ```
    /// use tapeloop_tensor::Tensor;
    /// let a = Tensor::<f32>::zeros(&[3]);
    /// assert_eq!(Tensor::stack(&[&a, &a], 0).shape(), &[2, 3]);
    /// ```
    #[track_caller]
    pub fn stack(tensors: &[&Self], dim: isize) -> Self {
        Self::try_stack(tensors, dim).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Stacks equally shaped tensors along a new dimension `dim`.
    pub fn try_stack(tensors: &[&Self], dim: isize) -> Result<Self> {
        let first = tensors
            .first()
            .ok_or_else(|| TensorError::new("stack", "needs at least one tensor"))?;
        if let Some(bad) = tensors.iter().find(|t| t.shape() != first.shape()) {
            return Err(TensorError::new(
                "stack",
                format!(
                    "all tensors need the same shape, got {} and {}",
                    shape_str(first.shape()),
                    shape_str(bad.shape())
                ),
            ));
        }
        let d = normalize_dim("stack", dim, first.rank() + 1)?;
        let expanded: Vec<Self> = tensors.iter().map(|t| t.unsqueeze(d as isize)).collect();
        let refs: Vec<&Self> = expanded.iter().collect();
        Self::try_cat(&refs, d as isize)
    }

    /// Splits along `dim` into pieces of `size` (the last may be smaller); views, no copies. An
    /// empty dimension gives one empty piece, as in PyTorch.
    pub fn try_split(&self, size: usize, dim: isize) -> Result<Vec<Self>> {
        let pieces = split_pieces(self.shape(), size, dim)?;
        Ok(self.narrow_pieces(&pieces))
    }

    /// Splits along `dim` into `chunks` nearly equal views (like `torch.chunk`): pieces of
    /// `ceil(n / chunks)`, so possibly fewer than `chunks`; an empty dimension gives `chunks`
    /// empty pieces.
    pub fn try_chunk(&self, chunks: usize, dim: isize) -> Result<Vec<Self>> {
        let pieces = chunk_pieces(self.shape(), chunks, dim)?;
        Ok(self.narrow_pieces(&pieces))
    }

    fn narrow_pieces(&self, pieces: &Pieces) -> Vec<Self> {
        let d = pieces.dim as isize;
        pieces
            .ranges
            .iter()
            .map(|&(start, len)| self.narrow(d, start, len))
            .collect()
    }

    panicking_forms! {
        /// Splits into views of `size` along `dim`.
        ///
        /// ```
        /// use tapeloop_tensor::Tensor;
        /// let parts = Tensor::<f32>::zeros(&[5, 2]).split(2, 0);
        /// assert_eq!(parts.iter().map(|p| p.dim(0)).collect::<Vec<_>>(), vec![2, 2, 1]);
        /// ```
        fn split => try_split(size: usize, dim: isize) -> Vec<Self>;
        /// Splits into `chunks` views along `dim` (PyTorch's sizes: `ceil(n / chunks)` each).
        ///
        /// ```
        /// use tapeloop_tensor::Tensor;
        /// let gates = Tensor::<f32>::zeros(&[2, 8]).chunk(4, 1);
        /// assert_eq!(gates[3].shape(), &[2, 2]);
        /// ```
        fn chunk => try_chunk(chunks: usize, dim: isize) -> Vec<Self>;
    }
}

/// Where the pieces of a split or chunk lie: `(start, len)` ranges along dimension `dim`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pieces {
    /// The dimension split (negative dimensions resolved).
    pub dim: usize,
    /// `(start, len)` of each piece along `dim`, in order.
    pub ranges: Vec<(usize, usize)>,
}

/// The pieces of [`Tensor::try_split`] for a tensor of `shape`, with its checks and messages,
/// so that a wrapper (an autograd variable) splits the same way without building tensors.
///
/// ```
/// use tapeloop_tensor::split_pieces;
/// let pieces = split_pieces(&[5, 2], 2, 0).unwrap();
/// assert_eq!(pieces.ranges, vec![(0, 2), (2, 2), (4, 1)]);
/// ```
pub fn split_pieces(shape: &[usize], size: usize, dim: isize) -> Result<Pieces> {
    let d = normalize_dim("split", dim, shape.len())?;
    if size == 0 {
        return Err(TensorError::new("split", "piece size must be positive"));
    }
    let total = shape[d];
    let ranges = if total == 0 {
        // PyTorch returns one empty piece rather than none.
        vec![(0, 0)]
    } else {
        (0..total)
            .step_by(size)
            .map(|start| (start, size.min(total - start)))
            .collect()
    };
    Ok(Pieces { dim: d, ranges })
}

/// The pieces of [`Tensor::try_chunk`] for a tensor of `shape`, with its checks and messages.
///
/// ```
/// use tapeloop_tensor::chunk_pieces;
/// assert_eq!(chunk_pieces(&[2, 8], 4, 1).unwrap().ranges, vec![(0, 2), (2, 2), (4, 2), (6, 2)]);
/// assert_eq!(chunk_pieces(&[2, 0], 4, -1).unwrap().ranges, vec![(0, 0); 4]);
/// ```
pub fn chunk_pieces(shape: &[usize], chunks: usize, dim: isize) -> Result<Pieces> {
    let d = normalize_dim("chunk", dim, shape.len())?;
    if chunks == 0 {
        return Err(TensorError::new(
            "chunk",
            "number of chunks must be positive",
        ));
    }
    if shape[d] == 0 {
        // PyTorch gives `chunks` empty pieces here, so `x.chunk(4, 1)` of an LSTM's gates
        // still has four entries when the hidden size is 0.
        return Ok(Pieces {
            dim: d,
            ranges: vec![(0, 0); chunks],
        });
    }
    split_pieces(shape, shape[d].div_ceil(chunks), d as isize)
}

/// Writes elements `start..start + chunk.len()` of the concatenation of contiguous `inputs`
/// (each seen as `rows` equal blocks; row `r` of the result is every input's block `r`, one
/// after the other) into `chunk`, and returns how many it wrote. Shared between threads by
/// `build_chunks`: joining a recurrent layer's per-step gradients is a serial copy of megabytes
/// otherwise.
fn copy_joined_rows<T: Element>(
    inputs: &[&[T]],
    rows: usize,
    start: usize,
    chunk: &mut [MaybeUninit<T>],
) -> usize {
    let row_len: usize = inputs.iter().map(|elements| elements.len() / rows).sum();
    let (mut row, mut skip) = (start / row_len, start % row_len);
    let mut written = 0;
    while written < chunk.len() {
        for elements in inputs {
            let block = elements.len() / rows;
            if skip >= block {
                skip -= block;
                continue;
            }
            let take = (block - skip).min(chunk.len() - written);
            let source = &elements[row * block + skip..][..take];
            // A plain loop: LLVM makes it a `memcpy`.
            for (slot, &value) in chunk[written..written + take].iter_mut().zip(source) {
                slot.write(value);
            }
            written += take;
            skip = 0;
            if written == chunk.len() {
                break;
            }
        }
        row += 1;
    }
    written
}
