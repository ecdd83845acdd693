//! Every reduction on strided inputs equals the same reduction on a contiguous copy, and a naive
//! f64 reference that visits every element by its multi-index.

mod common;

use common::*;
use proptest::prelude::*;
use tapeloop_tensor::{Element, Tensor};

/// A reduction request: the dimensions as passed (some negative, maybe empty for "all") and the
/// positions they resolve to.
#[derive(Clone, Debug)]
struct Dims {
    args: Vec<isize>,
    resolved: Vec<usize>,
}

fn pick_dims(rank: usize, seed: u64) -> Dims {
    let mut pick = Picker::new(seed);
    if rank == 0 || pick.below(5) == 0 {
        return Dims {
            args: vec![],
            resolved: (0..rank).collect(),
        };
    }
    let count = 1 + pick.below(rank);
    let resolved: Vec<usize> = pick.permutation(rank)[..count].to_vec();
    let args = resolved
        .iter()
        .map(|&d| {
            if pick.below(2) == 0 {
                d as isize
            } else {
                d as isize - rank as isize
            }
        })
        .collect();
    Dims { args, resolved }
}

fn pick_dim(rank: usize, seed: u64) -> (isize, usize) {
    let mut pick = Picker::new(seed);
    let d = pick.below(rank);
    let arg = if pick.below(2) == 0 {
        d as isize
    } else {
        d as isize - rank as isize
    };
    (arg, d)
}

fn reduced_shape(shape: &[usize], dims: &[usize], keepdim: bool) -> Vec<usize> {
    let mut out = Vec::new();
    for (d, &s) in shape.iter().enumerate() {
        if !dims.contains(&d) {
            out.push(s);
        } else if keepdim {
            out.push(1);
        }
    }
    out
}

/// Folds every group of elements that agree outside `dims`, visiting the input by multi-index.
fn reference_fold(x: &Dense, dims: &[usize], keepdim: bool, fold: impl Fn(&[f64]) -> f64) -> Dense {
    let kept = reduced_shape(&x.shape, dims, true);
    let mut groups: Vec<Vec<f64>> = vec![Vec::new(); kept.iter().product()];
    for index in indices(&x.shape) {
        let out_index: Vec<usize> = index
            .iter()
            .enumerate()
            .map(|(d, &i)| if dims.contains(&d) { 0 } else { i })
            .collect();
        groups[flat(&kept, &out_index)].push(x.at(&index));
    }
    Dense {
        shape: reduced_shape(&x.shape, dims, keepdim),
        data: groups.iter().map(|g| fold(g)).collect(),
    }
}

