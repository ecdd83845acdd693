//! Matrix multiplication with `torch.matmul`'s rules: 1-D operands are vectors, 2-D are
//! matrices, and leading dimensions broadcast as batches. Strided operands (a transposed view,
//! a narrowed block) are handed to the GEMM kernel with their strides: no copy is made.

use smallvec::SmallVec;

use crate::element::Element;
use crate::error::{Result, TensorError, shape_str};
use crate::layout::{Layout, Shape, broadcast_shapes, element_count, for_each_run};
use crate::macros::panicking_forms;
use crate::tensor::Tensor;

/// Strides of a view as the signed row and column strides the kernel takes.
fn matrix_strides(layout: &Layout) -> [isize; 2] {
    let rank = layout.rank();
    [
        layout.strides()[rank - 2] as isize,
        layout.strides()[rank - 1] as isize,
    ]
}

impl<T: Element> Tensor<T> {
    /// Matrix product with broadcasting batch dimensions (like `torch.matmul`).
    pub fn try_matmul(&self, other: &Self) -> Result<Self> {
        let fail = |why: String| {
            TensorError::new(
                "matmul",
                format!(
                    "{} x {}: {}",
                    shape_str(self.shape()),
                    shape_str(other.shape()),
                    why
                ),
            )
        };
        if self.rank() == 0 || other.rank() == 0 {
            return Err(fail("both operands need at least one dimension".into()));
        }
        // Vectors become matrices ([k] → [1, k] on the left, [k, 1] on the right) and the added
        // dimension is removed from the result.
        let a = if self.rank() == 1 {
            self.unsqueeze(0)
        } else {
            self.clone()
        };
        let b = if other.rank() == 1 {
            other.unsqueeze(-1)
        } else {
            other.clone()
        };
        let (m, k) = (a.dim(-2), a.dim(-1));
        let (k2, n) = (b.dim(-2), b.dim(-1));
        if k != k2 {
            return Err(fail(format!("inner dimensions {k} and {k2} differ")));
        }
        let batch = broadcast_shapes(
            "matmul",
            &a.shape()[..a.rank() - 2],
            &b.shape()[..b.rank() - 2],
        )
        .map_err(|_| fail("batch dimensions do not broadcast".into()))?;
        let mut out_shape: Shape = batch.clone();
        out_shape.extend_from_slice(&[m, n]);
        // With k = 0 the operands can be empty however large m and n are; the result is not.
        element_count("matmul", &out_shape).map_err(|_| {
            fail(format!(
                "the result {} has more elements than a usize can count",
                shape_str(&out_shape)
            ))
        })?;
        let mut result = if batch.is_empty() && prefers_column_major_output(&a, &b) {
            gemm_column_major(&a, &b, m, k, n)
        } else {
            let out = gemm_batched(&a, &b, &batch, m, k, n);
            Tensor::from_contiguous(out, &out_shape)
        };
        if other.rank() == 1 {
            result = result.squeeze(-1);
        }
        if self.rank() == 1 {
            result = result.squeeze(if other.rank() == 1 { -1 } else { -2 });
        }
        Ok(result)
    }

    panicking_forms! {
        /// Matrix product with broadcasting batch dimensions; panics when the shapes do not fit.
        ///
        /// ```
        /// use tapeloop_tensor::Tensor;
        /// let a = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
        /// let b = Tensor::<f32>::eye(2);
        /// assert_eq!(a.matmul(&b).to_vec(), a.to_vec());
        /// // Multiplying by a transposed view copies nothing:
        /// assert_eq!(a.matmul(&a.t()).to_vec(), vec![5.0, 11.0, 11.0, 25.0]);
        /// ```
        fn matmul => try_matmul(other: &Self) -> Self;
    }
}

/// True when `a · b` is much faster written column by column: a row-major `a` with few rows
/// times a wide column-major `b` (the recurrent step `h · Wᵀ`, W a row-major `[4H, H]` weight).
/// The `gemm` crate computes a row-major result as `Cᵀ = Bᵀ Aᵀ` and so packs all of `Wᵀ` on
/// every call; a column-major result lets it pack only the small `a`. At 64×512·512×2048
/// (f32, 2 threads) that is about 2.2× faster (722 against 1,582 µs), and a medium LSTM
/// training step (T=100, B=64, H=512) about 15% faster.
fn prefers_column_major_output<T: Element>(a: &Tensor<T>, b: &Tensor<T>) -> bool {
    let (sa, sb) = (matrix_strides(&a.layout), matrix_strides(&b.layout));
    let (m, n) = (a.dim(-2), b.dim(-1));
    let b_column_major = sb[0] == 1 && (sb[1] as usize) >= b.dim(-2) && n > 1;
    let a_row_major = sa[1] == 1;
    b_column_major && a_row_major && m < n
}

