//! Every differentiable op against central finite differences in f64, first and second
//! derivatives, on random shapes and values, with contiguous, transposed and narrowed inputs and
//! broadcast-compatible operand shapes.
//!
//! Raise the number of cases with `TAPELOOP_PROPTEST_CASES`.

mod common;

use common::{Domain, any_input, check, dim, dims, input, maybe_broadcast, resolve, shape};
use proptest::prelude::*;
use tapeloop_autograd::strategies::broadcast_pair;
use tapeloop_autograd::{Indices, Tensor, Var, tensor::broadcast_shapes};

/// A unary op checked on an input from `domain`, read either directly or through a stride-0
/// broadcast view.
macro_rules! unary {
    ($($name:ident, $domain:expr, |$x:ident| $body:expr;)*) => {
        proptest! {
            #![proptest_config(common::config(64))]
            $(
                #[test]
                fn $name(x in any_input($domain), broadcast in any::<bool>()) {
                    check(
                        |v: &[Var<f64>]| {
                            let $x = &maybe_broadcast(&v[0], broadcast);
                            $body
                        },
                        &[x],
                    )?;
                }
            )*
        }
    };
}

unary! {
    neg, Domain::AwayFromZero, |x| x.neg();
    exp, Domain::AwayFromZero, |x| x.exp();
    log, Domain::Positive, |x| x.log();
    tanh, Domain::AwayFromZero, |x| x.tanh();
    sigmoid, Domain::AwayFromZero, |x| x.sigmoid();
    relu, Domain::AwayFromZero, |x| x.relu();
    sqrt, Domain::Positive, |x| x.sqrt();
    abs, Domain::AwayFromZero, |x| x.abs();
    recip, Domain::AwayFromZero, |x| x.recip();
    square, Domain::AwayFromZero, |x| x.square();
    add_scalar, Domain::AwayFromZero, |x| x.add_scalar(-0.7);
    mul_scalar, Domain::AwayFromZero, |x| x.mul_scalar(-1.3);
    operator_neg, Domain::AwayFromZero, |x| -x;
    operator_neg_owned, Domain::AwayFromZero, |x| -(x.clone());
    operator_add_scalar, Domain::AwayFromZero, |x| x + 2.0;
    operator_sub_scalar, Domain::AwayFromZero, |x| x - 2.0;
    operator_mul_scalar, Domain::AwayFromZero, |x| x * 2.0;
    operator_div_scalar, Domain::AwayFromZero, |x| x / 4.0;
    operator_scalar_add, Domain::AwayFromZero, |x| 2.0 + x;
    operator_scalar_sub, Domain::AwayFromZero, |x| 2.0 - x;
    operator_scalar_mul, Domain::AwayFromZero, |x| 2.0 * x;
    operator_scalar_div, Domain::AwayFromZero, |x| 2.0 / x;
    softmax_last_dim, Domain::AwayFromZero, |x| if x.rank() == 0 { x.exp() } else { x.softmax(-1) };
}

/// Values whose distance to the clamp bounds ±0.5 exceeds any finite-difference step.
fn away_from_clamp_bounds() -> BoxedStrategy<Tensor<f64>> {
    any_input(Domain::AwayFromZero)
        .prop_filter("near a clamp bound", |t| {
            t.to_vec().iter().all(|v| (v.abs() - 0.5).abs() > 1e-3)
        })
        .boxed()
}

/// Two inputs of broadcast-compatible shapes from `domain`, each contiguous or strided.
fn broadcast_inputs(domain: Domain) -> BoxedStrategy<(Tensor<f64>, Tensor<f64>)> {
    broadcast_pair(3, 3)
        .prop_flat_map(move |(a, b)| (input(a, domain), input(b, domain)))
        .boxed()
}

/// A reduction's input with the dimensions to reduce (possibly none = all, some negative) and
/// keepdim.
fn reduction() -> BoxedStrategy<(Tensor<f64>, Vec<isize>, bool)> {
    shape(3, 3)
        .prop_flat_map(|s| {
            let rank = s.len();
            (input(s, Domain::AwayFromZero), dims(rank), any::<bool>())
        })
        .boxed()
}

/// An input of rank ≥ 1 and one of its dimensions.
fn input_and_dim(domain: Domain) -> BoxedStrategy<(Tensor<f64>, isize)> {
    common::shape_at_least_1d(3, 3)
        .prop_flat_map(move |s| {
            let rank = s.len();
            (input(s, domain), dim(rank))
        })
        .boxed()
}

