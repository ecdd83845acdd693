//! Copying a column-major matrix into row-major order.
//!
//! A transposed view (a column-major GEMM result, `w.t()`) read in row-major order touches one
//! element per cache line. Kernels that walk their output row by row therefore first copy such
//! an operand with [`transpose_into`], which moves it in square tiles: for `f32`, sixteen
//! 16-wide loads, a register transpose and sixteen stores per tile on AVX-512, eight 8-wide
//! ones on AVX2.

use std::borrow::Cow;
use std::mem::MaybeUninit;

use crate::element::Element;
use crate::ops::elementwise::PARALLEL_THRESHOLD;
use crate::parallel;
use crate::tensor::Tensor;

/// A column-major `rows × cols` matrix inside a storage: element `(i, j)` is
/// `storage[offset + i + j·column_stride]`.
#[derive(Clone, Copy)]
pub(crate) struct ColumnMajor<'a, T> {
    pub storage: &'a [T],
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub column_stride: usize,
}

impl<'a, T: Element> ColumnMajor<'a, T> {
    /// `tensor` as a column-major matrix, if it is one: 2-D with contiguous columns.
    pub(crate) fn of(tensor: &'a Tensor<T>) -> Option<Self> {
        match (tensor.shape(), tensor.strides()) {
            (&[rows, cols], &[1, column_stride]) if column_stride >= rows => Some(Self {
                storage: &tensor.storage,
                offset: tensor.layout.offset(),
                rows,
                cols,
                column_stride,
            }),
            _ => None,
        }
    }

    /// `tensor` as a transposed matrix: column-major with both dimensions above 1. Only then
    /// does a row-major copy by the tiled transpose pay; a single row or column is a strided
    /// vector, which the elementwise kernels walk as well without one.
    pub(crate) fn transposed(tensor: &'a Tensor<T>) -> Option<Self> {
        Self::of(tensor).filter(|matrix| matrix.rows > 1 && matrix.cols > 1)
    }

    /// The elements in row-major order.
    pub(crate) fn to_row_major(self) -> Vec<T> {
        let len = self.rows * self.cols;
        let mut out = Vec::with_capacity(len);
        transpose_into(self, &mut out.spare_capacity_mut()[..len]);
        // SAFETY: `transpose_into` wrote all rows·cols slots (it writes every (i, j) once).
        unsafe { out.set_len(len) };
        out
    }
}

impl<'a, T> ColumnMajor<'a, T> {
    /// Rows `start..start + count` of the matrix.
    fn rows(self, start: usize, count: usize) -> Self {
        Self {
            offset: self.offset + start,
            rows: count,
            ..self
        }
    }

    /// The same matrix over another storage (the same elements seen as their concrete type).
    fn over<U>(self, storage: &[U]) -> ColumnMajor<'_, U> {
        ColumnMajor {
            storage,
            offset: self.offset,
            rows: self.rows,
            cols: self.cols,
            column_stride: self.column_stride,
        }
    }

    /// The storage slice holding column `j`'s rows `rows`.
    fn column(&self, j: usize, rows: std::ops::Range<usize>) -> &'a [T] {
        &self.storage[self.offset + j * self.column_stride..][rows]
    }
}

/// Writes `matrix` into `dst` in row-major order (`dst[i·cols + j]`). Large matrices are split
/// into row strips shared between threads.
///
/// Panics when `dst` does not hold exactly `rows·cols` slots or the matrix does not fit in its
/// storage.
fn transpose_into<T: Element>(matrix: ColumnMajor<'_, T>, dst: &mut [MaybeUninit<T>]) {
    let (rows, cols) = (matrix.rows, matrix.cols);
    if rows * cols >= PARALLEL_THRESHOLD && rows >= 32 {
        assert_eq!(dst.len(), rows * cols, "transpose: wrong destination size");
        // Strips of whole 16-row tiles, about one parallel chunk (half the threshold) each,
        // shared between the threads: row strips of the output are contiguous, so they write
        // disjoint slices.
        let strip = (PARALLEL_THRESHOLD / 2 / cols).max(1).next_multiple_of(16);
        parallel::for_each_chunk_mut(dst, strip * cols, |index, strip_dst| {
            let strip_rows = strip_dst.len() / cols;
            transpose_strip(matrix.rows(index * strip, strip_rows), strip_dst);
        });
    } else {
        transpose_strip(matrix, dst);
    }
}

