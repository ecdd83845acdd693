//! Every elementwise op on strided inputs (transposed, narrowed, broadcast views) equals the
//! same op on `.contiguous()` copies bit for bit, and equals a scalar reference computed element
//! by element with broadcasting done by index arithmetic.

mod common;

use common::*;
use proptest::prelude::*;
use tapeloop_tensor::{Element, Tensor};

type UnaryOp<T> = (&'static str, fn(&Tensor<T>) -> Tensor<T>, fn(T) -> T);
type BinaryOp<T> = (
    &'static str,
    fn(&Tensor<T>, &Tensor<T>) -> Tensor<T>,
    fn(T, T) -> T,
);

fn t<T: Element>(x: f64) -> T {
    T::from_f64_lossy(x)
}

fn mask<T: Element>(b: bool) -> T {
    if b { T::one() } else { T::zero() }
}

/// Every unary op with an independent scalar reference (PyTorch's semantics, NaN included).
fn unary_ops<T: Element>() -> Vec<UnaryOp<T>> {
    vec![
        ("neg", |x| x.neg(), |x| -x),
        ("neg operator", |x| -x, |x| -x),
        ("exp", |x| x.exp(), |x| x.exp()),
        ("log", |x| x.log(), |x| x.ln()),
        ("tanh", |x| x.tanh(), |x| x.tanh()),
        (
            "sigmoid",
            |x| x.sigmoid(),
            |x| T::one() / (T::one() + (-x).exp()),
        ),
        (
            "relu",
            |x| x.relu(),
            |x| if x.is_nan() { x } else { x.max(T::zero()) },
        ),
        ("sqrt", |x| x.sqrt(), |x| x.sqrt()),
        ("abs", |x| x.abs(), |x| x.abs()),
        ("recip", |x| x.recip(), |x| T::one() / x),
        ("square", |x| x.square(), |x| x.powi(2)),
        // PyTorch's sign is (0 < x) - (x < 0), so sign(NaN) = 0 (NumPy would give NaN).
        (
            "sign",
            |x| x.sign(),
            |x| {
                if x.is_nan() || x == T::zero() {
                    T::zero()
                } else {
                    x.signum()
                }
            },
        ),
        ("powf", |x| x.powf(t(1.5)), |x| x.powf(t(1.5))),
        (
            "map",
            |x| x.map(|v| v * t(3.0) - T::one()),
            |x| x * t(3.0) - T::one(),
        ),
        ("add_scalar", |x| x.add_scalar(t(0.25)), |x| x + t(0.25)),
        ("mul_scalar", |x| x.mul_scalar(t(-2.5)), |x| x * t(-2.5)),
        (
            "clamp",
            |x| x.clamp(t(-0.5), t(0.75)),
            |x| {
                if x.is_nan() {
                    x
                } else if x < t(-0.5) {
                    t(-0.5)
                } else if x > t(0.75) {
                    t(0.75)
                } else {
                    x
                }
            },
        ),
        ("+ scalar", |x| x + t::<T>(1.5), |x| x + t(1.5)),
        ("- scalar", |x| x - t::<T>(1.5), |x| x - t(1.5)),
        ("* scalar", |x| x * t::<T>(1.5), |x| x * t(1.5)),
        ("/ scalar", |x| x / t::<T>(1.5), |x| x / t(1.5)),
    ]
}

/// Every binary op with an independent scalar reference.
fn binary_ops<T: Element>() -> Vec<BinaryOp<T>> {
    vec![
        ("add", |a, b| a.add(b), |a, b| a + b),
        ("sub", |a, b| a.sub(b), |a, b| a - b),
        ("mul", |a, b| a.mul(b), |a, b| a * b),
        ("div", |a, b| a.div(b), |a, b| a / b),
        (
            "maximum",
            |a, b| a.maximum(b),
            |a, b| {
                if a.is_nan() || b.is_nan() {
                    T::nan()
                } else if a >= b {
                    a
                } else {
                    b
                }
            },
        ),
        (
            "minimum",
            |a, b| a.minimum(b),
            |a, b| {
                if a.is_nan() || b.is_nan() {
                    T::nan()
                } else if a <= b {
                    a
                } else {
                    b
                }
            },
        ),
        ("pow", |a, b| a.pow(b), |a, b| a.powf(b)),
        ("eq_mask", |a, b| a.eq_mask(b), |a, b| mask(a == b)),
        ("ne_mask", |a, b| a.ne_mask(b), |a, b| mask(a != b)),
        ("lt_mask", |a, b| a.lt_mask(b), |a, b| mask(a < b)),
        ("le_mask", |a, b| a.le_mask(b), |a, b| mask(a <= b)),
        ("gt_mask", |a, b| a.gt_mask(b), |a, b| mask(a > b)),
        ("ge_mask", |a, b| a.ge_mask(b), |a, b| mask(a >= b)),
        (
            "zip_map",
            |a, b| a.try_zip_map(b, |p, q| p * q + p).unwrap(),
            |a, b| a * b + a,
        ),
        ("+ operator", |a, b| a + b, |a, b| a + b),
        ("- operator", |a, b| a - b, |a, b| a - b),
        ("* operator", |a, b| a * b, |a, b| a * b),
        ("/ operator", |a, b| a / b, |a, b| a / b),
        (
            "owned + operator",
            |a, b| a.clone() + b.clone(),
            |a, b| a + b,
        ),
        (
            "owned / operator",
            |a, b| a.clone() / b.clone(),
            |a, b| a / b,
        ),
    ]
}

/// Values for the tests: normal, sometimes rounded to halves so comparisons see ties and `pow`
/// sees integer exponents, sometimes with a NaN, ±0 or ±∞ planted.
fn values(shape: &[usize], seed: u64, flavour: u8) -> Dense {
    let mut d = randn(shape, seed);
    if flavour & 1 == 1 {
        d.data
            .iter_mut()
            .for_each(|x| *x = (*x * 2.0).round() / 2.0);
    }
    if flavour & 2 == 2 && !d.data.is_empty() {
        let specials = [f64::NAN, 0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY];
        let mut pick = Picker::new(seed);
        for _ in 0..2 {
            let at = pick.below(d.data.len());
            d.data[at] = specials[pick.below(specials.len())];
        }
    }
    d
}

fn check_unary<T: Element>(shape: &[usize], storage: Storage, seed: u64, flavour: u8) {
    let x: Tensor<T> = strided(&values(shape, seed, flavour), storage);
    let x_contiguous = x.contiguous();
    assert!(x_contiguous.is_contiguous());
    let reference_input = Dense::of(&x);
    for (name, op, scalar) in unary_ops::<T>() {
        let got = op(&x);
        assert!(
            got.is_contiguous(),
            "{name}: results are fresh row-major tensors"
        );
        assert_identical(&got, &op(&x_contiguous));
        // f32 tanh and sigmoid are a rational approximation (ops/approx.rs), documented to a
        // few ulp: they are held to the exact function in f64 within 1e-6. Everything else
        // must equal the scalar function computed in T exactly.
        let approximate = T::DTYPE == "f32" && matches!(name, "tanh" | "sigmoid");
        let want = Dense::from_fn(shape, |i| {
            let x = reference_input.at(i);
            match (approximate, name) {
                (true, "tanh") => x.tanh(),
                (true, _) => 1.0 / (1.0 + (-x).exp()),
                _ => scalar(t(x)).to_f64_lossy(),
            }
        });
        for (n, (g, w)) in got.to_vec().iter().zip(&want.data).enumerate() {
            let g = g.to_f64_lossy();
            let ok = same(g, *w) || (approximate && (g - w).abs() <= 1e-6);
            assert!(
                ok,
                "{name} on {storage:?}: element {n}: got {g}, want {w} (input {})",
                reference_input.data[n]
            );
        }
    }
}

fn check_binary<T: Element>(
    out_shape: &[usize],
    (a_seed, a_storage): (u64, Storage),
    (b_seed, b_storage): (u64, Storage),
    flavour: u8,
) {
    let a_shape = broadcastable_to(out_shape, a_seed);
    let b_shape = broadcastable_to(out_shape, b_seed.rotate_left(7));
    let a: Tensor<T> = strided(&values(&a_shape, a_seed, flavour), a_storage);
    let b: Tensor<T> = strided(&values(&b_shape, b_seed, flavour), b_storage);
    let (ra, rb) = (Dense::of(&a), Dense::of(&b));
    let shape = broadcast_rule(&a_shape, &b_shape).expect("broadcastable by construction");
    for (name, op, scalar) in binary_ops::<T>() {
        let got = op(&a, &b);
        assert_identical(&got, &op(&a.contiguous(), &b.contiguous()));
        let want = Dense::from_fn(&shape, |i| {
            scalar(t(broadcast_at(&ra, i)), t(broadcast_at(&rb, i))).to_f64_lossy()
        });
        for (n, (g, w)) in got.to_vec().iter().zip(&want.data).enumerate() {
            assert!(
                same(g.to_f64_lossy(), *w),
                "{name} of {a_shape:?} ({a_storage:?}) and {b_shape:?} ({b_storage:?}): element {n}: got {g}, want {w}"
            );
        }
        assert_eq!(got.shape(), shape.as_slice(), "{name}: broadcast shape");
        // Broadcasting is symmetric in shape.
        assert_eq!(
            op(&b, &a).shape(),
            shape.as_slice(),
            "{name}: swapped broadcast shape"
        );
    }
}

fn check_where<T: Element>(out_shape: &[usize], seeds: [u64; 3], storages: [Storage; 3]) {
    let shapes: Vec<Vec<usize>> = seeds
        .iter()
        .map(|&s| broadcastable_to(out_shape, s))
        .collect();
    let mut cond = values(&shapes[0], seeds[0], 1);
    cond.data
        .iter_mut()
        .for_each(|x| *x = if *x > 0.0 { 1.0 } else { 0.0 });
    let c: Tensor<T> = strided(&cond, storages[0]);
    let a: Tensor<T> = strided(&randn(&shapes[1], seeds[1]), storages[1]);
    let b: Tensor<T> = strided(&randn(&shapes[2], seeds[2]), storages[2]);
    let got = c.where_cond(&a, &b);
    assert_identical(
        &got,
        &c.contiguous().where_cond(&a.contiguous(), &b.contiguous()),
    );
    let (rc, ra, rb) = (Dense::of(&c), Dense::of(&a), Dense::of(&b));
    let shape =
        broadcast_rule(&broadcast_rule(&shapes[0], &shapes[1]).unwrap(), &shapes[2]).unwrap();
    let want = Dense::from_fn(&shape, |i| {
        if broadcast_at(&rc, i) != 0.0 {
            broadcast_at(&ra, i)
        } else {
            broadcast_at(&rb, i)
        }
    });
    assert_matches(&got, &want);
}

/// `try_map_elements` with three strided, broadcast inputs, an optional strided weight and two
/// results equals the same arithmetic done element by element on the broadcast reference.
fn check_map_elements<T: Element>(
    out_shape: &[usize],
    operands: [(u64, Storage); 4],
    weighted: bool,
) {
    let shapes: Vec<Vec<usize>> = operands
        .iter()
        .map(|&(seed, _)| broadcastable_to(out_shape, seed))
        .collect();
    let tensors: Vec<Tensor<T>> = operands
        .iter()
        .zip(&shapes)
        .map(|(&(seed, storage), shape)| strided(&randn(shape, seed), storage))
        .collect();
    // Read back: a broadcast storage repeats some of the values it was given.
    let values: Vec<Dense> = tensors.iter().map(Dense::of).collect();
    let weight = weighted.then_some(&tensors[3]);
    let f = |[x, y, z]: [T; 3], w: T| [x * y + z, (x - z) * w];
    let [first, second] =
        Tensor::try_map_elements("test", [&tensors[0], &tensors[1], &tensors[2]], weight, f)
            .unwrap();
    let used = if weighted { 4 } else { 3 };
    let shape = shapes[..used]
        .iter()
        .try_fold(Vec::new(), |acc, s| broadcast_rule(&acc, s))
        .expect("broadcastable by construction");
    let reference = |result: usize| {
        Dense::from_fn(&shape, |i| {
            let at = |k: usize| t::<T>(broadcast_at(&values[k], i));
            let w = if weighted { at(3) } else { T::one() };
            f([at(0), at(1), at(2)], w)[result].to_f64_lossy()
        })
    };
    for (n, got) in [first, second].iter().enumerate() {
        assert!(got.is_contiguous());
        assert_eq!(got.shape(), shape.as_slice(), "result {n}: broadcast shape");
        for (k, (g, w)) in got.to_vec().iter().zip(&reference(n).data).enumerate() {
            assert!(
                same(g.to_f64_lossy(), *w),
                "result {n} of {shapes:?} ({operands:?}): element {k}: got {g}, want {w}"
            );
        }
    }
}

fn operand() -> impl Strategy<Value = (u64, Storage)> {
    (any::<u64>(), storage_strategy())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn unary_ops_on_strided_inputs_f32(
        shape in shape_strategy(), storage in storage_strategy(), seed in any::<u64>(), flavour in 0u8..4,
    ) {
        check_unary::<f32>(&shape, storage, seed, flavour);
    }

    #[test]
    fn unary_ops_on_strided_inputs_f64(
        shape in shape_strategy(), storage in storage_strategy(), seed in any::<u64>(), flavour in 0u8..4,
    ) {
        check_unary::<f64>(&shape, storage, seed, flavour);
    }

    #[test]
    fn binary_ops_broadcast_over_strided_inputs_f32(
        shape in shape_strategy(), a in operand(), b in operand(), flavour in 0u8..4,
    ) {
        check_binary::<f32>(&shape, a, b, flavour);
    }

    #[test]
    fn binary_ops_broadcast_over_strided_inputs_f64(
        shape in shape_strategy(), a in operand(), b in operand(), flavour in 0u8..4,
    ) {
        check_binary::<f64>(&shape, a, b, flavour);
    }

    #[test]
    fn map_elements_broadcasts_strided_inputs_and_weight(
        shape in shape_strategy(),
        operands in [operand(), operand(), operand(), operand()],
        weighted in any::<bool>(),
    ) {
        check_map_elements::<f32>(&shape, operands, weighted);
        check_map_elements::<f64>(&shape, operands, weighted);
    }

    #[test]
    fn where_cond_broadcasts_three_strided_inputs(
        shape in shape_strategy(),
        seeds in any::<[u64; 3]>(),
        storages in [storage_strategy(), storage_strategy(), storage_strategy()],
    ) {
        check_where::<f32>(&shape, seeds, storages);
        check_where::<f64>(&shape, seeds, storages);
    }
}

#[test]
fn nan_propagates_like_pytorch() {
    let x = Tensor::<f32>::from_vec(vec![f32::NAN, -1.0, 2.0], &[3]);
    let nan_first = |v: Vec<f32>| v[0].is_nan();
    assert!(nan_first(x.relu().to_vec()), "relu(NaN) is NaN");
    assert!(nan_first(x.clamp(-0.5, 0.5).to_vec()), "clamp(NaN) is NaN");
    assert_eq!(&x.clamp(-0.5, 0.5).to_vec()[1..], &[-0.5, 0.5]);
    let y = Tensor::<f32>::from_vec(vec![0.0, f32::NAN, 1.0], &[3]);
    let max = x.maximum(&y).to_vec();
    assert!(max[0].is_nan() && max[1].is_nan() && max[2] == 2.0);
    let min = x.minimum(&y).to_vec();
    assert!(min[0].is_nan() && min[1].is_nan() && min[2] == 1.0);
}

#[test]
fn operators_agree_with_named_methods() {
    let a = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let b = Tensor::<f64>::from_vec(vec![10.0, 20.0], &[2]);
    assert_eq!((&a + &b).to_vec(), vec![11.0, 22.0, 13.0, 24.0]);
    assert_eq!((&a - &b).to_vec(), vec![-9.0, -18.0, -7.0, -16.0]);
    assert_eq!((&a * &b).to_vec(), vec![10.0, 40.0, 30.0, 80.0]);
    assert_eq!((&a / &b).to_vec(), vec![0.1, 0.1, 0.3, 0.2]);
    assert_eq!((a.clone() * b.clone()).to_vec(), a.mul(&b).to_vec());
    assert_eq!((-&a).to_vec(), vec![-1.0, -2.0, -3.0, -4.0]);
    assert_eq!((&a * 2.0).to_vec(), vec![2.0, 4.0, 6.0, 8.0]);
    assert_eq!((&a / 2.0).to_vec(), vec![0.5, 1.0, 1.5, 2.0]);
    assert_eq!((&a - 1.0).to_vec(), vec![0.0, 1.0, 2.0, 3.0]);
    assert_eq!((&a + 1.0).to_vec(), vec![2.0, 3.0, 4.0, 5.0]);
}

#[test]
#[should_panic(
    expected = "add: shapes [2, 3] and [2] cannot be broadcast: dimension -1 has sizes 3 and 2"
)]
fn operator_panics_with_the_broadcast_error() {
    let _ = &Tensor::<f32>::zeros(&[2, 3]) + &Tensor::<f32>::zeros(&[2]);
}

