//! Parameter initialization (PyTorch's default, Xavier/Glorot, orthogonal, forget-gate bias)
//! and the affine map every cell uses.

use autograd::{Parameter, Var};
use tensor::{Element, Tensor, TensorRng};

/// `x Wᵀ + b` with `W` of shape `[out, in]` (PyTorch's layout); `Wᵀ` is a view.
pub fn linear_projection<T: Element>(
    x: &Var<T>,
    weight: &Parameter<T>,
    bias: Option<&Parameter<T>>,
) -> Var<T> {
    let product = x.matmul(&weight.var().t());
    match bias {
        Some(b) => &product + &b.var(),
        None => product,
    }
}

/// `x W_ihᵀ + (b_ih + b_hh)`: the input projection of a cell whose hidden bias `b_hh` is added
/// outside any nonlinearity (RNN, LSTM), so it can join the input bias here, once for all
/// steps, instead of once per step on the recurrent path. A training step then spends one
/// broadcast add and one batch reduction less per time step (in the forward and backward
/// pass respectively); the gradients of both biases are unchanged, each the sum over steps
/// and batch of the pre-activation's gradient.
pub fn input_projection_with_both_biases<T: Element>(
    x: &Var<T>,
    weight_ih: &Parameter<T>,
    bias_ih: Option<&Parameter<T>>,
    bias_hh: Option<&Parameter<T>>,
) -> Var<T> {
    match (bias_ih, bias_hh) {
        (Some(b_ih), Some(b_hh)) => &x.matmul(&weight_ih.var().t()) + &(&b_ih.var() + &b_hh.var()),
        (bias, None) | (None, bias) => linear_projection(x, weight_ih, bias),
    }
}

/// A parameter drawn from PyTorch's default U(−1/√H, 1/√H), H the hidden size.
pub fn uniform_parameter<T: Element>(
    shape: &[usize],
    hidden_size: usize,
    rng: &mut TensorRng,
) -> Parameter<T> {
    let bound = T::from_f64_lossy(1.0 / (hidden_size.max(1) as f64).sqrt());
    Parameter::new(Tensor::rand_uniform(shape, -bound, bound, rng))
}

/// How a layer's weights are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Every parameter U(−1/√H, 1/√H): PyTorch's default.
    PyTorchDefault,
    /// Weights Xavier/Glorot-uniform per gate block, U(±√(6/(fan_in + fan_out))); biases 0.
    XavierUniform,
    /// Input weights Xavier-uniform, recurrent weights orthogonal per gate block (Saxe et al.
    /// 2014), biases 0.
    Orthogonal,
}

/// Draws a `rows × cols` matrix with orthonormal rows or columns (whichever is fewer) by
/// Gram–Schmidt on a Gaussian matrix, in f64 for accuracy.
pub fn orthogonal<T: Element>(rows: usize, cols: usize, rng: &mut TensorRng) -> Tensor<T> {
    let (long, short) = (rows.max(cols), rows.min(cols));
    // `short` orthonormal vectors of length `long`.
    let gaussian = Tensor::<f64>::randn(&[short, long], rng).to_vec();
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(short);
    for row in gaussian.chunks(long) {
        let mut v = row.to_vec();
        for _ in 0..2 {
            // Twice: re-orthogonalizing makes classical Gram–Schmidt numerically sound.
            for b in &basis {
                let dot: f64 = v.iter().zip(b).map(|(x, y)| x * y).sum();
                v.iter_mut().zip(b).for_each(|(x, y)| *x -= dot * y);
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        basis.push(v.into_iter().map(|x| x / norm).collect());
    }
    let mut data = vec![T::zero(); rows * cols];
    for (i, b) in basis.iter().enumerate() {
        for (j, &x) in b.iter().enumerate() {
            // Rows of the result are the basis vectors when rows ≤ cols, else columns.
            let (r, c) = if rows <= cols { (i, j) } else { (j, i) };
            data[r * cols + c] = T::from_f64_lossy(x);
        }
    }
    Tensor::from_vec(data, &[rows, cols])
}

/// Xavier/Glorot-uniform `rows × cols`.
pub fn xavier_uniform<T: Element>(rows: usize, cols: usize, rng: &mut TensorRng) -> Tensor<T> {
    let bound = T::from_f64_lossy((6.0 / (rows + cols) as f64).sqrt());
    Tensor::rand_uniform(&[rows, cols], -bound, bound, rng)
}

/// Re-draws a `[gates·H, in]` weight block by block (each gate its own matrix).
pub(crate) fn init_gate_blocks<T: Element>(
    weight: &Parameter<T>,
    gates: usize,
    draw: impl Fn(usize, usize, &mut TensorRng) -> Tensor<T>,
    rng: &mut TensorRng,
) {
    let shape = weight.shape();
    let block = shape[0] / gates;
    let blocks: Vec<Tensor<T>> = (0..gates).map(|_| draw(block, shape[1], rng)).collect();
    let refs: Vec<&Tensor<T>> = blocks.iter().collect();
    weight
        .set_value(Tensor::cat(&refs, 0))
        .expect("blocks have the parameter's shape");
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor::seeded_rng;

    #[test]
    fn orthogonal_matrices_are_orthonormal() {
        for (rows, cols) in [(5, 5), (3, 7), (7, 3)] {
            let q = orthogonal::<f64>(rows, cols, &mut seeded_rng(3));
            let gram = if rows <= cols {
                q.matmul(&q.t())
            } else {
                q.t().matmul(&q)
            };
            let n = rows.min(cols);
            let eye = Tensor::<f64>::eye(n);
            let err = gram.sub(&eye).abs().max(&[], false).item();
            assert!(err < 1e-12, "{rows}x{cols}: max |QQᵀ − I| = {err}");
        }
    }
}