/// [`transpose_into`] on the calling thread, with the same checks.
fn transpose_strip<T: Element>(matrix: ColumnMajor<'_, T>, dst: &mut [MaybeUninit<T>]) {
    let ColumnMajor {
        storage,
        offset,
        rows,
        cols,
        column_stride,
    } = matrix;
    assert_eq!(dst.len(), rows * cols, "transpose: wrong destination size");
    if rows == 0 || cols == 0 {
        return;
    }
    // Checked arithmetic: this bound is what keeps the register kernels' unchecked loads inside
    // the storage, so it must not wrap.
    let end = (cols - 1)
        .checked_mul(column_stride)
        .and_then(|last_column| last_column.checked_add(offset))
        .and_then(|start| start.checked_add(rows));
    assert!(
        column_stride >= rows && end.is_some_and(|end| end <= storage.len()),
        "transpose: the matrix does not fit in its storage"
    );
    // The register kernels exist for f32 only. Picking them by `TypeId` keeps a kernel-specific
    // hook out of the public `Element` trait.
    #[cfg(target_arch = "x86_64")]
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() {
        // SAFETY: `T` is `f32` (same `TypeId`), so both slices have exactly the layout of the
        // `f32` slices they are cast to.
        let (storage, dst) = unsafe {
            (
                &*(storage as *const [T] as *const [f32]),
                &mut *(dst as *mut [MaybeUninit<T>] as *mut [MaybeUninit<f32>]),
            )
        };
        // SAFETY: the bounds were asserted above.
        if unsafe { x86::transpose_f32(matrix.over(storage), dst) } {
            return;
        }
    }
    transpose_tiled(matrix, dst, 0, 0);
}

/// The portable tiled copy, for the elements with row `≥ from_row` or column `≥ from_col`
/// (the rest is the register kernel's, when one runs).
fn transpose_tiled<T: Copy>(
    matrix: ColumnMajor<'_, T>,
    dst: &mut [MaybeUninit<T>],
    from_row: usize,
    from_col: usize,
) {
    const TILE: usize = 8;
    let (rows, cols) = (matrix.rows, matrix.cols);
    for row_start in (0..rows).step_by(TILE) {
        let row_end = (row_start + TILE).min(rows);
        for col_start in (0..cols).step_by(TILE) {
            let col_end = (col_start + TILE).min(cols);
            if row_end <= from_row && col_end <= from_col {
                continue;
            }
            for j in col_start..col_end {
                let column = matrix.column(j, row_start..row_end);
                for (i, &value) in (row_start..row_end).zip(column) {
                    if i >= from_row || j >= from_col {
                        dst[i * cols + j].write(value);
                    }
                }
            }
        }
    }
}