#[test]
fn map_elements_splits_large_inputs_across_threads() {
    // Above the parallel threshold with two threads: 300 rows of 200, blocks of whole rows that
    // end mid-tensor, one input a column block of a wider matrix (rows read in place) and one
    // transposed (copied first); then one row of 2¹⁷, split within the row.
    tapeloop_tensor::set_num_threads(2).unwrap();
    let wide = Tensor::<f32>::randn(&[300, 500], &mut tapeloop_tensor::seeded_rng(1));
    let block = wide.narrow(1, 100, 200);
    let transposed = Tensor::<f32>::randn(&[200, 300], &mut tapeloop_tensor::seeded_rng(2)).t();
    let [got] = Tensor::try_map_elements("test", [&block, &transposed], None, |[x, y], _| {
        [x * 2.0 - y]
    })
    .unwrap();
    assert_eq!(
        got.to_vec(),
        block.mul_scalar(2.0).sub(&transposed).to_vec()
    );
    let row = Tensor::<f32>::randn(&[1 << 17], &mut tapeloop_tensor::seeded_rng(3));
    let weight = Tensor::<f32>::randn(&[1 << 17], &mut tapeloop_tensor::seeded_rng(4));
    let [scaled, plain] =
        Tensor::try_map_elements("test", [&row], Some(&weight), |[x], w| [x * w, x + 1.0]).unwrap();
    assert_eq!(scaled.to_vec(), row.mul(&weight).to_vec());
    assert_eq!(plain.to_vec(), row.add_scalar(1.0).to_vec());
}

