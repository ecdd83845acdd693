//! Elementwise functions of several tensors with several results, computed in one pass: the
//! kernel under autograd's fused ops, where a cell body's chain of gates and products runs
//! element by element instead of as one op, one pass and one buffer per step of the chain.

use std::borrow::Cow;
use std::mem::MaybeUninit;

use smallvec::SmallVec;

use crate::element::Element;
use crate::error::{Result, TensorError, shape_str};
use crate::layout::{Shape, broadcast_sizes, element_count};
use crate::ops::elementwise::CHUNK;
use crate::ops::simd;
use crate::parallel;
use crate::tensor::Tensor;

/// The fewest elements a thread is given when a fused pass is shared, so passes from 2¹¹
/// elements run on two threads: far fewer than a single op needs
/// ([`PARALLEL_THRESHOLD`](crate::PARALLEL_THRESHOLD), 2¹⁵), because a fused body does several
/// ops' arithmetic per element (an LSTM cell's forward three sigmoids or tanh, its backward the
/// same again on dual numbers). On a 2-vCPU AMD EPYC (interleaved rounds, medians) a small LSTM
/// training step (T=50, B=32, H=128: fused ops of [32, 128]) took 21.7 → 20.0 ms against
/// sharing from 2¹⁵, a small GRU 17.5 → 16.0, a long GRU (B=16: [16, 128]) 240 → 210. Sharing
/// from 2¹⁰, 2¹¹ or 2¹² elements measured alike on the small LSTM; 2¹¹ keeps the long
/// configuration's [16, 128] on both cores. A cheap closure passed to
/// [`Tensor::try_map_elements`] pays for the hand-over at this size too; fused cell bodies are
/// what the kernel is for.
const MIN_FUSED_BLOCK: usize = 1 << 10;

/// The length of the blocks a fused pass of `count > 0` elements, in rows of `row_len`, is cut
/// into for a team of `threads`. A pass that fits in one `CHUNK` per thread gets one block per
/// thread with at least [`MIN_FUSED_BLOCK`] elements to do, cut without regard to rows (a
/// block may start and end mid-row), so that no thread is left with a short remainder. A larger
/// pass gets whole rows up to `CHUNK`, or `CHUNK`-long pieces of a longer row, which the threads
/// claim as they finish.
fn block_len(count: usize, row_len: usize, threads: usize) -> usize {
    let sharing = threads.min(count / MIN_FUSED_BLOCK).max(1);
    if count <= sharing * CHUNK {
        count.div_ceil(sharing)
    } else if row_len <= CHUNK {
        CHUNK / row_len * row_len
    } else {
        CHUNK
    }
}

/// The function a fused elementwise pass applies at every position: the inputs' elements and
/// the weight's in, the results' out. Closures implement it; a type of its own lets a caller
/// mark [`ElementKernel::at`] `#[inline(always)]`, which a closure cannot be, so that a large
/// body is still inlined into (and vectorized with) the loop over the elements.
///
/// ```
/// use tapeloop_tensor::{ElementKernel, Tensor};
///
/// /// x·w and x + w at once.
/// struct ProductAndSum;
/// impl ElementKernel<f64, 1, 2> for ProductAndSum {
///     #[inline(always)]
///     fn at(&self, [x]: [f64; 1], w: f64) -> [f64; 2] {
///         [x * w, x + w]
///     }
/// }
/// let x = Tensor::<f64>::from_vec(vec![1.0, 2.0], &[2]);
/// let w = Tensor::<f64>::scalar(3.0);
/// let [product, sum] =
///     Tensor::try_map_elements_with("product_and_sum", [&x], Some(&w), ProductAndSum).unwrap();
/// assert_eq!((product.to_vec(), sum.to_vec()), (vec![3.0, 6.0], vec![4.0, 5.0]));
/// ```
pub trait ElementKernel<T, const N: usize, const M: usize>: Sync {
    /// The results at one position.
    fn at(&self, inputs: [T; N], weight: T) -> [T; M];
}

impl<T, F, const N: usize, const M: usize> ElementKernel<T, N, M> for F
where
    F: Fn([T; N], T) -> [T; M] + Sync,
{
    #[inline(always)]
    fn at(&self, inputs: [T; N], weight: T) -> [T; M] {
        self(inputs, weight)
    }
}

