//! Transposed matrices (columns contiguous) as operands: copied row-major by the tiled transpose
//! (16 × 16 register tiles for `f32` on AVX-512, 8 × 8 on AVX2, a portable loop for the edges
//! and for `f64`) before elementwise kernels, in-place updates and `cat` read them; a binary
//! op whose other operand is row-major and of the same shape updates that copy in place as its
//! result. Sizes reach past several whole tiles so both the tiles and the edges are exercised.

mod common;

use common::{Dense, config, randn};
use proptest::prelude::*;
use tapeloop_tensor::{Element, Tensor};

/// `values` ([rows, cols]) as a transposed view: stored as [cols, pad_before + rows + pad_after]
/// with junk in the padding, narrowed, then transposed (strides [1, rows + padding]).
fn transposed_view<T: Element>(values: &Dense, pad_before: usize, pad_after: usize) -> Tensor<T> {
    let (rows, cols) = (values.shape[0], values.shape[1]);
    let stored = Dense::from_fn(&[cols, pad_before + rows + pad_after], |index| {
        let (j, p) = (index[0], index[1]);
        if p < pad_before || p >= pad_before + rows {
            1.0e6 + (j * 1000 + p) as f64 // junk that must never be read
        } else {
            values.at(&[p - pad_before, j])
        }
    });
    let view = stored
        .tensor::<T>()
        .narrow(1, pad_before, rows)
        .transpose(0, 1);
    assert_eq!(view.strides(), &[1, pad_before + rows + pad_after]);
    view
}

fn as_f64<T: Element>(t: &Tensor<T>) -> Vec<f64> {
    t.to_vec().iter().map(|x| x.to_f64_lossy()).collect()
}

/// The reference values rounded through `T`, so that `T` arithmetic on them is exact to compare.
fn rounded<T: Element>(values: &Dense) -> Vec<f64> {
    as_f64(&values.tensor::<T>())
}

fn check_transposed_operands<T: Element>(rows: usize, cols: usize, pad: (usize, usize), seed: u64) {
    let values = randn(&[rows, cols], seed);
    let other = randn(&[rows, cols], seed + 1);
    let view = transposed_view::<T>(&values, pad.0, pad.1);
    let want = rounded::<T>(&values);
    let other_t = other.tensor::<T>();
    let other_v = as_f64(&other_t);

    assert_eq!(
        as_f64(&view),
        want,
        "to_vec of a [{rows}, {cols}] transposed view"
    );
    assert_eq!(as_f64(&view.contiguous()), want, "contiguous()");

    let sum = &other_t + &view;
    let sum_want: Vec<f64> = other_v
        .iter()
        .zip(&want)
        .map(|(a, b)| (T::from_f64_lossy(*a) + T::from_f64_lossy(*b)).to_f64_lossy())
        .collect();
    assert_eq!(as_f64(&sum), sum_want, "row-major + transposed");
    let sum_swapped = &view + &other_t;
    assert_eq!(as_f64(&sum_swapped), sum_want, "transposed + row-major");

    let tanh_want: Vec<f64> = want
        .iter()
        .map(|x| as_f64(&Tensor::<T>::scalar(T::from_f64_lossy(*x)).tanh())[0])
        .collect();
    assert_eq!(as_f64(&view.tanh()), tanh_want, "tanh of a transposed view");

    let mut accumulated = other_t.clone();
    accumulated.add_assign(&view);
    assert_eq!(
        as_f64(&accumulated),
        sum_want,
        "add_assign of a transposed view"
    );

    let mut wide = Tensor::<T>::zeros(&[rows, cols + 3]);
    wide.narrow_add_assign(1, 2, &view);
    for i in 0..rows {
        for j in 0..cols + 3 {
            let expected = if (2..cols + 2).contains(&j) {
                want[i * cols + j - 2]
            } else {
                0.0
            };
            assert_eq!(
                wide.get(&[i, j]).to_f64_lossy(),
                expected,
                "narrow_add_assign ({i}, {j})"
            );
        }
    }

    let difference = &other_t - &view;
    let difference_want: Vec<f64> = other_v
        .iter()
        .zip(&want)
        .map(|(a, b)| (T::from_f64_lossy(*a) - T::from_f64_lossy(*b)).to_f64_lossy())
        .collect();
    assert_eq!(
        as_f64(&difference),
        difference_want,
        "row-major − transposed"
    );
    let difference_swapped: Vec<f64> = other_v
        .iter()
        .zip(&want)
        .map(|(a, b)| (T::from_f64_lossy(*b) - T::from_f64_lossy(*a)).to_f64_lossy())
        .collect();
    assert_eq!(
        as_f64(&(&view - &other_t)),
        difference_swapped,
        "transposed − row-major"
    );
    // A row-major operand that is a contiguous view one row into its storage: the in-place
    // path must read it from its offset, not from the storage's start, in either order.
    let junk_row = Tensor::<T>::full(&[1, cols], T::from_f64_lossy(1.0e6));
    let other_at_offset = Tensor::cat(&[&junk_row, &other_t, &junk_row], 0).narrow(0, 1, rows);
    assert!(other_at_offset.as_slice().is_some());
    assert_eq!(
        as_f64(&(&view - &other_at_offset)),
        difference_swapped,
        "transposed − row-major view at an offset"
    );
    assert_eq!(
        as_f64(&(&other_at_offset - &view)),
        difference_want,
        "row-major view at an offset − transposed"
    );

    // where(mask, view, other): the transposed operand in the middle of a ternary kernel.
    let mask = Tensor::<T>::from_vec(
        (0..rows * cols)
            .map(|n| T::from_f64_lossy((n % 3 == 0) as u8 as f64))
            .collect(),
        &[rows, cols],
    );
    let chosen_want: Vec<f64> = (0..rows * cols)
        .map(|n| if n % 3 == 0 { want[n] } else { other_v[n] })
        .collect();
    assert_eq!(
        as_f64(&mask.where_cond(&view, &other_t)),
        chosen_want,
        "where"
    );

    // A batch of row-major matrices plus one transposed matrix broadcast over it.
    let batch = Tensor::<T>::from_vec(
        other_v
            .iter()
            .chain(&other_v)
            .map(|x| T::from_f64_lossy(*x))
            .collect(),
        &[2, rows, cols],
    );
    let mut batch_want = sum_want.clone();
    batch_want.extend(&sum_want);
    assert_eq!(
        as_f64(&(&batch + &view)),
        batch_want,
        "[2, r, c] + transposed [r, c]"
    );

    let stacked = Tensor::cat(&[&other_t, &view, &other_t], 0);
    let mut stacked_want = other_v.clone();
    stacked_want.extend(&want);
    stacked_want.extend(&other_v);
    assert_eq!(as_f64(&stacked), stacked_want, "cat along dimension 0");
}