#[test]
fn map_elements_shares_small_passes_between_threads() {
    // Below the plain ops' parallel threshold, above the fused passes' one: one block per
    // thread, cut mid-row ([33, 100] in halves of 1,650; [1, 3001] within its one row) or at a
    // row boundary ([2, 2048]); with a weight and two results as well.
    tapeloop_tensor::set_num_threads(2).unwrap();
    for shape in [[33, 100], [1, 3001], [2, 2048]] {
        let x = Tensor::<f32>::randn(&shape, &mut tapeloop_tensor::seeded_rng(5));
        let y = Tensor::<f32>::randn(&shape, &mut tapeloop_tensor::seeded_rng(6));
        let [got] =
            Tensor::try_map_elements("test", [&x, &y], None, |[x, y], _| [x * y + 1.0]).unwrap();
        assert_eq!(
            got.to_vec(),
            x.mul(&y).add_scalar(1.0).to_vec(),
            "{shape:?}"
        );
        let [scaled, shifted] =
            Tensor::try_map_elements("test", [&x], Some(&y), |[x], w| [x * w, x - w]).unwrap();
        assert_eq!(scaled.to_vec(), x.mul(&y).to_vec(), "{shape:?}");
        assert_eq!(shifted.to_vec(), x.sub(&y).to_vec(), "{shape:?}");
    }
}

