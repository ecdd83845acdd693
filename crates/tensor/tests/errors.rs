//! The exact message of every error each `try_` op returns, and that the panicking twin panics
//! with the same text.

use tapeloop_tensor::{Indices, Tensor};

fn zeros(shape: &[usize]) -> Tensor<f32> {
    Tensor::zeros(shape)
}

#[track_caller]
fn assert_error<T: std::fmt::Debug>(result: tapeloop_tensor::Result<T>, expected: &str) {
    match result {
        Ok(value) => panic!("expected the error {expected:?}, got Ok({value:?})"),
        Err(error) => assert_eq!(error.to_string(), expected),
    }
}

#[test]
fn construction_and_element_access() {
    assert_error(
        Tensor::<f32>::try_from_vec(vec![1.0; 5], &[2, 3]),
        "from_vec: shape [2, 3] needs 6 elements but 5 were given",
    );
    assert_error(
        zeros(&[2, 3]).try_get(&[2, 0]),
        "get: index [2, 0] is out of bounds for shape [2, 3]",
    );
    assert_error(
        zeros(&[2, 3]).try_get(&[1]),
        "get: index [1] is out of bounds for shape [2, 3]",
    );
    assert_error(
        zeros(&[2, 3]).try_set(&[0, 3], 1.0),
        "set: index [0, 3] is out of bounds for shape [2, 3]",
    );
    assert_error(
        Tensor::<f32>::ones(&[3])
            .broadcast_to(&[2, 3])
            .try_set(&[0, 0], 1.0),
        "set: cannot write one element of a view whose elements overlap (shape [2, 3], strides [0, 1])",
    );
}

#[test]
fn views() {
    let a = zeros(&[2, 3]);
    assert_error(
        a.try_transpose(0, 2),
        "transpose: dimension 2 is out of range for a tensor of rank 2",
    );
    assert_error(
        a.try_transpose(-3, 0),
        "transpose: dimension -3 is out of range for a tensor of rank 2",
    );
    assert_error(
        zeros(&[3]).try_t(),
        "t: expects a 2-D tensor, got shape [3]",
    );
    assert_error(
        a.try_permute(&[0]),
        "permute: order [0] has 1 entries but the tensor of shape [2, 3] has rank 2",
    );
    assert_error(
        a.try_permute(&[1, -1]),
        "permute: order [1, -1] repeats dimension 1",
    );
    assert_error(
        a.try_permute(&[0, 2]),
        "permute: dimension 2 is out of range for a tensor of rank 2",
    );
    assert_error(
        a.try_narrow(1, 1, 3),
        "narrow: range 1..4 is out of bounds for dimension 1 of size 3 (shape [2, 3])",
    );
    assert_error(
        a.try_narrow(2, 0, 1),
        "narrow: dimension 2 is out of range for a tensor of rank 2",
    );
    assert_error(
        a.try_select(-2, 2),
        "select: index 2 is out of bounds for dimension 0 of size 2 (shape [2, 3])",
    );
    assert_error(
        a.try_select(5, 0),
        "select: dimension 5 is out of range for a tensor of rank 2",
    );
    assert_error(
        a.try_broadcast_to(&[2, 4]),
        "broadcast_to: cannot broadcast shape [2, 3] to [2, 4]",
    );
    assert_error(
        a.try_broadcast_to(&[3]),
        "broadcast_to: cannot broadcast shape [2, 3] to [3]",
    );
    assert_error(
        a.try_reshape(&[4, 2]),
        "reshape: cannot reshape [2, 3] (6 elements) to [4, 2] (8 elements)",
    );
    assert_error(
        a.try_squeeze(1),
        "squeeze: dimension 1 has size 3, not 1 (shape [2, 3])",
    );
    assert_error(
        a.try_squeeze(-3),
        "squeeze: dimension -3 is out of range for a tensor of rank 2",
    );
    assert_error(
        a.try_unsqueeze(4),
        "unsqueeze: dimension 4 is out of range for a tensor of rank 3",
    );
    assert_error(a.try_split(0, 0), "split: piece size must be positive");
    assert_error(
        a.try_split(1, 2),
        "split: dimension 2 is out of range for a tensor of rank 2",
    );
    assert_error(
        a.try_chunk(0, 1),
        "chunk: number of chunks must be positive",
    );
    assert_error(
        a.try_chunk(2, -3),
        "chunk: dimension -3 is out of range for a tensor of rank 2",
    );
}