#[test]
fn whole_tiles_and_edges_of_f32_and_f64() {
    // (80, 1000) and (81, 1000) are above the parallel threshold: 16-row strips shared between
    // threads, the last strip a single row in the second. (33, 17000): rows wider than a parallel
    // chunk still make strips of one 16-row tile.
    for &(rows, cols) in &[
        (16, 16),
        (32, 512),
        (17, 33),
        (64, 48),
        (2, 40),
        (40, 2),
        (5, 3),
        (80, 1000),
        (81, 1000),
        (33, 17000),
    ] {
        check_transposed_operands::<f32>(rows, cols, (0, 0), 1);
        check_transposed_operands::<f32>(rows, cols, (3, 5), 2);
        check_transposed_operands::<f64>(rows, cols, (1, 2), 3);
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn transposed_operands_match_their_values(
        rows in 1usize..70,
        cols in 1usize..70,
        pad_before in 0usize..3,
        pad_after in 0usize..20,
        seed in 0u64..1000,
    ) {
        check_transposed_operands::<f32>(rows, cols, (pad_before, pad_after), seed);
        check_transposed_operands::<f64>(rows, cols, (pad_before, pad_after), seed);
    }
}

#[test]
fn products_with_an_empty_inner_dimension_are_zero_in_both_output_layouts() {
    let a = Tensor::<f32>::ones(&[3, 0]);
    // A column-major right operand picks the column-major output path...
    let b_columns = Tensor::<f32>::ones(&[5, 0]).t();
    let product = a.matmul(&b_columns);
    assert_eq!(product.to_vec(), vec![0.0; 15]);
    assert_eq!(product.strides(), &[1, 3]);
    // ...a row-major one the batched row-major path.
    let b_rows = Tensor::<f32>::ones(&[0, 5]);
    let product = a.matmul(&b_rows);
    assert_eq!(product.to_vec(), vec![0.0; 15]);
    assert_eq!(product.strides(), &[5, 1]);
}

#[test]
fn in_place_updates_with_transposed_operands_keep_their_errors_and_layouts() {
    let values = randn(&[20, 18], 7);
    let view = transposed_view::<f32>(&values, 1, 2);
    // A shape that does not fit is refused before any copy, with the usual message.
    let mut small = Tensor::<f32>::zeros(&[3, 4]);
    let err = small
        .try_zip_assign("add_assign", &view, |x, y| x + y)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "add_assign: cannot apply add_assign in place: [20, 18] does not broadcast to [3, 4]"
    );
    // A transposed destination is written through its own strides.
    let mut target = Tensor::<f32>::zeros(&[18, 20]).t();
    target.add_assign(&view);
    assert_eq!(target.strides(), &[1, 20]);
    assert_eq!(as_f64(&target), rounded::<f32>(&values));
}
