//! Gradients kept as sums of matrix products until they are needed.
//!
//! A weight shared by T time steps, used as `h_t · Wᵀ`, receives T gradients `h_tᵀ g_t`. Formed
//! one by one, each is a thin GEMM (the inner dimension is the batch) followed by a full-size
//! addition into the accumulated gradient: T passes over a weight-sized buffer. Kept as factor
//! pairs and summed at the end, the same sum is one GEMM whose inner dimension is T·batch —
//! `Σ_t L_t R_t = [L_1 … L_T] · [R_1; …; R_T]` — which is how fused RNN kernels form weight
//! gradients. The engine does this for any 2-D `matmul` outside `create_graph`, so a user's own
//! cell gets it too.

use tensor::{Element, Tensor};

/// `Σ lefts[i] · rights[i]`, not yet evaluated. Every `lefts[i]` is `[m, k_i]`, every
/// `rights[i]` is `[k_i, n]`.
pub(crate) struct ProductSum<T: Element> {
    lefts: Vec<Tensor<T>>,
    rights: Vec<Tensor<T>>,
    /// Elements held by the factors, to bound the memory a long sequence can pin.
    held: usize,
}

impl<T: Element> Default for ProductSum<T> {
    fn default() -> Self {
        Self {
            lefts: Vec::new(),
            rights: Vec::new(),
            held: 0,
        }
    }
}

impl<T: Element> ProductSum<T> {
    pub(crate) fn is_empty(&self) -> bool {
        self.lefts.is_empty()
    }

    /// Adds `left · right` to the sum.
    pub(crate) fn push(&mut self, left: Tensor<T>, right: Tensor<T>) {
        debug_assert_eq!(left.shape()[1], right.shape()[0]);
        self.held += left.len() + right.len();
        self.lefts.push(left);
        self.rights.push(right);
    }

    /// Adds every product of `other`.
    pub(crate) fn append(&mut self, other: ProductSum<T>) {
        self.held += other.held;
        self.lefts.extend(other.lefts);
        self.rights.extend(other.rights);
    }

    /// True when the factors hold so much more than the result would that it is time to
    /// evaluate: at most eight result-sized buffers (and at least 8M elements) stay pinned, so
    /// a 1,000-step sequence cannot keep every step's gradient alive.
    pub(crate) fn is_due(&self) -> bool {
        let Some((first_left, first_right)) = self.lefts.first().zip(self.rights.first()) else {
            return false;
        };
        let result = first_left.shape()[0] * first_right.shape()[1];
        self.held > (8 * result).max(1 << 23)
    }

    /// The transposed sum: `(L R)ᵀ = Rᵀ Lᵀ`, views only.
    pub(crate) fn transposed(self) -> Self {
        Self {
            lefts: self.rights.iter().map(Tensor::t).collect(),
            rights: self.lefts.iter().map(Tensor::t).collect(),
            held: self.held,
        }
    }

    /// The sum as one tensor: a single GEMM over the stacked factors.
    pub(crate) fn evaluate(self) -> Tensor<T> {
        if self.lefts.len() == 1 {
            return self.lefts[0].matmul(&self.rights[0]);
        }
        let rights: Vec<&Tensor<T>> = self.rights.iter().collect();
        stack_columns(&self.lefts).matmul(&Tensor::cat(&rights, 0))
    }
}

/// `[L_1 … L_T]` along columns. The left factors are usually transposed views of row-major
/// gradients (`g_tᵀ`); stacking the untransposed rows and transposing the result is then a
/// plain copy instead of a strided one.
fn stack_columns<T: Element>(lefts: &[Tensor<T>]) -> Tensor<T> {
    if lefts.iter().all(|l| l.t().is_contiguous()) {
        let rows: Vec<Tensor<T>> = lefts.iter().map(Tensor::t).collect();
        let rows: Vec<&Tensor<T>> = rows.iter().collect();
        Tensor::cat(&rows, 0).t()
    } else {
        let columns: Vec<&Tensor<T>> = lefts.iter().collect();
        Tensor::cat(&columns, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor::seeded_rng;

    #[test]
    fn a_sum_of_products_equals_the_products_summed() {
        let mut rng = seeded_rng(3);
        let mut sum = ProductSum::default();
        let mut expected = Tensor::<f64>::zeros(&[4, 5]);
        for k in [2, 3, 1] {
            // Left factors as transposed views, the layout a weight gradient arrives in.
            let left = Tensor::<f64>::randn(&[k, 4], &mut rng).t();
            let right = Tensor::<f64>::randn(&[k, 5], &mut rng);
            expected.add_assign(&left.matmul(&right));
            sum.push(left, right);
        }
        let got = sum.evaluate();
        for (g, e) in got.to_vec().iter().zip(expected.to_vec()) {
            assert!((g - e).abs() < 1e-12, "{g} vs {e}");
        }
        let mut again = ProductSum::default();
        again.push(
            Tensor::<f64>::from_vec(vec![1.0, 2.0], &[2, 1]),
            Tensor::from_vec(vec![3.0, 4.0], &[1, 2]),
        );
        assert_eq!(
            again.transposed().evaluate().to_vec(),
            vec![3.0, 6.0, 4.0, 8.0]
        );
    }
}