#[test]
fn elementwise() {
    let (a, b) = (zeros(&[2, 3]), zeros(&[4, 1, 2]));
    let mismatch =
        "shapes [2, 3] and [4, 1, 2] cannot be broadcast: dimension -1 has sizes 3 and 2";
    for (name, result) in [
        ("add", a.try_add(&b)),
        ("sub", a.try_sub(&b)),
        ("mul", a.try_mul(&b)),
        ("div", a.try_div(&b)),
        ("maximum", a.try_maximum(&b)),
        ("minimum", a.try_minimum(&b)),
        ("pow", a.try_pow(&b)),
        ("eq_mask", a.try_eq_mask(&b)),
        ("ne_mask", a.try_ne_mask(&b)),
        ("lt_mask", a.try_lt_mask(&b)),
        ("le_mask", a.try_le_mask(&b)),
        ("gt_mask", a.try_gt_mask(&b)),
        ("ge_mask", a.try_ge_mask(&b)),
        ("zip_map", a.try_zip_map(&b, |x, y| x + y)),
    ] {
        assert_error(result, &format!("{name}: {mismatch}"));
    }
    assert_error(
        zeros(&[2]).try_where_cond(&zeros(&[2]), &zeros(&[3])),
        "where: shapes [2] and [3] cannot be broadcast: dimension -1 has sizes 2 and 3",
    );
    assert_error(
        zeros(&[3, 2]).try_where_cond(&zeros(&[3]), &zeros(&[2])),
        "where: shapes [3, 2] and [3] cannot be broadcast: dimension -1 has sizes 2 and 3",
    );
}

#[test]
fn reductions() {
    let a = zeros(&[2, 3]);
    let out_of_range =
        |op: &str| format!("{op}: dimension 2 is out of range for a tensor of rank 2");
    assert_error(a.try_sum(&[2], false), &out_of_range("sum"));
    assert_error(a.try_mean(&[2], true), &out_of_range("mean"));
    assert_error(a.try_max(&[2], false), &out_of_range("max"));
    assert_error(a.try_min(&[2], false), &out_of_range("min"));
    assert_error(a.try_norm_l2(&[2], false), &out_of_range("norm_l2"));
    assert_error(a.try_logsumexp(&[2], false), &out_of_range("logsumexp"));
    assert_error(a.try_softmax(2), &out_of_range("softmax"));
    assert_error(a.try_log_softmax(2), &out_of_range("log_softmax"));
    assert_error(a.try_argmax(2, false), &out_of_range("argmax"));
    assert_error(a.try_argmin(2, false), &out_of_range("argmin"));
    assert_error(
        a.try_sum(&[0, -2], false),
        "sum: dimension 0 is listed twice in [0, -2]",
    );
    assert_error(
        a.try_mean(&[1, 1], false),
        "mean: dimension 1 is listed twice in [1, 1]",
    );
    assert_error(
        a.try_norm_l2(&[1, 1], false),
        "norm_l2: dimension 1 is listed twice in [1, 1]",
    );
    let empty = zeros(&[2, 0]);
    assert_error(
        empty.try_max(&[1], false),
        "max: cannot reduce over an empty dimension (shape [2, 0])",
    );
    assert_error(
        empty.try_min(&[], false),
        "min: cannot reduce over an empty dimension (shape [2, 0])",
    );
    assert_error(
        empty.try_argmax(1, false),
        "argmax: dimension 1 is empty (shape [2, 0])",
    );
    assert_error(
        empty.try_argmin(-1, true),
        "argmin: dimension 1 is empty (shape [2, 0])",
    );
    assert_error(
        a.try_sum_to_shape(&[2]),
        "sum_to_shape: shape [2] does not broadcast to [2, 3]",
    );
    assert_error(
        a.try_sum_to_shape(&[1, 2, 3]),
        "sum_to_shape: cannot reduce shape [2, 3] to the larger rank of [1, 2, 3]",
    );
}

#[test]
fn matmul() {
    let e = |a: &[usize], b: &[usize]| zeros(a).try_matmul(&zeros(b));
    assert_error(
        e(&[3, 4], &[5, 6]),
        "matmul: [3, 4] x [5, 6]: inner dimensions 4 and 5 differ",
    );
    assert_error(
        e(&[], &[3]),
        "matmul: [] x [3]: both operands need at least one dimension",
    );
    assert_error(
        e(&[2, 1, 4], &[3, 4, 1]),
        "matmul: [2, 1, 4] x [3, 4, 1]: batch dimensions do not broadcast",
    );
}