/// `a · b` for matrices, computed into column-major storage and returned as its `[m, n]` view.
fn gemm_column_major<T: Element>(
    a: &Tensor<T>,
    b: &Tensor<T>,
    m: usize,
    k: usize,
    n: usize,
) -> Tensor<T> {
    if k == 0 {
        return Tensor::zeros(&[n, m]).t();
    }
    let mut out = Vec::with_capacity(m * n);
    let (sa, sb) = (matrix_strides(&a.layout), matrix_strides(&b.layout));
    // SAFETY: `a` and `b` are matrices whose layouts lie inside their storages (a `Tensor`
    // invariant); `out` has room for exactly m·n elements addressed as column-major (strides
    // [1, m]) and is a fresh buffer, overlapping neither input. With beta zero the kernel writes
    // every element of C and reads none (`Element::gemm`), so all m·n are initialized after it.
    unsafe {
        T::gemm(
            m,
            k,
            n,
            T::one(),
            a.storage.as_ptr().add(a.layout.offset()),
            sa,
            b.storage.as_ptr().add(b.layout.offset()),
            sb,
            T::zero(),
            out.as_mut_ptr(),
            [1, m as isize],
        );
        out.set_len(m * n);
    }
    // Returned as the transposed view it is: copying it back to row-major cost more than it
    // saved (small LSTM step 24 against 15 ms), while the ops that consume it (the bias add
    // of a cell) read any layout and write row-major.
    Tensor::from_contiguous(out, &[n, m]).t()
}

/// Runs one GEMM per batch entry into a fresh contiguous buffer of shape `batch × m × n`.
fn gemm_batched<T: Element>(
    a: &Tensor<T>,
    b: &Tensor<T>,
    batch: &[usize],
    m: usize,
    k: usize,
    n: usize,
) -> Vec<T> {
    let batch_count: usize = batch.iter().product();
    let len = batch_count * m * n;
    if len == 0 || k == 0 {
        return vec![T::zero(); len];
    }
    let mut out = Vec::with_capacity(len);
    let batched_layout = |t: &Tensor<T>| {
        let rank = t.rank();
        let mut shape: SmallVec<[usize; 4]> = batch.into();
        shape.extend_from_slice(&t.shape()[rank - 2..]);
        t.layout
            .broadcast_to("matmul", &shape)
            .expect("batch shape was checked")
    };
    let (la, lb) = (batched_layout(a), batched_layout(b));
    let (sa, sb) = (matrix_strides(&la), matrix_strides(&lb));
    let lead = batch.len();
    let mut offsets = Vec::with_capacity(batch_count);
    for_each_run(
        batch,
        [&la.strides()[..lead], &lb.strides()[..lead]],
        [la.offset(), lb.offset()],
        0,
        batch_count,
        |[oa, ob], len, [ta, tb]| offsets.extend((0..len).map(|i| (oa + i * ta, ob + i * tb))),
    );
    // `set_len` below relies on one GEMM per batch entry.
    assert_eq!(
        offsets.len(),
        batch_count,
        "matmul: one offset pair per batch entry"
    );
    for (entry, (oa, ob)) in out.spare_capacity_mut()[..len]
        .chunks_exact_mut(m * n)
        .zip(offsets)
    {
        // SAFETY: `la` and `lb` are broadcasts of layouts that lie inside their storages
        // (a `Tensor` invariant), so every element `oa + i·sa[0] + j·sa[1]` for i < m, j < k
        // (and likewise for b with k × n) is in bounds. `entry` is a distinct, exclusively
        // borrowed m × n row-major block, so it overlaps neither input; with beta zero the
        // kernel only writes it (`Element::gemm`).
        unsafe {
            T::gemm(
                m,
                k,
                n,
                T::one(),
                a.storage.as_ptr().add(oa),
                sa,
                b.storage.as_ptr().add(ob),
                sb,
                T::zero(),
                entry.as_mut_ptr().cast::<T>(),
                [n as isize, 1],
            );
        }
    }
    // SAFETY: the batch entries partition the first `len` slots, and each GEMM above wrote all
    // m·n elements of its entry.
    unsafe { out.set_len(len) };
    out
}