impl<T: Element> Tensor<T> {
    /// The `M` results of an elementwise function of `N` tensors, computed in one pass over
    /// them: at every position of the common (broadcast) shape, `f(x, w)` receives the `N`
    /// inputs' elements there and `weight`'s element (1 without a weight), and returns the `M`
    /// results' elements.
    ///
    /// Operands are read where they lie when their last dimension is contiguous (a block of
    /// columns of a matrix is); others are copied once first.
    ///
    /// ```
    /// use tapeloop_tensor::Tensor;
    ///
    /// let a = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0], &[3]);
    /// let b = Tensor::<f32>::scalar(10.0);
    /// let [sum, product] =
    ///     Tensor::try_map_elements("sum_and_product", [&a, &b], None, |[x, y], _| [x + y, x * y])
    ///         .unwrap();
    /// assert_eq!(sum.to_vec(), vec![11.0, 12.0, 13.0]);
    /// assert_eq!(product.to_vec(), vec![10.0, 20.0, 30.0]);
    /// ```
    pub fn try_map_elements<const N: usize, const M: usize>(
        op: &'static str,
        inputs: [&Tensor<T>; N],
        weight: Option<&Tensor<T>>,
        f: impl Fn([T; N], T) -> [T; M] + Sync,
    ) -> Result<[Tensor<T>; M]> {
        Self::try_map_elements_with(op, inputs, weight, f)
    }

    /// [`Tensor::try_map_elements`] with the function given as an [`ElementKernel`], whose
    /// `at` can be forced inline where a closure's call cannot.
    ///
    /// ```
    /// use tapeloop_tensor::{ElementKernel, Tensor};
    ///
    /// struct Square;
    /// impl ElementKernel<f32, 1, 1> for Square {
    ///     #[inline(always)]
    ///     fn at(&self, [x]: [f32; 1], _: f32) -> [f32; 1] {
    ///         [x * x]
    ///     }
    /// }
    /// let x = Tensor::<f32>::from_vec(vec![1.0, 2.0], &[2]);
    /// let [y] = Tensor::try_map_elements_with("square", [&x], None, Square).unwrap();
    /// assert_eq!(y.to_vec(), vec![1.0, 4.0]);
    /// ```
    pub fn try_map_elements_with<const N: usize, const M: usize>(
        op: &'static str,
        inputs: [&Tensor<T>; N],
        weight: Option<&Tensor<T>>,
        f: impl ElementKernel<T, N, M>,
    ) -> Result<[Tensor<T>; M]> {
        let shape = common_shape(op, &inputs, weight)?;
        let row_len = shape.last().copied().unwrap_or(1);
        let mut operands = Vec::with_capacity(N);
        for x in inputs {
            operands.push(rows_at(x, &shape)?);
        }
        let weight = weight.map(|w| rows_at(w, &shape)).transpose()?;
        let count: usize = shape.iter().product();
        let mut outputs: [Vec<T>; M] = std::array::from_fn(|_| Vec::with_capacity(count));
        if count > 0 {
            // Asking for the team takes a lock: only a pass that two threads could share does.
            let threads = if count >= 2 * MIN_FUSED_BLOCK {
                parallel::num_threads()
            } else {
                1
            };
            let block_len = block_len(count, row_len, threads);
            // The weight of every element when there is none (on the stack for short rows).
            let ones: SmallVec<[T; 64]> = smallvec::smallvec![
                T::one();
                if weight.is_none() { row_len.min(block_len) } else { 0 }
            ];
            // Writes elements `start..start + block.len()` of every result, a row segment at a
            // time.
            let fill = |block: &mut [&mut [MaybeUninit<T>]; M], start: usize| {
                let len = block.first().map_or(0, |b| b.len());
                let mut done = 0;
                while done < len {
                    let (row, column) = ((start + done) / row_len, (start + done) % row_len);
                    let segment = (row_len - column).min(len - done);
                    let columns = column..column + segment;
                    let xs: [&[T]; N] = std::array::from_fn(|j| {
                        &row_of(&operands[j], row, row_len)[columns.clone()]
                    });
                    let w = match &weight {
                        Some(w) => &row_of(w, row, row_len)[columns],
                        None => &ones[..segment],
                    };
                    let dst = block.each_mut().map(|d| &mut d[done..done + segment]);
                    simd::elements(dst, xs, w, &f);
                    done += segment;
                }
            };
            let mut pieces = outputs
                .each_mut()
                .map(|v| v.spare_capacity_mut()[..count].chunks_mut(block_len));
            let mut blocks = Vec::with_capacity(count.div_ceil(block_len));
            loop {
                let next = pieces.each_mut().map(Iterator::next);
                if M == 0 || next.iter().any(Option::is_none) {
                    break;
                }
                blocks.push(next.map(|piece| piece.expect("checked just above")));
            }
            if blocks.len() > 1 {
                parallel::for_each_chunk_mut(&mut blocks, 1, |b, block| {
                    fill(&mut block[0], b * block_len)
                });
            } else {
                for (b, block) in blocks.iter_mut().enumerate() {
                    fill(block, b * block_len);
                }
            }
            drop(blocks);
            for output in &mut outputs {
                // SAFETY: the blocks partition the first `count` slots of every output, and
                // `fill` wrote every slot of every block: its segments run back to back from
                // the block's start until they cover its length, and `simd::elements` writes
                // each of its `M` destinations at every index of the segment (a panic in `f`
                // unwinds before this line, leaving the outputs empty).
                unsafe { output.set_len(count) };
            }
        }
        Ok(outputs.map(|data| Tensor::from_contiguous(data, &shape)))
    }
}