/// `tensor` itself, or a row-major copy of it when it is a transposed matrix (2-D, columns
/// contiguous, neither dimension 1). Elementwise kernels call this on each operand before
/// walking them in the row-major order of their output: the gates sum `x·Wᵢₕᵀ + h·Wₕₕᵀ` of a
/// recurrent cell, whose second term is a column-major GEMM result, took 23 µs at [32, 512] read
/// element by element and 8 µs as copy + contiguous add.
pub(crate) fn row_major_if_transposed<T: Element>(tensor: &Tensor<T>) -> Cow<'_, Tensor<T>> {
    match ColumnMajor::transposed(tensor) {
        Some(matrix) => Cow::Owned(Tensor::from_contiguous(
            matrix.to_row_major(),
            tensor.shape(),
        )),
        None => Cow::Borrowed(tensor),
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    use super::ColumnMajor;

    /// A register transpose of one `n × n` tile: column `k` is the `n` floats at
    /// `src + k·src_stride`, and becomes the row at `dst + k·dst_stride`. Paired with its `n`.
    pub(super) type Tile = (unsafe fn(*const f32, usize, *mut f32, usize), usize);

    /// The tile kernels this CPU can run, widest first. (No allocation: this runs on every
    /// copy, once per recurrent step.)
    pub(super) fn tiles() -> impl Iterator<Item = Tile> {
        let kernels: [(bool, Tile); 2] = [
            (is_x86_feature_detected!("avx512f"), (tile_16x16, 16)),
            (is_x86_feature_detected!("avx2"), (tile_8x8, 8)),
        ];
        kernels
            .into_iter()
            .filter_map(|(available, tile)| available.then_some(tile))
    }

    /// [`super::transpose_strip`] for `f32` with the widest tile kernel this CPU has (16 × 16
    /// on AVX-512, 8 × 8 on AVX2). False, having done nothing, on a CPU with neither.
    ///
    /// # Safety
    /// `dst` has `rows·cols` slots and the matrix lies inside its storage.
    pub(super) unsafe fn transpose_f32(
        matrix: ColumnMajor<'_, f32>,
        dst: &mut [MaybeUninit<f32>],
    ) -> bool {
        let Some(tile) = tiles().next() else {
            return false;
        };
        // SAFETY: the caller's contract; `tile` is one this CPU can run.
        unsafe { transpose_by_tiles(tile, matrix, dst) };
        true
    }

    /// Whole tiles by `tile`, the edges by the portable loop.
    ///
    /// # Safety
    /// As [`transpose_f32`], and the CPU can run `tile` (it came from [`tiles`]).
    pub(super) unsafe fn transpose_by_tiles(
        (tile, size): Tile,
        matrix: ColumnMajor<'_, f32>,
        dst: &mut [MaybeUninit<f32>],
    ) {
        let (rows, cols, stride) = (matrix.rows, matrix.cols, matrix.column_stride);
        let (full_rows, full_cols) = (rows / size * size, cols / size * size);
        let (storage, out) = (matrix.storage.as_ptr(), dst.as_mut_ptr().cast::<f32>());
        for col in (0..full_cols).step_by(size) {
            for row in (0..full_rows).step_by(size) {
                // SAFETY: row + size ≤ rows and col + size ≤ cols, so the tile's source columns
                // lie inside the matrix, which lies inside its storage (the caller's contract;
                // the pointer is derived from the whole storage, so it may reach all of them),
                // and its destination rows inside `dst`. The CPU can run `tile` (the caller's
                // contract).
                unsafe {
                    tile(
                        storage.add(matrix.offset + col * stride + row),
                        stride,
                        out.add(row * cols + col),
                        cols,
                    )
                };
            }
        }
        super::transpose_tiled(matrix, dst, full_rows, full_cols);
    }

    /// A [`Tile`] of 16 × 16.
    ///
    /// # Safety
    /// The CPU has AVX-512F; the 16 source columns and 16 destination rows are in bounds.
    #[target_feature(enable = "avx512f")]
    unsafe fn tile_16x16(src: *const f32, src_stride: usize, dst: *mut f32, dst_stride: usize) {
        // SAFETY: the caller guarantees the 16 loads and 16 stores are in bounds.
        unsafe {
            let c: [__m512; 16] = std::array::from_fn(|k| _mm512_loadu_ps(src.add(k * src_stride)));
            // Interleave pairs of columns, then pairs of pairs (as 64-bit lanes), then 128-bit
            // quarters twice: the standard four-stage 16 × 16 register transpose.
            let pairs: [__m512; 16] = std::array::from_fn(|k| {
                let (a, b) = (c[k & !1], c[k | 1]);
                if k % 2 == 0 {
                    _mm512_unpacklo_ps(a, b)
                } else {
                    _mm512_unpackhi_ps(a, b)
                }
            });
            let quads: [__m512; 16] = std::array::from_fn(|k| {
                let base = k & !3;
                let (a, b) = (
                    _mm512_castps_pd(pairs[base + (k & 2) / 2]),
                    _mm512_castps_pd(pairs[base + 2 + (k & 2) / 2]),
                );
                _mm512_castpd_ps(if k % 2 == 0 {
                    _mm512_unpacklo_pd(a, b)
                } else {
                    _mm512_unpackhi_pd(a, b)
                })
            });
            let halves: [__m512; 16] = std::array::from_fn(|k| {
                let (base, lane) = (k & !7, k & 3);
                let (a, b) = (quads[base + lane], quads[base + 4 + lane]);
                if k & 4 == 0 {
                    _mm512_shuffle_f32x4::<0x88>(a, b)
                } else {
                    _mm512_shuffle_f32x4::<0xdd>(a, b)
                }
            });
            for k in 0..8 {
                let (a, b) = (halves[k], halves[8 + k]);
                _mm512_storeu_ps(dst.add(k * dst_stride), _mm512_shuffle_f32x4::<0x88>(a, b));
                _mm512_storeu_ps(
                    dst.add((k + 8) * dst_stride),
                    _mm512_shuffle_f32x4::<0xdd>(a, b),
                );
            }
        }
    }

    /// A [`Tile`] of 8 × 8.
    ///
    /// # Safety
    /// The CPU has AVX2; the 8 source columns and 8 destination rows are in bounds.
    #[target_feature(enable = "avx2")]
    unsafe fn tile_8x8(src: *const f32, src_stride: usize, dst: *mut f32, dst_stride: usize) {
        // SAFETY: the caller guarantees the 8 loads and 8 stores are in bounds.
        unsafe {
            let c: [__m256; 8] = std::array::from_fn(|k| _mm256_loadu_ps(src.add(k * src_stride)));
            // Interleave pairs of columns, then pairs of pairs (two floats at a time), then swap
            // 128-bit halves: the three-stage 8 × 8 register transpose.
            let pairs: [__m256; 8] = std::array::from_fn(|k| {
                let (a, b) = (c[k & !1], c[k | 1]);
                if k % 2 == 0 {
                    _mm256_unpacklo_ps(a, b)
                } else {
                    _mm256_unpackhi_ps(a, b)
                }
            });
            let quads: [__m256; 8] = std::array::from_fn(|k| {
                let base = k & !3;
                let (a, b) = (pairs[base + (k & 2) / 2], pairs[base + 2 + (k & 2) / 2]);
                if k % 2 == 0 {
                    _mm256_shuffle_ps::<0x44>(a, b)
                } else {
                    _mm256_shuffle_ps::<0xee>(a, b)
                }
            });
            for k in 0..4 {
                let (a, b) = (quads[k], quads[4 + k]);
                _mm256_storeu_ps(
                    dst.add(k * dst_stride),
                    _mm256_permute2f128_ps::<0x20>(a, b),
                );
                _mm256_storeu_ps(
                    dst.add((k + 4) * dst_stride),
                    _mm256_permute2f128_ps::<0x31>(a, b),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every register kernel this CPU has (AVX-512, AVX2), and the dispatching entry point,
    /// agree with the portable loop element for element, for sizes around whole tiles, with
    /// padding between columns and an offset.
    #[test]
    fn the_register_tiles_agree_with_the_portable_loop() {
        for rows in [1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48] {
            for cols in [1, 7, 8, 9, 15, 16, 17, 40] {
                let column_stride = rows + 3;
                let storage: Vec<f32> = (0..5 + cols * column_stride).map(|x| x as f32).collect();
                let matrix = ColumnMajor {
                    storage: &storage,
                    offset: 5,
                    rows,
                    cols,
                    column_stride,
                };
                let want = |i: usize, j: usize| storage[5 + i + j * column_stride];
                let check = |got: &[MaybeUninit<f32>], by: &str| {
                    for i in 0..rows {
                        for j in 0..cols {
                            // SAFETY: every buffer was initialized (with NaN) before the copy.
                            let value = unsafe { got[i * cols + j].assume_init() };
                            assert_eq!(value, want(i, j), "{by}, [{rows}, {cols}] ({i}, {j})");
                        }
                    }
                };
                let fresh = || vec![MaybeUninit::new(f32::NAN); rows * cols];
                let mut plain = fresh();
                transpose_tiled(matrix, &mut plain, 0, 0);
                check(&plain, "portable loop");
                let mut dispatched = fresh();
                transpose_into(matrix, &mut dispatched);
                check(&dispatched, "transpose_into");
                #[cfg(target_arch = "x86_64")]
                for tile in x86::tiles() {
                    let mut fast = fresh();
                    // SAFETY: `fast` has rows·cols slots, the matrix lies inside `storage`, and
                    // `tile` is one this CPU can run.
                    unsafe { x86::transpose_by_tiles(tile, matrix, &mut fast) };
                    check(&fast, &format!("{0} × {0} tiles", tile.1));
                }
            }
        }
    }
}
