//! matmul against a naive triple loop in f64: 2-D, 1-D operands, transposed, narrowed and
//! broadcast operands, batched with broadcast leading dimensions, and zero-size dimensions.

mod common;

use common::*;
use proptest::prelude::*;
use tapeloop_tensor::{Element, Tensor, seeded_rng};

/// `torch.matmul` by its definition: vectors become matrices, leading dimensions broadcast, and
/// every output element is a dot product summed in f64. Returns the result and, per element,
/// the sum of |a·b| terms (to scale the tolerance).
fn reference_matmul(a: &Dense, b: &Dense) -> (Dense, Dense) {
    let a_vec = a.shape.len() == 1;
    let b_vec = b.shape.len() == 1;
    let a_shape: Vec<usize> = if a_vec {
        vec![1, a.shape[0]]
    } else {
        a.shape.clone()
    };
    let b_shape: Vec<usize> = if b_vec {
        vec![b.shape[0], 1]
    } else {
        b.shape.clone()
    };
    let (m, k) = (a_shape[a_shape.len() - 2], a_shape[a_shape.len() - 1]);
    let n = b_shape[b_shape.len() - 1];
    let a_batch = &a_shape[..a_shape.len() - 2];
    let b_batch = &b_shape[..b_shape.len() - 2];
    let batch = broadcast_rule(a_batch, b_batch).expect("batch dimensions broadcast");
    let a_mat = Dense {
        shape: a_shape.clone(),
        data: a.data.clone(),
    };
    let b_mat = Dense {
        shape: b_shape.clone(),
        data: b.data.clone(),
    };
    let mut out_shape = batch.clone();
    out_shape.extend([m, n]);
    let mut value = Dense {
        shape: out_shape.clone(),
        data: vec![0.0; out_shape.iter().product()],
    };
    let mut scale = value.clone();
    for index in indices(&out_shape) {
        let (bi, (i, j)) = (
            &index[..batch.len()],
            (index[batch.len()], index[batch.len() + 1]),
        );
        let pick = |own: &[usize], row: usize, col: usize| {
            let lead = bi.len() - own.len();
            let mut at: Vec<usize> = own
                .iter()
                .enumerate()
                .map(|(d, &s)| if s == 1 { 0 } else { bi[lead + d] })
                .collect();
            at.extend([row, col]);
            at
        };
        let (mut sum, mut magnitude) = (0.0, 0.0);
        for p in 0..k {
            let term = a_mat.at(&pick(a_batch, i, p)) * b_mat.at(&pick(b_batch, p, j));
            sum += term;
            magnitude += term.abs();
        }
        let at = flat(&out_shape, &index);
        value.data[at] = sum;
        scale.data[at] = magnitude;
    }
    // Drop the dimensions the vectors were given.
    let mut final_shape = batch;
    if !a_vec {
        final_shape.push(m);
    }
    if !b_vec {
        final_shape.push(n);
    }
    value.shape = final_shape.clone();
    scale.shape = final_shape;
    (value, scale)
}

fn check_matmul<T: Element>(
    a_shape: &[usize],
    b_shape: &[usize],
    seeds: (u64, u64),
    storages: (Storage, Storage),
) {
    let a: Tensor<T> = strided(&randn(a_shape, seeds.0), storages.0);
    let b: Tensor<T> = strided(&randn(b_shape, seeds.1), storages.1);
    let (want, scale) = reference_matmul(&Dense::of(&a), &Dense::of(&b));
    let got = a.matmul(&b);
    let tol = if T::DTYPE == "f32" { 1e-5 } else { 1e-13 };
    assert_eq!(
        got.shape(),
        want.shape.as_slice(),
        "{a_shape:?} x {b_shape:?}"
    );
    for (n, (g, w)) in got.to_vec().iter().zip(&want.data).enumerate() {
        let g = g.to_f64_lossy();
        assert!(
            (g - w).abs() <= tol * (1.0 + scale.data[n]),
            "{a_shape:?} ({:?}) x {b_shape:?} ({:?}): element {n}: got {g}, want {w}",
            storages.0,
            storages.1
        );
    }
    // The same product from contiguous copies (the strided operands went in without copies).
    let from_copies = a.contiguous().matmul(&b.contiguous());
    for (g, c) in got.to_vec().iter().zip(from_copies.to_vec()) {
        assert!(
            (g.to_f64_lossy() - c.to_f64_lossy()).abs()
                <= tol * (1.0 + c.to_f64_lossy().abs()) * 8.0
        );
    }
}

