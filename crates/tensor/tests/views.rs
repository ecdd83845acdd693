//! Every view against a reference that computes each element from the original by index
//! arithmetic, on random shapes (rank ≤ 4, sizes 0–5) and on chains of views over strided bases.

mod common;

use common::*;
use proptest::prelude::*;
use tapeloop_tensor::Tensor;

/// A dimension as the test passes it: sometimes counted from the end.
fn as_arg(pick: &mut Picker, d: usize, rank: usize) -> isize {
    if pick.below(2) == 0 {
        d as isize
    } else {
        d as isize - rank as isize
    }
}

/// A shape with `count` elements and rank ≤ 5: random factors, with 1s (and, when `count` is 0,
/// at least one 0) mixed in.
fn reshape_target(pick: &mut Picker, count: usize) -> Vec<usize> {
    let rank = 1 + pick.below(4);
    let mut shape = Vec::new();
    if count == 0 {
        shape.push(0);
        while shape.len() < rank {
            shape.push(pick.below(4));
        }
    } else {
        let mut rest = count;
        while shape.len() + 1 < rank {
            let divisors: Vec<usize> = (1..=rest).filter(|&d| rest.is_multiple_of(d)).collect();
            let d = divisors[pick.below(divisors.len())];
            shape.push(d);
            rest /= d;
        }
        shape.push(rest);
    }
    if shape.len() < 5 && pick.below(3) == 0 {
        let at = pick.below(shape.len() + 1);
        shape.insert(at, 1);
    }
    let order = pick.permutation(shape.len());
    order.iter().map(|&i| shape[i]).collect()
}