proptest! {
    #![proptest_config(common::config(64))]

    #[test]
    fn powf(x in any_input(Domain::Positive), exponent in -2.0f64..3.0, broadcast in any::<bool>()) {
        check(|v: &[Var<f64>]| maybe_broadcast(&v[0], broadcast).powf(exponent), &[x])?;
    }

    #[test]
    fn clamp(x in away_from_clamp_bounds(), broadcast in any::<bool>()) {
        check(|v: &[Var<f64>]| maybe_broadcast(&v[0], broadcast).clamp(-0.5, 0.5), &[x])?;
    }

    #[test]
    fn add((a, b) in broadcast_inputs(Domain::AwayFromZero)) {
        check(|v: &[Var<f64>]| v[0].add(&v[1]), &[a, b])?;
    }

    #[test]
    fn sub((a, b) in broadcast_inputs(Domain::AwayFromZero)) {
        check(|v: &[Var<f64>]| v[0].sub(&v[1]), &[a, b])?;
    }

    #[test]
    fn mul((a, b) in broadcast_inputs(Domain::AwayFromZero)) {
        check(|v: &[Var<f64>]| v[0].mul(&v[1]), &[a, b])?;
    }

    #[test]
    fn div((a, b) in broadcast_inputs(Domain::AwayFromZero)) {
        check(|v: &[Var<f64>]| v[0].div(&v[1]), &[a, b])?;
    }

    #[test]
    fn pow((a, b) in broadcast_inputs(Domain::Positive)) {
        check(|v: &[Var<f64>]| v[0].pow(&v[1]), &[a, b])?;
    }

    #[test]
    fn pow_negative_exponent((a, b) in broadcast_inputs(Domain::Positive)) {
        check(|v: &[Var<f64>]| v[0].pow(&v[1].neg()), &[a, b])?;
    }

    #[test]
    fn maximum((a, b) in broadcast_inputs(Domain::AwayFromZero)) {
        // Ties are where maximum is not differentiable; random values never tie.
        check(|v: &[Var<f64>]| v[0].maximum(&v[1]), &[a, b])?;
    }

    #[test]
    fn minimum((a, b) in broadcast_inputs(Domain::AwayFromZero)) {
        check(|v: &[Var<f64>]| v[0].minimum(&v[1]), &[a, b])?;
    }

    #[test]
    fn operators_between_variables((a, b) in broadcast_inputs(Domain::AwayFromZero)) {
        check(
            |v: &[Var<f64>]| {
                let (a, b) = (&v[0], &v[1]);
                let sum = a + b;
                let owned = a.clone() * b.clone();
                let mixed = &(a.clone() - b) / (b * 3.0).exp();
                let mixed2 = a - b.clone();
                &(&(&sum + &owned) * &mixed) + &mixed2
            },
            &[a, b],
        )?;
    }

    #[test]
    fn where_cond(
        ((a, b), condition) in broadcast_pair(3, 3).prop_flat_map(|(a, b)| {
            let c = broadcast_shapes("test", &a, &b).unwrap().to_vec();
            // The condition broadcasts too: drop its leading dimension half the time.
            let condition_shape = if c.is_empty() { c } else { c[1..].to_vec() };
            let count: usize = condition_shape.iter().product();
            (
                (input(a, Domain::AwayFromZero), input(b, Domain::AwayFromZero)),
                prop::collection::vec(prop::bool::ANY, count)
                    .prop_map(move |bits| Tensor::from_vec(
                        bits.into_iter().map(|t| if t { 1.0 } else { 0.0 }).collect(),
                        &condition_shape,
                    )),
            )
        })
    ) {
        check(|v: &[Var<f64>]| Var::where_cond(&condition, &v[0], &v[1]), &[a, b])?;
    }

    #[test]
    fn sum((x, dims, keepdim) in reduction()) {
        check(|v: &[Var<f64>]| v[0].sum(&dims, keepdim), &[x])?;
    }

    #[test]
    fn mean((x, dims, keepdim) in reduction()) {
        check(|v: &[Var<f64>]| v[0].mean(&dims, keepdim), &[x])?;
    }

    #[test]
    fn max((x, dims, keepdim) in reduction()) {
        // Random values have no ties, so the maximum is differentiable.
        check(|v: &[Var<f64>]| v[0].max(&dims, keepdim), &[x])?;
    }

    #[test]
    fn min((x, dims, keepdim) in reduction()) {
        check(|v: &[Var<f64>]| v[0].min(&dims, keepdim), &[x])?;
    }

    #[test]
    fn norm_l2((x, dims, keepdim) in reduction()) {
        check(|v: &[Var<f64>]| v[0].norm_l2(&dims, keepdim), &[x])?;
    }

    #[test]
    fn logsumexp((x, dims, keepdim) in reduction()) {
        check(|v: &[Var<f64>]| v[0].logsumexp(&dims, keepdim), &[x])?;
    }

    #[test]
    fn softmax((x, d) in input_and_dim(Domain::AwayFromZero)) {
        check(|v: &[Var<f64>]| v[0].softmax(d), &[x])?;
    }

    #[test]
    fn log_softmax((x, d) in input_and_dim(Domain::AwayFromZero)) {
        check(|v: &[Var<f64>]| v[0].log_softmax(d), &[x])?;
    }

    #[test]
    fn matmul_2d(
        (a, b) in (1usize..=4, 1usize..=4, 1usize..=4).prop_flat_map(|(m, k, n)| {
            (input(vec![m, k], Domain::AwayFromZero), input(vec![k, n], Domain::AwayFromZero))
        })
    ) {
        check(|v: &[Var<f64>]| v[0].matmul(&v[1]), &[a, b])?;
    }

    #[test]
    fn matmul_transposed_operands(
        (a, b, transpose_a, transpose_b) in (1usize..=4, 1usize..=4, 1usize..=4, any::<bool>(), any::<bool>())
            .prop_flat_map(|(m, k, n, ta, tb)| {
                let a = if ta { vec![k, m] } else { vec![m, k] };
                let b = if tb { vec![n, k] } else { vec![k, n] };
                (input(a, Domain::AwayFromZero), input(b, Domain::AwayFromZero), Just(ta), Just(tb))
            })
    ) {
        check(
            |v: &[Var<f64>]| {
                let a = if transpose_a { v[0].t() } else { v[0].clone() };
                let b = if transpose_b { v[1].transpose(-1, -2) } else { v[1].clone() };
                a.matmul(&b)
            },
            &[a, b],
        )?;
    }

    #[test]
    fn matmul_vector_cases(
        (a, b) in (1usize..=3, 1usize..=3, 1usize..=3, 0usize..5).prop_flat_map(|(m, k, n, case)| {
            let (a, b) = match case {
                0 => (vec![k], vec![k]),          // dot product
                1 => (vec![k], vec![k, n]),       // vector × matrix
                2 => (vec![m, k], vec![k]),       // matrix × vector
                3 => (vec![k], vec![2, k, n]),    // vector × batch of matrices
                _ => (vec![2, m, k], vec![k]),    // batch of matrices × vector
            };
            (input(a, Domain::AwayFromZero), input(b, Domain::AwayFromZero))
        })
    ) {
        check(|v: &[Var<f64>]| v[0].matmul(&v[1]), &[a, b])?;
    }

    #[test]
    fn matmul_batched_with_broadcast_batch_dims(
        (a, b) in (broadcast_pair(2, 3), 1usize..=3, 1usize..=3, 1usize..=3)
            .prop_flat_map(|((batch_a, batch_b), m, k, n)| {
                let a = [batch_a, vec![m, k]].concat();
                let b = [batch_b, vec![k, n]].concat();
                (input(a, Domain::AwayFromZero), input(b, Domain::AwayFromZero))
            })
    ) {
        check(|v: &[Var<f64>]| v[0].matmul(&v[1]), &[a, b])?;
    }

    #[test]
    fn transpose(
        (x, d0, d1) in common::shape_at_least_1d(3, 3).prop_flat_map(|s| {
            let rank = s.len();
            (input(s, Domain::AwayFromZero), dim(rank), dim(rank))
        })
    ) {
        check(|v: &[Var<f64>]| v[0].transpose(d0, d1).tanh(), &[x])?;
    }

    #[test]
    fn permute(
        (x, order) in shape(3, 3).prop_flat_map(|s| {
            let rank = s.len();
            let order: Vec<isize> = (0..rank as isize).collect();
            (input(s, Domain::AwayFromZero), Just(order).prop_shuffle())
        })
    ) {
        // Squaring after the move makes the second derivative depend on where each element went.
        check(|v: &[Var<f64>]| v[0].permute(&order).square(), &[x])?;
    }

    #[test]
    fn narrow(
        (x, d, start, len) in common::shape_at_least_1d(3, 4).prop_flat_map(|s| {
            let rank = s.len();
            (Just(s), dim(rank))
        }).prop_flat_map(|(s, d)| {
            let size = s[resolve(d, s.len())];
            (input(s, Domain::AwayFromZero), Just(d), 0..size)
        }).prop_flat_map(|(x, d, start)| {
            let size = x.shape()[resolve(d, x.rank())];
            (Just(x), Just(d), Just(start), 1..=size - start)
        })
    ) {
        check(|v: &[Var<f64>]| v[0].narrow(d, start, len).square(), &[x])?;
    }

    #[test]
    fn select(
        (x, d, index) in common::shape_at_least_1d(3, 3).prop_flat_map(|s| {
            let rank = s.len();
            (Just(s), dim(rank))
        }).prop_flat_map(|(s, d)| {
            let size = s[resolve(d, s.len())];
            (input(s, Domain::AwayFromZero), Just(d), 0..size)
        })
    ) {
        check(|v: &[Var<f64>]| v[0].select(d, index).square(), &[x])?;
    }

    #[test]
    fn reshape(
        (x, target) in shape(3, 3).prop_flat_map(|s| {
            // Any reordering of the dimensions has the same number of elements; on a strided
            // input the reshape copies instead of viewing.
            (input(s.clone(), Domain::AwayFromZero), Just(s).prop_shuffle())
        })
    ) {
        check(|v: &[Var<f64>]| v[0].reshape(&target).square(), &[x])?;
    }

    #[test]
    fn flatten(x in any_input(Domain::AwayFromZero)) {
        check(|v: &[Var<f64>]| v[0].flatten().square(), &[x])?;
    }

    #[test]
    fn broadcast_to(
        (x, target) in broadcast_pair(3, 3).prop_flat_map(|(a, b)| {
            let target = broadcast_shapes("test", &a, &b).unwrap().to_vec();
            (input(a, Domain::AwayFromZero), Just(target))
        })
    ) {
        check(|v: &[Var<f64>]| v[0].broadcast_to(&target).square(), &[x])?;
    }

    #[test]
    fn sum_to_shape(
        (x, target) in broadcast_pair(3, 3).prop_flat_map(|(a, b)| {
            let full = broadcast_shapes("test", &a, &b).unwrap().to_vec();
            (input(full, Domain::AwayFromZero), Just(a))
        })
    ) {
        check(|v: &[Var<f64>]| v[0].sum_to_shape(&target).square(), &[x])?;
    }

    #[test]
    fn squeeze(
        (x, d) in shape(2, 3).prop_flat_map(|s| {
            let rank = s.len();
            (Just(s), 0..=rank)
        }).prop_flat_map(|(mut s, at)| {
            s.insert(at, 1);
            let rank = s.len() as isize;
            // The same dimension, written positive or negative.
            (input(s, Domain::AwayFromZero), prop_oneof![Just(at as isize), Just(at as isize - rank)])
        })
    ) {
        check(|v: &[Var<f64>]| v[0].squeeze(d).square(), &[x])?;
    }

    #[test]
    fn unsqueeze(
        (x, d) in shape(3, 3).prop_flat_map(|s| {
            let rank = s.len() as isize;
            (input(s, Domain::AwayFromZero), -(rank + 1)..=rank)
        })
    ) {
        check(|v: &[Var<f64>]| v[0].unsqueeze(d).square(), &[x])?;
    }

    #[test]
    fn split(
        (x, d, size) in common::shape_at_least_1d(3, 4).prop_flat_map(|s| {
            let rank = s.len();
            (Just(s), dim(rank))
        }).prop_flat_map(|(s, d)| {
            let total = s[resolve(d, s.len())];
            (input(s, Domain::AwayFromZero), Just(d), 1..=total)
        })
    ) {
        check(
            |v: &[Var<f64>]| {
                let pieces = v[0].split(size, d);
                // Weight each piece differently so a mixed-up gradient cannot pass.
                pieces
                    .iter()
                    .enumerate()
                    .map(|(i, p)| p.square().mul_scalar(i as f64 + 1.0))
                    .collect::<Vec<_>>()
            },
            &[x],
        )?;
    }

    #[test]
    fn chunk(
        (x, d, chunks) in common::shape_at_least_1d(3, 4).prop_flat_map(|s| {
            let rank = s.len();
            (input(s, Domain::AwayFromZero), dim(rank), 1usize..=5)
        })
    ) {
        check(
            |v: &[Var<f64>]| {
                v[0].chunk(chunks, d)
                    .iter()
                    .enumerate()
                    .map(|(i, p)| p.square().mul_scalar(i as f64 + 1.0))
                    .collect::<Vec<_>>()
            },
            &[x],
        )?;
    }

    #[test]
    fn cat(
        (inputs, d) in (common::shape_at_least_1d(3, 3), 1usize..=3).prop_flat_map(|(s, count)| {
            let rank = s.len();
            (Just(s), Just(count), dim(rank), prop::collection::vec(1usize..=3, count))
        }).prop_flat_map(|(s, count, d, sizes)| {
            let along = resolve(d, s.len());
            let inputs: Vec<_> = (0..count)
                .map(|i| {
                    let mut shape = s.clone();
                    shape[along] = sizes[i];
                    input(shape, Domain::AwayFromZero)
                })
                .collect();
            (inputs, Just(d))
        })
    ) {
        check(
            |v: &[Var<f64>]| {
                let refs: Vec<&Var<f64>> = v.iter().collect();
                Var::cat(&refs, d).square()
            },
            &inputs,
        )?;
    }

    #[test]
    fn stack(
        (inputs, d) in (shape(2, 3), 1usize..=3).prop_flat_map(|(s, count)| {
            let rank = s.len() as isize + 1;
            (prop::collection::vec(input(s, Domain::AwayFromZero), count), -rank..rank)
        })
    ) {
        check(
            |v: &[Var<f64>]| {
                let refs: Vec<&Var<f64>> = v.iter().collect();
                Var::stack(&refs, d).square()
            },
            &inputs,
        )?;
    }

    #[test]
    fn gather((x, d, index) in gather_case()) {
        check(|v: &[Var<f64>]| v[0].gather(d, &index).square(), &[x])?;
    }

    #[test]
    fn scatter_add(
        ((x, d, index), src_values) in gather_case().prop_flat_map(|(x, d, index)| {
            let count = index.len();
            (Just((x, d, index)), prop::collection::vec(tapeloop_autograd::strategies::well_conditioned(), count))
        })
    ) {
        let src = Tensor::from_vec(src_values, index.shape());
        // Squared, so each gradient depends on the sums that repeated indices build up.
        check(|v: &[Var<f64>]| v[0].scatter_add(d, &index, &v[1]).square(), &[x, src])?;
    }

    #[test]
    fn index_select(
        (x, d, indices) in common::shape_at_least_1d(3, 3).prop_flat_map(|s| {
            let rank = s.len();
            (Just(s), dim(rank))
        }).prop_flat_map(|(s, d)| {
            let size = s[resolve(d, s.len())];
            (input(s, Domain::AwayFromZero), Just(d), prop::collection::vec(0..size, 1..=4))
        })
    ) {
        check(|v: &[Var<f64>]| v[0].index_select(d, &indices).square(), &[x])?;
    }
}

/// An input, a dimension, and a gather index that fits it (no larger than the input outside
/// `dim`, any length along it, repeats allowed).
fn gather_case() -> BoxedStrategy<(Tensor<f64>, isize, Indices)> {
    common::shape_at_least_1d(3, 3)
        .prop_flat_map(|s| {
            let rank = s.len();
            (Just(s), dim(rank))
        })
        .prop_flat_map(|(s, d)| {
            let along = resolve(d, s.len());
            let index_shape: Vec<BoxedStrategy<usize>> = s
                .iter()
                .enumerate()
                .map(|(i, &size)| {
                    if i == along {
                        (1usize..=4).boxed()
                    } else {
                        (1..=size).boxed()
                    }
                })
                .collect();
            (Just(s), Just(d), index_shape)
        })
        .prop_flat_map(|(s, d, index_shape)| {
            let size = s[resolve(d, s.len())];
            let count: usize = index_shape.iter().product();
            (
                input(s, Domain::AwayFromZero),
                Just(d),
                prop::collection::vec(0..size, count)
                    .prop_map(move |data| Indices::new(data, &index_shape)),
            )
        })
        .boxed()
}