/// Shapes for one product: which form (matrix, vector on either side, batched), the sizes
/// m, k, n in 0..=6 and batch shapes that broadcast against each other.
fn matmul_shapes() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    let size = prop_oneof![1 => Just(0usize), 2 => Just(1usize), 6 => 2usize..=6];
    (0u8..5, size.clone(), size.clone(), size, any::<u64>()).prop_map(|(form, m, k, n, seed)| {
        let mut pick = Picker::new(seed);
        match form {
            0 => (vec![m, k], vec![k, n]),
            1 => (vec![k], vec![k, n]),
            2 => (vec![m, k], vec![k]),
            3 => (vec![k], vec![k]),
            _ => {
                // Batched: each side has 0–2 leading dimensions, each either the common size or 1.
                let batch: Vec<usize> = (0..2).map(|_| pick.below(4)).collect();
                let lead = |pick: &mut Picker| -> Vec<usize> {
                    let drop = pick.below(3);
                    batch[drop.min(2)..]
                        .iter()
                        .map(|&s| if pick.below(3) == 0 { 1 } else { s })
                        .collect()
                };
                let mut a = lead(&mut pick);
                let mut b = lead(&mut pick);
                a.extend([m, k]);
                // Sometimes a vector against a batch.
                match pick.below(4) {
                    0 => (vec![k], {
                        b.extend([k, n]);
                        b
                    }),
                    1 => (a, vec![k]),
                    _ => (a, {
                        b.extend([k, n]);
                        b
                    }),
                }
            }
        }
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn matmul_matches_a_naive_triple_loop_f32(
        (a_shape, b_shape) in matmul_shapes(), seeds in any::<(u64, u64)>(),
        storages in (storage_strategy(), storage_strategy()),
    ) {
        check_matmul::<f32>(&a_shape, &b_shape, seeds, storages);
    }

    #[test]
    fn matmul_matches_a_naive_triple_loop_f64(
        (a_shape, b_shape) in matmul_shapes(), seeds in any::<(u64, u64)>(),
        storages in (storage_strategy(), storage_strategy()),
    ) {
        check_matmul::<f64>(&a_shape, &b_shape, seeds, storages);
    }
}

/// Sizes past the GEMM's blocking and its threading threshold (130×70×257 splits C's columns
/// across threads unevenly, 600×40×33 splits its rows), with transposed and narrowed operands.
#[test]
fn large_strided_products_match_the_reference() {
    for (m, k, n) in [
        (67, 129, 65),
        (130, 70, 257),
        (600, 40, 33),
        (1, 300, 5),
        (300, 1, 7),
    ] {
        for storages in [
            (Storage::Contiguous, Storage::Contiguous),
            (Storage::Permuted(1), Storage::Permuted(2)),
            (Storage::Narrowed(3), Storage::Mixed(4)),
            (Storage::Mixed(5), Storage::Narrowed(6)),
        ] {
            check_matmul::<f32>(&[m, k], &[k, n], (m as u64, n as u64), storages);
            check_matmul::<f64>(&[m, k], &[k, n], (k as u64, m as u64), storages);
        }
    }
    check_matmul::<f32>(
        &[3, 1, 40, 33],
        &[2, 33, 41],
        (7, 8),
        (Storage::Mixed(9), Storage::Permuted(10)),
    );
}

#[test]
fn transposed_operands_go_in_without_copies_and_agree() {
    let a = Tensor::<f64>::arange(0.0, 12.0, 1.0).reshape(&[3, 4]);
    // a · aᵀ computed through a transposed view equals the product with an explicit copy.
    let view = a.matmul(&a.t());
    let copy = a.matmul(&a.t().contiguous());
    assert_eq!(view.to_vec(), copy.to_vec());
    assert_eq!(
        view.to_vec(),
        vec![14.0, 38.0, 62.0, 38.0, 126.0, 214.0, 62.0, 214.0, 366.0]
    );
}

#[test]
fn zero_size_dimensions_give_empty_or_zero_products() {
    let a = Tensor::<f32>::ones(&[3, 0]);
    let b = Tensor::<f32>::ones(&[0, 4]);
    assert_eq!(a.matmul(&b).to_vec(), vec![0.0; 12]); // k = 0: sums of nothing
    assert_eq!(b.matmul(&Tensor::ones(&[4, 2])).shape(), &[0, 2]);
    assert_eq!(
        Tensor::<f32>::ones(&[0, 2, 3])
            .matmul(&Tensor::ones(&[3, 5]))
            .shape(),
        &[0, 2, 5]
    );
    assert_eq!(
        Tensor::<f32>::ones(&[0]).matmul(&Tensor::ones(&[0])).item(),
        0.0
    );
}

#[test]
fn matmul_shape_errors_name_both_shapes() {
    let e = |a: &[usize], b: &[usize]| {
        Tensor::<f32>::zeros(a)
            .try_matmul(&Tensor::zeros(b))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        e(&[3, 4], &[5, 6]),
        "matmul: [3, 4] x [5, 6]: inner dimensions 4 and 5 differ"
    );
    assert_eq!(
        e(&[4], &[5]),
        "matmul: [4] x [5]: inner dimensions 4 and 5 differ"
    );
    assert_eq!(
        e(&[], &[5]),
        "matmul: [] x [5]: both operands need at least one dimension"
    );
    assert_eq!(
        e(&[2], &[]),
        "matmul: [2] x []: both operands need at least one dimension"
    );
    assert_eq!(
        e(&[2, 3, 4], &[5, 4, 6]),
        "matmul: [2, 3, 4] x [5, 4, 6]: batch dimensions do not broadcast"
    );
}

/// `h · Wᵀ` with a wide row-major W: tapeloop computes it column by column and returns a
/// transposed view (see `prefers_column_major_output`). Values, shape and every later use of
/// the result must be those of the plain product.
#[test]
fn a_wide_transposed_weight_gives_the_plain_product() {
    let h = Tensor::<f64>::randn(&[5, 13], &mut seeded_rng(1));
    let w = Tensor::<f64>::randn(&[29, 13], &mut seeded_rng(2));
    let got = h.matmul(&w.t());
    let want = h.matmul(&w.t().contiguous());
    assert_eq!(got.shape(), &[5, 29]);
    assert!(want.is_contiguous());
    for (g, w) in got.to_vec().iter().zip(want.to_vec()) {
        assert!((g - w).abs() < 1e-12, "{g} vs {w}");
    }
    // A contiguous copy (the tiled transpose) and an op on the view agree with the plain one.
    assert_eq!(got.contiguous().to_vec(), got.to_vec());
    let doubled = got.add(&got);
    for (d, w) in doubled.to_vec().iter().zip(want.to_vec()) {
        assert!((d - 2.0 * w).abs() < 1e-12);
    }
}