/// Applies one randomly chosen view to `t` and the same transformation, by index arithmetic, to
/// its reference. Returns `None` when the chosen view does not apply to this shape.
fn apply_view(seed: u64, t: &Tensor<f64>, r: &Dense) -> Option<(Tensor<f64>, Dense, String)> {
    let mut pick = Picker::new(seed);
    let rank = r.shape.len();
    let shape = r.shape.clone();
    match pick.below(11) {
        0 if rank >= 1 => {
            let (d0, d1) = (pick.below(rank), pick.below(rank));
            let (a0, a1) = (as_arg(&mut pick, d0, rank), as_arg(&mut pick, d1, rank));
            let mut out_shape = shape.clone();
            out_shape.swap(d0, d1);
            let reference = Dense::from_fn(&out_shape, |i| {
                let mut src = i.to_vec();
                src.swap(d0, d1);
                r.at(&src)
            });
            Some((
                t.transpose(a0, a1),
                reference,
                format!("transpose({a0}, {a1})"),
            ))
        }
        1 => {
            let order = pick.permutation(rank);
            let args: Vec<isize> = order.iter().map(|&d| as_arg(&mut pick, d, rank)).collect();
            let out_shape: Vec<usize> = order.iter().map(|&d| shape[d]).collect();
            let reference = Dense::from_fn(&out_shape, |i| {
                let mut src = vec![0; rank];
                for (k, &d) in order.iter().enumerate() {
                    src[d] = i[k];
                }
                r.at(&src)
            });
            Some((t.permute(&args), reference, format!("permute({args:?})")))
        }
        2 if rank >= 1 => {
            let d = pick.below(rank);
            let start = pick.below(shape[d] + 1);
            let len = pick.below(shape[d] - start + 1);
            let arg = as_arg(&mut pick, d, rank);
            let mut out_shape = shape.clone();
            out_shape[d] = len;
            let reference = Dense::from_fn(&out_shape, |i| {
                let mut src = i.to_vec();
                src[d] += start;
                r.at(&src)
            });
            Some((
                t.narrow(arg, start, len),
                reference,
                format!("narrow({arg}, {start}, {len})"),
            ))
        }
        3 if rank >= 1 && shape.iter().any(|&s| s > 0) => {
            let candidates: Vec<usize> = (0..rank).filter(|&d| shape[d] > 0).collect();
            let d = candidates[pick.below(candidates.len())];
            let index = pick.below(shape[d]);
            let arg = as_arg(&mut pick, d, rank);
            let mut out_shape = shape.clone();
            out_shape.remove(d);
            let reference = Dense::from_fn(&out_shape, |i| {
                let mut src = i.to_vec();
                src.insert(d, index);
                r.at(&src)
            });
            Some((
                t.select(arg, index),
                reference,
                format!("select({arg}, {index})"),
            ))
        }
        4 => {
            // Size-1 dimensions grow to 0–3, and maybe one new leading dimension appears.
            let mut target: Vec<usize> = shape
                .iter()
                .map(|&s| if s == 1 { pick.below(4) } else { s })
                .collect();
            if rank < 5 && pick.below(2) == 0 {
                target.insert(0, pick.below(4));
            }
            let reference = Dense::from_fn(&target, |i| broadcast_at(r, i));
            let view = if pick.below(2) == 0 {
                t.broadcast_to(&target)
            } else {
                t.expand(&target)
            };
            Some((view, reference, format!("broadcast_to({target:?})")))
        }
        5 => {
            let target = reshape_target(&mut pick, r.len());
            let reference = Dense {
                shape: target.clone(),
                data: r.data.clone(),
            };
            let out = t.reshape(&target);
            if t.is_contiguous() {
                assert!(
                    out.shares_storage(t),
                    "reshape of a contiguous tensor must be a view"
                );
            }
            if !out.shares_storage(t) {
                assert!(out.is_contiguous(), "a reshape copy is row-major");
            }
            Some((out, reference, format!("reshape({target:?})")))
        }
        6 if shape.contains(&1) => {
            let ones: Vec<usize> = (0..rank).filter(|&d| shape[d] == 1).collect();
            let d = ones[pick.below(ones.len())];
            let arg = as_arg(&mut pick, d, rank);
            let mut out_shape = shape.clone();
            out_shape.remove(d);
            let reference = Dense::from_fn(&out_shape, |i| {
                let mut src = i.to_vec();
                src.insert(d, 0);
                r.at(&src)
            });
            Some((t.squeeze(arg), reference, format!("squeeze({arg})")))
        }
        7 if rank < 5 => {
            let d = pick.below(rank + 1);
            let arg = as_arg(&mut pick, d, rank + 1);
            let mut out_shape = shape.clone();
            out_shape.insert(d, 1);
            let reference = Dense::from_fn(&out_shape, |i| {
                let mut src = i.to_vec();
                src.remove(d);
                r.at(&src)
            });
            Some((t.unsqueeze(arg), reference, format!("unsqueeze({arg})")))
        }
        8 if rank >= 1 => {
            let d = pick.below(rank);
            let size = 1 + pick.below(shape[d] + 1);
            let arg = as_arg(&mut pick, d, rank);
            let pieces = t.split(size, arg);
            // PyTorch: ceil(n / size) pieces, and one (empty) piece for an empty dimension.
            let expected = shape[d].div_ceil(size).max(1);
            assert_eq!(
                pieces.len(),
                expected,
                "split({size}, {arg}) of {shape:?}: piece count"
            );
            let mut start = 0;
            for piece in &pieces {
                assert!(piece.shares_storage(t), "split pieces are views");
                let len = piece.shape()[d];
                assert_eq!(len, size.min(shape[d] - start));
                let mut out_shape = shape.clone();
                out_shape[d] = len;
                let reference = Dense::from_fn(&out_shape, |i| {
                    let mut src = i.to_vec();
                    src[d] += start;
                    r.at(&src)
                });
                assert_matches(piece, &reference);
                start += len;
            }
            assert_eq!(start, shape[d], "split pieces cover the dimension");
            let k = pick.below(pieces.len());
            let mut out_shape = shape.clone();
            out_shape[d] = pieces[k].shape()[d];
            let reference = Dense::from_fn(&out_shape, |i| {
                let mut src = i.to_vec();
                src[d] += k * size;
                r.at(&src)
            });
            Some((
                pieces[k].clone(),
                reference,
                format!("split({size}, {arg})[{k}]"),
            ))
        }
        9 if rank >= 1 => {
            let d = pick.below(rank);
            let chunks = 1 + pick.below(6);
            let arg = as_arg(&mut pick, d, rank);
            let pieces = t.chunk(chunks, arg);
            // PyTorch: pieces of ceil(n / chunks), so possibly fewer than `chunks`; an empty
            // dimension gives `chunks` empty pieces.
            let size = shape[d].div_ceil(chunks);
            let expected = if shape[d] == 0 {
                chunks
            } else {
                shape[d].div_ceil(size)
            };
            assert_eq!(
                pieces.len(),
                expected,
                "chunk({chunks}, {arg}) of {shape:?}: piece count"
            );
            let k = pick.below(pieces.len());
            let start = k * size;
            let mut out_shape = shape.clone();
            out_shape[d] = size.min(shape[d] - start.min(shape[d]));
            let reference = Dense::from_fn(&out_shape, |i| {
                let mut src = i.to_vec();
                src[d] += start;
                r.at(&src)
            });
            Some((
                pieces[k].clone(),
                reference,
                format!("chunk({chunks}, {arg})[{k}]"),
            ))
        }
        10 if rank == 2 => {
            let reference = Dense::from_fn(&[shape[1], shape[0]], |i| r.at(&[i[1], i[0]]));
            Some((t.t(), reference, "t()".into()))
        }
        _ => None,
    }
}

