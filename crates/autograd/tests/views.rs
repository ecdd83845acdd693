//! Splitting a variable into views: the pieces, their shapes and the error messages match
//! the tensor forms, and gradients flow back through every piece.

use tapeloop_autograd::{Tensor, Var};

#[test]
fn chunk_and_split_of_variables_match_the_tensor_forms() {
    let x = Var::leaf(Tensor::<f64>::arange(0.0, 10.0, 1.0).reshape(&[2, 5]));
    for chunks in 1..=6 {
        let vars = x.chunk(chunks, 1);
        let tensors = x.value().chunk(chunks, 1);
        assert_eq!(vars.len(), tensors.len(), "{chunks} chunks");
        for (v, t) in vars.iter().zip(&tensors) {
            assert_eq!(v.value().to_vec(), t.to_vec());
            assert_eq!(v.shape(), t.shape());
        }
    }
    let pieces = x.split(2, -1);
    assert_eq!(
        pieces.iter().map(|p| p.shape()[1]).collect::<Vec<_>>(),
        vec![2, 2, 1]
    );
    // An empty dimension still gives `chunks` pieces (an LSTM with hidden size 0 takes four).
    let empty = Var::leaf(Tensor::<f64>::zeros(&[3, 0]));
    assert_eq!(empty.chunk(4, 1).len(), 4);
    assert_eq!(empty.value().chunk(4, 1).len(), 4);
    assert_eq!(
        x.try_chunk(0, 1).unwrap_err().to_string(),
        "chunk: number of chunks must be positive"
    );
    assert_eq!(
        x.try_chunk(2, 2).unwrap_err().to_string(),
        "chunk: dimension 2 is out of range for a tensor of rank 2"
    );
    assert_eq!(
        x.try_split(0, 0).unwrap_err().to_string(),
        "split: piece size must be positive"
    );
    // Gradients flow back through every piece.
    let total = x
        .chunk(3, 1)
        .iter()
        .map(|p| p.sum(&[], false))
        .reduce(|a, b| &a + &b);
    total.unwrap().backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec(), vec![1.0; 10]);
}