#[test]
fn joins_and_indexing() {
    let a = zeros(&[2, 3]);
    assert_error(
        Tensor::<f32>::try_cat(&[], 0),
        "cat: needs at least one tensor",
    );
    assert_error(
        Tensor::try_cat(&[&a, &zeros(&[2, 4])], 0),
        "cat: shapes [2, 3], [2, 4] differ outside dimension 0",
    );
    assert_error(
        Tensor::try_cat(&[&a, &zeros(&[3])], 1),
        "cat: shapes [2, 3], [3] differ outside dimension 1",
    );
    assert_error(
        Tensor::try_cat(&[&a], 2),
        "cat: dimension 2 is out of range for a tensor of rank 2",
    );
    assert_error(
        Tensor::<f32>::try_stack(&[], 0),
        "stack: needs at least one tensor",
    );
    assert_error(
        Tensor::try_stack(&[&a, &zeros(&[3, 2])], 0),
        "stack: all tensors need the same shape, got [2, 3] and [3, 2]",
    );
    assert_error(
        Tensor::try_stack(&[&a], 3),
        "stack: dimension 3 is out of range for a tensor of rank 3",
    );
    assert_error(
        a.try_index_select(1, &[0, 3]),
        "index_select: index 3 is out of bounds for dimension 1 of size 3 (shape [2, 3])",
    );
    assert_error(
        a.try_index_select(2, &[0]),
        "index_select: dimension 2 is out of range for a tensor of rank 2",
    );
    assert_error(
        a.try_gather(1, &Indices::new(vec![0, 3], &[2, 1])),
        "gather: index 3 is out of bounds for dimension 1 of size 3",
    );
    assert_error(
        a.try_gather(1, &Indices::new(vec![0; 3], &[3, 1])),
        "gather: index of shape [3, 1] does not fit a tensor of shape [2, 3] along dimension 1",
    );
    assert_error(
        a.try_gather(0, &Indices::new(vec![0; 3], &[3])),
        "gather: index of shape [3] does not fit a tensor of shape [2, 3] along dimension 0",
    );
    let index = Indices::new(vec![0, 1], &[2, 1]);
    assert_error(
        a.try_scatter_add(1, &index, &zeros(&[1, 2])),
        "scatter_add: source shape [1, 2] differs from index shape [2, 1]",
    );
    assert_error(
        a.try_scatter_add(0, &Indices::new(vec![2, 0], &[2, 1]), &zeros(&[2, 1])),
        "scatter_add: index 2 is out of bounds for dimension 0 of size 2",
    );
    assert_error(
        a.try_scatter_add(0, &Indices::new(vec![0; 8], &[2, 4]), &zeros(&[2, 4])),
        "scatter_add: index of shape [2, 4] does not fit a tensor of shape [2, 3] along dimension 0",
    );
    assert_error(
        Tensor::<f32>::try_one_hot(&Indices::from_slice(&[1, 3]), 3),
        "one_hot: index 3 is out of range for 3 classes",
    );
}

#[test]
fn inplace() {
    let mut a = zeros(&[2, 2]);
    assert_error(
        a.try_zip_assign("axpy", &zeros(&[3]), |x, y| x + y),
        "axpy: cannot apply axpy in place: [3] does not broadcast to [2, 2]",
    );
    let mut expanded = zeros(&[1, 2]).broadcast_to(&[2, 2]);
    assert_error(
        expanded.try_zip_assign("copy_from", &zeros(&[2]), |_, y| y),
        "copy_from: cannot write in place to a view whose elements overlap (shape [2, 2], strides [0, 1]); call contiguous() first",
    );
}

#[test]
#[should_panic(expected = "transpose: dimension 2 is out of range for a tensor of rank 2")]
fn panicking_forms_panic_with_the_same_message() {
    zeros(&[2, 3]).transpose(0, 2);
}

#[test]
#[should_panic(expected = "dim: dimension 2 is out of range for a tensor of rank 2")]
fn dim_panics_on_a_bad_dimension() {
    zeros(&[2, 3]).dim(2);
}

#[test]
#[should_panic(expected = "item: the tensor has shape [2, 3] (6 elements), not one element")]
fn item_needs_one_element() {
    zeros(&[2, 3]).item();
}

#[test]
#[should_panic(expected = "arange: step must not be zero")]
fn arange_refuses_a_zero_step() {
    Tensor::<f32>::arange(0.0, 1.0, 0.0);
}