#[test]
fn map_elements_names_every_shape_when_they_do_not_broadcast() {
    let a = Tensor::<f64>::zeros(&[2, 3]);
    let b = Tensor::<f64>::zeros(&[3]);
    let c = Tensor::<f64>::zeros(&[4, 1]);
    let error = Tensor::try_map_elements("cell", [&a, &b, &c], None, |[x, _, _], _| [x])
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "cell: the shapes [2, 3], [3], [4, 1] cannot be broadcast together"
    );
    let error = Tensor::try_map_elements("cell", [&a, &b], Some(&c), |[x, _], _| [x])
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "cell: the shapes [2, 3], [3], weight [4, 1] cannot be broadcast together"
    );
    // Sizes that broadcast, to more elements than exist: that is the error, not a mismatch.
    let tall = Tensor::<f64>::zeros(&[1, 1]).broadcast_to(&[1 << 32, 1]);
    let wide = Tensor::<f64>::zeros(&[1, 1]).broadcast_to(&[1, 1 << 32]);
    let empty = tall.narrow(0, 0, 0);
    let [out] = Tensor::try_map_elements("cell", [&empty, &wide], None, |[x, _], _| [x]).unwrap();
    assert_eq!(
        out.shape(),
        &[0, 1 << 32],
        "a size 0 keeps the broadcast shape empty"
    );
    let error = Tensor::try_map_elements("cell", [&tall, &wide], None, |[x, _], _| [x])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("more elements than a usize can count"),
        "{error}"
    );
}

#[test]
fn map_elements_of_empty_and_scalar_inputs() {
    let empty = Tensor::<f32>::zeros(&[0, 3]);
    let [out] = Tensor::try_map_elements("test", [&empty], None, |[x], _| [x + 1.0]).unwrap();
    assert_eq!(out.shape(), &[0, 3]);
    let two = Tensor::<f32>::scalar(2.0);
    let [a, b] =
        Tensor::try_map_elements("test", [&two], Some(&two), |[x], w| [x * w, -x]).unwrap();
    assert_eq!((a.shape(), a.item(), b.item()), (&[][..], 4.0, -2.0));
}