/// The shape `inputs` and `weight` broadcast to; an error naming every shape when their sizes
/// disagree.
fn common_shape<T: Element>(
    op: &'static str,
    inputs: &[&Tensor<T>],
    weight: Option<&Tensor<T>>,
) -> Result<Shape> {
    let operands_in = || inputs.iter().copied().chain(weight);
    match operands_in().next() {
        Some(first) if operands_in().all(|x| x.shape() == first.shape()) => {
            Ok(Shape::from_slice(first.shape()))
        }
        _ => {
            let mut shape = Shape::new();
            for x in operands_in() {
                shape = broadcast_sizes(op, &shape, x.shape()).map_err(|_| {
                    let mut named: Vec<String> =
                        inputs.iter().map(|x| shape_str(x.shape())).collect();
                    if let Some(w) = weight {
                        named.push(format!("weight {}", shape_str(w.shape())));
                    }
                    let named = named.join(", ");
                    TensorError::new(
                        op,
                        format!("the shapes {named} cannot be broadcast together"),
                    )
                })?;
            }
            // Sizes that agree can still broadcast to more elements than exist.
            element_count(op, &shape)?;
            Ok(shape)
        }
    }
}

/// `x` as a view of `shape` whose rows are contiguous: itself when it is one, else a broadcast
/// view, copied when its rows are not contiguous (a transposed matrix, a scalar broadcast along
/// the rows).
fn rows_at<'a, T: Element>(x: &'a Tensor<T>, shape: &[usize]) -> Result<Cow<'a, Tensor<T>>> {
    let rows_contiguous = |x: &Tensor<T>| {
        shape
            .last()
            .is_none_or(|&len| len <= 1 || x.strides().last() == Some(&1))
    };
    if x.shape() == shape && rows_contiguous(x) {
        return Ok(Cow::Borrowed(x));
    }
    let view = x.try_broadcast_to(shape)?;
    Ok(Cow::Owned(if rows_contiguous(&view) {
        view
    } else {
        view.contiguous()
    }))
}

/// Row `row` of `x` (its elements with every index but the last fixed), whose last dimension
/// is contiguous or of size 1.
fn row_of<T: Element>(x: &Tensor<T>, row: usize, row_len: usize) -> &[T] {
    let start = row_offset(x, row);
    &x.storage[start..start + row_len]
}

/// Where row `row` of `x` starts in storage.
fn row_offset<T: Element>(x: &Tensor<T>, mut row: usize) -> usize {
    let (shape, strides) = (x.shape(), x.strides());
    let leading = shape.len().saturating_sub(1);
    let mut offset = x.layout().offset();
    for d in (0..leading).rev() {
        offset += (row % shape[d]) * strides[d];
        row /= shape[d];
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks of every pass size around the thresholds, for short, odd and long rows, teams of
    /// one thread to more threads than rows: no empty block; one block per sharing thread
    /// (never more blocks than threads) while a pass fits in a `CHUNK` each, every block but
    /// the last at least `MIN_FUSED_BLOCK`; whole rows of at most `CHUNK` above that.
    #[test]
    fn fused_passes_are_cut_into_one_block_per_thread_or_into_whole_rows() {
        let counts = [
            1,
            2 * MIN_FUSED_BLOCK - 1,
            2 * MIN_FUSED_BLOCK,
            2 * MIN_FUSED_BLOCK + 1,
            3300,
            1 << 15,
            (1 << 15) + 7,
            100_000,
            1 << 17,
        ];
        for count in counts {
            for row_len in [1, 7, 100, 128, 1100, 3001, count] {
                for threads in [1, 2, 3, 8, 64] {
                    let len = block_len(count, row_len, threads);
                    let blocks = count.div_ceil(len);
                    let case = format!("{count} elements, rows of {row_len}, {threads} threads");
                    assert!(len >= 1, "{case}: empty blocks");
                    let sharing = threads.min(count / MIN_FUSED_BLOCK).max(1);
                    if count <= sharing * CHUNK {
                        assert_eq!(blocks, sharing, "{case}: one block per thread");
                        assert!(
                            blocks == 1 || len >= MIN_FUSED_BLOCK,
                            "{case}: blocks of {len}"
                        );
                    } else {
                        assert!(len <= CHUNK, "{case}: blocks of {len}");
                        if row_len <= CHUNK {
                            assert_eq!(len % row_len, 0, "{case}: blocks of {len} cut rows");
                        }
                    }
                }
            }
        }
        // The boundary: 2¹¹ elements are shared by two threads, one fewer is not.
        assert_eq!(block_len(2 * MIN_FUSED_BLOCK, 128, 2), MIN_FUSED_BLOCK);
        assert_eq!(
            block_len(2 * MIN_FUSED_BLOCK - 1, 128, 2),
            2 * MIN_FUSED_BLOCK - 1
        );
        // Three rows of 1100 on two threads: halves, not a row and two rows.
        assert_eq!(block_len(3300, 1100, 2), 1650);
    }
}
