//! cat, stack, index_select, gather, scatter_add and one_hot on strided inputs against index
//! arithmetic.

mod common;

use common::*;
use proptest::prelude::*;
use tapeloop_tensor::{Indices, Tensor};

proptest! {
    #![proptest_config(config())]

    /// Concatenating the pieces of a split (some or all of them made contiguous) gives back
    /// the original; stacking selected slices does too.
    #[test]
    fn cat_undoes_split_and_stack_undoes_select(
        shape in shape_strategy().prop_filter("rank ≥ 1", |s| !s.is_empty()),
        storage in storage_strategy(), seed in any::<u64>(), size in 1usize..4,
    ) {
        let mut pick = Picker::new(seed);
        let x: Tensor<f64> = strided(&randn(&shape, seed), storage);
        let d = pick.below(shape.len());
        let pieces = x.split(size, d as isize);
        let mixed: Vec<Tensor<f64>> = pieces.iter().enumerate()
            .map(|(i, p)| if i % 2 == 0 { p.contiguous() } else { p.clone() })
            .collect();
        let refs: Vec<&Tensor<f64>> = mixed.iter().collect();
        assert_matches(&Tensor::cat(&refs, d as isize - shape.len() as isize), &Dense::of(&x));
        // All contiguous: appended row by row, without the strided copy.
        let compact: Vec<Tensor<f64>> = pieces.iter().map(Tensor::contiguous).collect();
        let refs: Vec<&Tensor<f64>> = compact.iter().collect();
        assert_matches(&Tensor::cat(&refs, d as isize), &Dense::of(&x));
        if shape[d] > 0 {
            let slices: Vec<Tensor<f64>> = (0..shape[d]).map(|i| x.select(d as isize, i)).collect();
            let refs: Vec<&Tensor<f64>> = slices.iter().collect();
            assert_matches(&Tensor::stack(&refs, d as isize), &Dense::of(&x));
        }
    }

    /// index_select, gather and scatter_add read and write the positions their definitions
    /// name; gather and scatter_add are each other's adjoint (⟨gather(x), g⟩ = ⟨x, scatter(g)⟩).
    #[test]
    fn indexing_follows_its_definition(
        shape in nonempty_shape_strategy().prop_filter("rank ≥ 1", |s| !s.is_empty()),
        storage in storage_strategy(), seed in any::<u64>(),
    ) {
        let mut pick = Picker::new(seed);
        let x: Tensor<f64> = strided(&randn(&shape, seed), storage);
        let r = Dense::of(&x);
        let d = pick.below(shape.len());

        let chosen: Vec<usize> = (0..pick.below(5)).map(|_| pick.below(shape[d])).collect();
        let mut selected_shape = shape.clone();
        selected_shape[d] = chosen.len();
        let want = Dense::from_fn(&selected_shape, |i| {
            let mut src = i.to_vec();
            src[d] = chosen[i[d]];
            r.at(&src)
        });
        assert_matches(&x.index_select(d as isize, &chosen), &want);

        // An index no larger than x outside `d`, of any length along `d`.
        let index_shape: Vec<usize> = shape.iter().enumerate()
            .map(|(k, &s)| if k == d { pick.below(4) } else { 1 + pick.below(s) })
            .collect();
        let index_values: Vec<usize> = (0..index_shape.iter().product::<usize>())
            .map(|_| pick.below(shape[d]))
            .collect();
        let index = Indices::new(index_values.clone(), &index_shape);
        let gathered = x.gather(d as isize, &index);
        let want = Dense::from_fn(&index_shape, |i| {
            let mut src = i.to_vec();
            src[d] = index_values[flat(&index_shape, i)];
            r.at(&src)
        });
        assert_matches(&gathered, &want);

        let g: Tensor<f64> = randn(&index_shape, seed ^ 1).tensor();
        let base: Tensor<f64> = strided(&randn(&shape, seed ^ 2), storage);
        let scattered = base.scatter_add(d as isize, &index, &g);
        let mut want = Dense::of(&base);
        let rg = Dense::of(&g);
        for i in indices(&index_shape) {
            let mut dst = i.clone();
            dst[d] = index_values[flat(&index_shape, &i)];
            let at = flat(&shape, &dst);
            want.data[at] += rg.at(&i);
        }
        assert_close(&scattered, &want, 1e-14);
        assert_eq!(Dense::of(&base), Dense::of(&strided::<f64>(&randn(&shape, seed ^ 2), storage)), "scatter_add must not change its input");

        let lhs: f64 = gathered.mul(&g).sum_all();
        let rhs: f64 = x.mul(&Tensor::zeros(&shape).scatter_add(d as isize, &index, &g)).sum_all();
        prop_assert!((lhs - rhs).abs() <= 1e-12 * (1.0 + lhs.abs()));
    }
}

#[test]
fn one_hot_rows() {
    let index = Indices::new(vec![2, 0, 1, 2], &[2, 2]);
    let hot = Tensor::<f64>::one_hot(&index, 3);
    assert_eq!(hot.shape(), &[2, 2, 3]);
    for (n, &class) in index.as_slice().iter().enumerate() {
        let row = hot.reshape(&[4, 3]).select(0, n).to_vec();
        let want: Vec<f64> = (0..3).map(|c| if c == class { 1.0 } else { 0.0 }).collect();
        assert_eq!(row, want);
    }
    assert_eq!(
        Tensor::<f32>::one_hot(&Indices::from_slice(&[]), 4).shape(),
        &[0, 4]
    );
}

#[test]
fn index_select_with_no_indices_is_empty() {
    let x = Tensor::<f32>::ones(&[3, 2]);
    assert_eq!(x.index_select(0, &[]).shape(), &[0, 2]);
}