fn ref_sum(g: &[f64]) -> f64 {
    g.iter().sum()
}
fn ref_max(g: &[f64]) -> f64 {
    g.iter().copied().fold(
        f64::NEG_INFINITY,
        |a, x| if x.is_nan() || x > a { x } else { a },
    )
}
fn ref_min(g: &[f64]) -> f64 {
    g.iter().copied().fold(
        f64::INFINITY,
        |a, x| if x.is_nan() || x < a { x } else { a },
    )
}
fn ref_logsumexp(g: &[f64]) -> f64 {
    let m = ref_max(g);
    let m = if m.is_finite() { m } else { 0.0 };
    m + g.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// Along `dim`, maps each lane (the elements that differ only in `dim`) with `f`.
fn reference_along(x: &Dense, dim: usize, f: impl Fn(&[f64]) -> Vec<f64>) -> Dense {
    let mut out = x.clone();
    let mut lane_shape = x.shape.clone();
    lane_shape[dim] = 1;
    for start in indices(&lane_shape) {
        let lane: Vec<f64> = (0..x.shape[dim])
            .map(|k| {
                let mut i = start.clone();
                i[dim] = k;
                x.at(&i)
            })
            .collect();
        for (k, v) in f(&lane).into_iter().enumerate() {
            let mut i = start.clone();
            i[dim] = k;
            out.data[flat(&x.shape, &i)] = v;
        }
    }
    out
}

fn ref_arg(lane: &[f64], better: impl Fn(f64, f64) -> bool) -> f64 {
    let mut best = 0;
    for (i, &x) in lane.iter().enumerate() {
        if better(x, lane[best]) {
            best = i;
        }
    }
    best as f64
}

/// Tolerance for sums whose order may differ: relative to the sum of magnitudes.
fn sum_tolerance<T: Element>() -> f64 {
    if T::DTYPE == "f32" { 1e-5 } else { 1e-13 }
}

#[track_caller]
fn assert_reduction<T: Element>(
    name: &str,
    got: &Tensor<T>,
    contiguous: &Tensor<T>,
    want: &Dense,
    scale: &Dense,
) {
    let tol = sum_tolerance::<T>();
    assert_eq!(got.shape(), want.shape.as_slice(), "{name}: shape");
    assert_eq!(
        contiguous.shape(),
        want.shape.as_slice(),
        "{name}: shape (contiguous)"
    );
    let (g, c) = (got.to_vec(), contiguous.to_vec());
    for n in 0..want.len() {
        let (g, c, w) = (g[n].to_f64_lossy(), c[n].to_f64_lossy(), want.data[n]);
        let allowed = tol * (1.0 + scale.data[n]);
        let ok = |v: f64| same(v, w) || (v - w).abs() <= allowed;
        assert!(
            ok(g),
            "{name}: element {n}: strided gives {g}, reference {w}"
        );
        assert!(
            ok(c),
            "{name}: element {n}: contiguous gives {c}, reference {w}"
        );
        assert!(
            same(g, c) || (g - c).abs() <= allowed,
            "{name}: element {n}: strided {g} vs contiguous {c}"
        );
    }
}

fn check_reductions<T: Element>(
    shape: &[usize],
    storage: Storage,
    seed: u64,
    dims_seed: u64,
    keepdim: bool,
    ties: bool,
) {
    let mut values = randn(shape, seed);
    if ties {
        values
            .data
            .iter_mut()
            .for_each(|v| *v = (*v * 2.0).round() / 2.0);
    }
    let x: Tensor<T> = strided(&values, storage);
    let xc = x.contiguous();
    let r = Dense::of(&x);
    let rank = shape.len();
    let dims = pick_dims(rank, dims_seed);
    let d = &dims.resolved;
    let abs = Dense {
        shape: r.shape.clone(),
        data: r.data.iter().map(|v| v.abs()).collect(),
    };
    let sq = Dense {
        shape: r.shape.clone(),
        data: r.data.iter().map(|v| v * v).collect(),
    };
    let abs_sum = reference_fold(&abs, d, keepdim, ref_sum);
    let sq_sum = reference_fold(&sq, d, keepdim, ref_sum);
    let count: usize = d.iter().map(|&k| shape[k]).product();
    let any_empty = d.iter().any(|&k| shape[k] == 0);
    let args = &dims.args;

    let want = reference_fold(&r, d, keepdim, ref_sum);
    assert_reduction(
        "sum",
        &x.sum(args, keepdim),
        &xc.sum(args, keepdim),
        &want,
        &abs_sum,
    );

    let want_mean = Dense {
        shape: want.shape.clone(),
        data: want.data.iter().map(|s| s / count as f64).collect(),
    };
    let mean_scale = Dense {
        shape: want.shape.clone(),
        data: abs_sum
            .data
            .iter()
            .map(|s| s / count.max(1) as f64)
            .collect(),
    };
    assert_reduction(
        "mean",
        &x.mean(args, keepdim),
        &xc.mean(args, keepdim),
        &want_mean,
        &mean_scale,
    );

    let want_norm = Dense {
        shape: sq_sum.shape.clone(),
        data: sq_sum.data.iter().map(|s| s.sqrt()).collect(),
    };
    assert_reduction(
        "norm_l2",
        &x.norm_l2(args, keepdim),
        &xc.norm_l2(args, keepdim),
        &want_norm,
        &want_norm,
    );

    // logsumexp of an empty set is log 0 = -inf, as in PyTorch.
    let want_lse = reference_fold(&r, d, keepdim, ref_logsumexp);
    let lse_scale = reference_fold(&abs, d, keepdim, |g| {
        g.iter().copied().fold(0.0, f64::max) + 1.0
    });
    assert_reduction(
        "logsumexp",
        &x.logsumexp(args, keepdim),
        &xc.logsumexp(args, keepdim),
        &want_lse,
        &lse_scale,
    );

    if any_empty {
        let message = format!("cannot reduce over an empty dimension (shape {shape:?})");
        assert_eq!(
            x.try_max(args, keepdim).unwrap_err().to_string(),
            format!("max: {message}")
        );
        assert_eq!(
            x.try_min(args, keepdim).unwrap_err().to_string(),
            format!("min: {message}")
        );
    } else {
        // Max and min pick an element: exact, whatever the layout.
        let zero = Dense {
            shape: want.shape.clone(),
            data: vec![0.0; want.len()],
        };
        let want_max = reference_fold(&r, d, keepdim, ref_max);
        assert_reduction(
            "max",
            &x.max(args, keepdim),
            &xc.max(args, keepdim),
            &want_max,
            &zero,
        );
        assert_identical(&x.max(args, keepdim), &xc.max(args, keepdim));
        let want_min = reference_fold(&r, d, keepdim, ref_min);
        assert_identical(&x.min(args, keepdim), &xc.min(args, keepdim));
        assert_reduction(
            "min",
            &x.min(args, keepdim),
            &xc.min(args, keepdim),
            &want_min,
            &zero,
        );
    }

    if rank > 0 {
        let (arg, dim) = pick_dim(rank, dims_seed.rotate_left(9));
        // softmax / log_softmax along one dimension.
        let want_softmax = reference_along(&r, dim, |lane| {
            let m = ref_max(lane);
            let e: Vec<f64> = lane.iter().map(|x| (x - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| v / s).collect()
        });
        let ones = Dense {
            shape: r.shape.clone(),
            data: vec![1.0; r.len()],
        };
        assert_reduction(
            "softmax",
            &x.softmax(arg),
            &xc.softmax(arg),
            &want_softmax,
            &ones,
        );
        let want_log_softmax = reference_along(&r, dim, |lane| {
            let l = ref_logsumexp(lane);
            lane.iter().map(|x| x - l).collect()
        });
        let lsm_scale = reference_along(&abs, dim, |lane| {
            let m = lane.iter().copied().fold(0.0, f64::max);
            lane.iter().map(|x| x + m + 1.0).collect()
        });
        assert_reduction(
            "log_softmax",
            &x.log_softmax(arg),
            &xc.log_softmax(arg),
            &want_log_softmax,
            &lsm_scale,
        );

        if shape[dim] == 0 {
            let message = format!("dimension {dim} is empty (shape {shape:?})");
            assert_eq!(
                x.try_argmax(arg, keepdim).unwrap_err().to_string(),
                format!("argmax: {message}")
            );
            assert_eq!(
                x.try_argmin(arg, keepdim).unwrap_err().to_string(),
                format!("argmin: {message}")
            );
        } else {
            let first_max = |a: f64, b: f64| a > b || (a.is_nan() && !b.is_nan());
            let first_min = |a: f64, b: f64| a < b || (a.is_nan() && !b.is_nan());
            let got = x.argmax(arg, keepdim);
            assert_identical(&got, &xc.argmax(arg, keepdim));
            assert_matches(
                &got,
                &reference_fold(&r, &[dim], keepdim, |g| ref_arg(g, first_max)),
            );
            let got = x.argmin(arg, keepdim);
            assert_identical(&got, &xc.argmin(arg, keepdim));
            assert_matches(
                &got,
                &reference_fold(&r, &[dim], keepdim, |g| ref_arg(g, first_min)),
            );
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn reductions_on_strided_inputs_f64(
        shape in shape_strategy(), storage in storage_strategy(), seed in any::<u64>(),
        dims_seed in any::<u64>(), keepdim in any::<bool>(), ties in any::<bool>(),
    ) {
        check_reductions::<f64>(&shape, storage, seed, dims_seed, keepdim, ties);
    }

    #[test]
    fn reductions_on_strided_inputs_f32(
        shape in shape_strategy(), storage in storage_strategy(), seed in any::<u64>(),
        dims_seed in any::<u64>(), keepdim in any::<bool>(), ties in any::<bool>(),
    ) {
        check_reductions::<f32>(&shape, storage, seed, dims_seed, keepdim, ties);
    }

    /// `sum_to_shape` undoes broadcasting: it sums exactly the positions that broadcasting
    /// `target` up to the input's shape would have repeated.
    #[test]
    fn sum_to_shape_sums_over_broadcast_dimensions(
        shape in shape_strategy(), storage in storage_strategy(), seed in any::<u64>(), target_seed in any::<u64>(),
    ) {
        let x: Tensor<f64> = strided(&randn(&shape, seed), storage);
        let r = Dense::of(&x);
        let target = broadcastable_to(&shape, target_seed);
        let lead = shape.len() - target.len();
        let mut want = Dense { shape: target.clone(), data: vec![0.0; target.iter().product()] };
        let mut scale = want.clone();
        for index in indices(&shape) {
            let to: Vec<usize> = target.iter().enumerate()
                .map(|(d, &size)| if size == 1 { 0 } else { index[lead + d] })
                .collect();
            let at = flat(&target, &to);
            want.data[at] += r.at(&index);
            scale.data[at] += r.at(&index).abs();
        }
        let got = x.sum_to_shape(&target);
        assert_reduction("sum_to_shape", &got, &x.contiguous().sum_to_shape(&target), &want, &scale);
    }
}

#[test]
fn sum_to_shape_rejects_shapes_that_do_not_broadcast() {
    let g = Tensor::<f32>::ones(&[4, 3]);
    assert_eq!(
        g.try_sum_to_shape(&[2]).unwrap_err().to_string(),
        "sum_to_shape: shape [2] does not broadcast to [4, 3]"
    );
    assert_eq!(
        g.try_sum_to_shape(&[1, 4, 3]).unwrap_err().to_string(),
        "sum_to_shape: cannot reduce shape [4, 3] to the larger rank of [1, 4, 3]"
    );
    // The same shape is returned as is (shared, no copy).
    assert!(g.sum_to_shape(&[4, 3]).shares_storage(&g));
}

#[test]
fn softmax_and_logsumexp_of_an_empty_dimension_follow_pytorch() {
    let x = Tensor::<f32>::zeros(&[2, 0]);
    assert_eq!(x.softmax(1).shape(), &[2, 0]);
    assert_eq!(x.log_softmax(-1).shape(), &[2, 0]);
    assert_eq!(
        x.logsumexp(&[1], false).to_vec(),
        vec![f32::NEG_INFINITY; 2]
    );
    assert_eq!(x.softmax(0).shape(), &[2, 0]);
}

#[test]
fn stable_forms_survive_large_and_infinite_inputs() {
    let x = Tensor::<f32>::from_vec(
        vec![1000.0, 1000.0, f32::NEG_INFINITY, f32::NEG_INFINITY],
        &[2, 2],
    );
    let lse = x.logsumexp(&[1], false).to_vec();
    assert!((lse[0] - (1000.0 + 2f32.ln())).abs() < 1e-3);
    assert_eq!(lse[1], f32::NEG_INFINITY);
    let p = x.softmax(1).to_vec();
    assert_eq!(&p[..2], &[0.5, 0.5]);
    let lsm = x.log_softmax(1).to_vec();
    assert!((lsm[0] + 2f32.ln()).abs() < 1e-6);
}

#[test]
fn reductions_propagate_nan_and_argmax_takes_the_first_tie() {
    let x = Tensor::<f64>::from_vec(vec![1.0, f64::NAN, 3.0, 3.0, 2.0, 3.0], &[2, 3]);
    let max = x.max(&[1], false).to_vec();
    assert!(max[0].is_nan());
    assert_eq!(max[1], 3.0);
    assert_eq!(x.argmax(1, false).to_vec(), vec![1.0, 0.0]);
    assert_eq!(x.argmin(1, true).to_vec(), vec![1.0, 1.0]);
    assert_eq!(x.argmin(1, true).shape(), &[2, 1]);
    assert!(x.sum(&[], false).item().is_nan());
    assert!(x.sum_all().is_nan());
}

#[test]
fn duplicate_reduction_dimensions_are_refused() {
    let x = Tensor::<f32>::zeros(&[2, 3]);
    assert_eq!(
        x.try_sum(&[1, -1], false).unwrap_err().to_string(),
        "sum: dimension 1 is listed twice in [1, -1]"
    );
}
#[test]
fn argmax_along_a_leading_dimension_keeps_the_other_dimensions_in_order() {
    // [2, 3, 2]: argmax over dim 0 must come out as [3, 2] in the input's order of (j, k).
    let x = Tensor::<f32>::from_vec(
        vec![
            0.0, 9.0, 0.0, 9.0, 9.0, 0.0, //
            9.0, 0.0, 9.0, 0.0, 0.0, 9.0,
        ],
        &[2, 3, 2],
    );
    assert_eq!(
        x.argmax(0, false).to_vec(),
        vec![1.0, 0.0, 1.0, 0.0, 0.0, 1.0]
    );
    assert_eq!(x.argmin(-3, true).shape(), &[1, 3, 2]);
    assert_eq!(
        x.argmin(-3, true).to_vec(),
        vec![0.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    );
}