#[test]
#[should_panic(expected = "Indices::new: shape [2, 2] needs 4 indices but 3 were given")]
fn indices_need_a_matching_count() {
    Indices::new(vec![0, 1, 2], &[2, 2]);
}

#[test]
fn shapes_with_more_elements_than_a_usize_can_count_are_refused() {
    let huge = 1usize << 40;
    let too_many = |op: &str, shape: &str| {
        format!("{op}: shape {shape} has more elements than a usize can count")
    };
    let square = "[4294967296, 4294967296]";
    assert_error(
        Tensor::<f32>::try_from_vec(vec![], &[1 << 32, 1 << 32]),
        &too_many("from_vec", square),
    );
    // 2³² · 2³² wraps to 0 elements, which an empty tensor has: the reshape used to pass.
    assert_error(
        zeros(&[0]).try_reshape(&[1 << 32, 1 << 32]),
        &too_many("reshape", square),
    );
    assert_error(
        zeros(&[1, 1]).try_broadcast_to(&[1 << 32, 1 << 32]),
        &too_many("broadcast_to", square),
    );
    assert_error(
        tapeloop_tensor::broadcast_shapes("add", &[1 << 32, 1], &[1, 1 << 32]),
        &too_many("add", square),
    );
    // Empty tensors may have huge sizes, but what they multiply or join into must still count.
    let tall = zeros(&[huge, 0]);
    assert_eq!((tall.len(), zeros(&[huge, huge, 0]).len()), (0, 0));
    assert_error(
        tall.try_matmul(&zeros(&[0, huge])),
        "matmul: [1099511627776, 0] x [0, 1099511627776]: the result [1099511627776, 1099511627776] \
         has more elements than a usize can count",
    );
    let wide = zeros(&[0, 1 << 63]);
    assert_error(
        Tensor::try_cat(&[&wide, &wide], 1),
        "cat: the sizes along dimension 1 add up to more than a usize",
    );
    assert_error(
        Tensor::<f32>::try_one_hot(&Indices::from_slice(&[0, 1]), 1 << 63),
        "one_hot: shape [2, 9223372036854775808] has more elements than a usize can count",
    );
    // A range whose end overflows is out of bounds, not wrapped back into them.
    assert_error(
        zeros(&[3]).try_narrow(0, usize::MAX, 2),
        "narrow: range 18446744073709551615..18446744073709551617 is out of bounds for \
         dimension 0 of size 3 (shape [3])",
    );
    assert_error(
        zeros(&[3]).try_narrow_add_assign(0, usize::MAX, &zeros(&[2])),
        "narrow_add_assign: a block of shape [2] at 18446744073709551615 along dimension 0 does \
         not fit in shape [3]",
    );
    // Empty inputs whose results are empty but huge, or too large to count.
    let long_empty = zeros(&[1 << 62, 0]);
    let joined = Tensor::try_cat(&[&long_empty, &long_empty], 1).unwrap();
    assert_eq!(joined.shape(), &[1 << 62, 0]);
    assert_eq!(
        long_empty.to_string(),
        "tensor([], shape=[4611686018427387904, 0], dtype=f32)"
    );
    assert_error(
        zeros(&[0, huge, huge]).try_sum(&[0], false),
        "sum: shape [1, 1099511627776, 1099511627776] has more elements than a usize can count",
    );
    // The panicking constructors say the same. (Such a tensor was once built with no storage,
    // and a product of a view of it read past the end.)
    let panic_message = |make: fn() -> Tensor<f32>| {
        let panic = std::panic::catch_unwind(make).unwrap_err();
        panic.downcast_ref::<String>().cloned().unwrap_or_default()
    };
    assert_eq!(
        panic_message(|| zeros(&[1 << 32, 1 << 32])),
        too_many("full", square)
    );
    assert_eq!(
        panic_message(|| Tensor::eye(1 << 32)),
        too_many("eye", square)
    );
    assert_eq!(
        panic_message(|| Tensor::randn(&[1 << 32, 1 << 32], &mut tapeloop_tensor::seeded_rng(0))),
        too_many("random", square)
    );
    assert_eq!(
        panic_message(|| Tensor::arange(0.0, f32::INFINITY, 1.0)),
        "arange: start 0, end inf and step 1 must be finite"
    );
    assert_eq!(
        panic_message(|| Tensor::arange(0.0, 1e30, 1e-10)),
        "arange: 0 to 1000000000000000000000000000000 by 0.0000000001 is more elements than a usize can count"
    );
}