proptest! {
    #![proptest_config(config())]

    /// A chain of up to six random views over a (possibly strided) base matches the reference
    /// after every step, and every step but a reshape copy shares the base's storage.
    #[test]
    fn view_chains_match_index_arithmetic(
        shape in shape_strategy(),
        storage in storage_strategy(),
        steps in prop::collection::vec(any::<u64>(), 1..=6),
    ) {
        // Distinct values (the row-major position) so a wrong stride cannot go unnoticed; for a
        // broadcast base the reference is read back from the base itself.
        let values = Dense::from_fn(&shape, |i| flat(&shape, i) as f64 + 0.5);
        let base: Tensor<f64> = strided(&values, storage);
        let mut reference = Dense::of(&base);
        if !matches!(storage, Storage::Broadcast(_)) {
            prop_assert_eq!(&reference, &values);
        }
        let mut t = base.clone();
        let mut history = Vec::new();
        for seed in steps {
            if let Some((next, next_reference, what)) = apply_view(seed, &t, &reference) {
                history.push(what);
                assert_matches(&next, &next_reference);
                let copied = history.last().unwrap().starts_with("reshape") && !next.shares_storage(&t);
                if !copied {
                    prop_assert!(next.shares_storage(&t), "{:?} copied", history);
                }
                // A contiguous copy holds the same elements.
                assert_matches(&next.contiguous(), &next_reference);
                t = next;
                reference = next_reference;
            }
        }
    }
}

#[test]
fn reshape_is_a_view_when_strides_allow_and_a_copy_otherwise() {
    let a = Tensor::<f32>::arange(0.0, 24.0, 1.0).reshape(&[2, 3, 4]);
    // Contiguous: always a view.
    let v = a.reshape(&[6, 4]);
    assert!(v.shares_storage(&a));
    // Narrowing the last dimension keeps rows as runs: splitting the leading dimensions is a view.
    let narrowed = a.narrow(2, 1, 2); // [2, 3, 2], strides [12, 4, 1]
    let split = narrowed.reshape(&[2, 3, 2, 1]);
    assert!(split.shares_storage(&a));
    assert_eq!(split.strides(), &[12, 4, 1, 1]);
    assert_eq!(split.to_vec(), narrowed.to_vec());
    // Merging across the gap is impossible: a copy with the same elements.
    let merged = narrowed.reshape(&[6, 2]);
    assert!(
        merged.shares_storage(&a),
        "dims 0 and 1 are back to back (12 = 3·4)"
    );
    let flat_copy = narrowed.reshape(&[12]);
    assert!(!flat_copy.shares_storage(&a));
    assert_eq!(
        flat_copy.to_vec(),
        vec![
            1.0, 2.0, 5.0, 6.0, 9.0, 10.0, 13.0, 14.0, 17.0, 18.0, 21.0, 22.0
        ]
    );
    // A transposed matrix cannot be flattened as a view.
    let t = a.select(0, 0).t(); // [4, 3]
    let flat_t = t.reshape(&[12]);
    assert!(!flat_t.shares_storage(&a));
    assert_eq!(
        flat_t.to_vec(),
        vec![0.0, 4.0, 8.0, 1.0, 5.0, 9.0, 2.0, 6.0, 10.0, 3.0, 7.0, 11.0]
    );
    // …but splitting one of its dimensions can be.
    let split_t = t.reshape(&[2, 2, 3]);
    assert!(split_t.shares_storage(&a));
    assert_eq!(split_t.to_vec(), t.to_vec());
}

#[test]
fn views_of_empty_tensors_stay_inside_their_storage() {
    // A [0, 3] tensor transposed to [3, 0] has strides [1, 3]: selecting or narrowing along the
    // non-empty dimension must not move the offset past the (empty) storage.
    let empty = Tensor::<f32>::zeros(&[0, 3]).t();
    let row = empty.select(0, 2);
    assert_eq!(row.shape(), &[0]);
    assert_eq!(row.to_vec(), Vec::<f32>::new());
    assert_eq!(row.contiguous().shape(), &[0]);
    let block = empty.narrow(0, 2, 1);
    assert_eq!(block.shape(), &[1, 0]);
    assert_eq!(block.to_vec(), Vec::<f32>::new());
    assert_eq!(block.exp().shape(), &[1, 0]);
    assert_eq!(block.sum(&[0], false).shape(), &[0]);
}

#[test]
fn split_and_chunk_of_an_empty_dimension_follow_pytorch() {
    let t = Tensor::<f32>::zeros(&[2, 0]);
    let pieces = t.split(3, 1);
    assert_eq!(pieces.len(), 1);
    assert_eq!(pieces[0].shape(), &[2, 0]);
    let gates = t.chunk(4, 1);
    assert_eq!(gates.len(), 4);
    assert!(gates.iter().all(|g| g.shape() == [2, 0]));
}

#[test]
fn flatten_and_expand_alias() {
    let a = Tensor::<f32>::arange(0.0, 6.0, 1.0).reshape(&[2, 3]);
    assert_eq!(a.flatten().shape(), &[6]);
    assert!(a.flatten().shares_storage(&a));
    assert_eq!(a.t().flatten().to_vec(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    let row = a.select(0, 1);
    assert_eq!(
        row.expand(&[2, 3]).to_vec(),
        vec![3.0, 4.0, 5.0, 3.0, 4.0, 5.0]
    );
    assert_eq!(row.expand(&[2, 3]).strides(), &[0, 1]);
}
