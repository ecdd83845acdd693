//! Matrix multiplication (`torch.matmul` rules). The rule for matrices is
//! `∂A = G Bᵀ`, `∂B = Aᵀ G`, with transposes as views (no copies); batch dimensions that were
//! broadcast are summed back. Vector operands are handled as views of matrices.

use std::cell::RefCell;

use tensor::{Element, TensorError};

use crate::node::{BackwardContext, Gradients, Shortcut};
use crate::ops::panicking_forms;
use crate::var::Var;

impl<T: Element> Var<T> {
    /// Matrix product with broadcasting batch dimensions.
    #[track_caller]
    pub fn try_matmul(&self, other: &Var<T>) -> Result<Var<T>, TensorError> {
        if self.rank() == 1 || other.rank() == 1 {
            if self.rank() == 0 || other.rank() == 0 {
                return self.value.try_matmul(&other.value).map(Var::constant);
            }
            // Lift vectors to matrices so one rule serves every case; errors name the shapes
            // the caller gave.
            let a = if self.rank() == 1 {
                self.unsqueeze(0)
            } else {
                self.clone()
            };
            let b = if other.rank() == 1 {
                other.unsqueeze(-1)
            } else {
                other.clone()
            };
            let mut product = match a.try_matmul(&b) {
                Ok(p) => p,
                Err(_) => return self.value.try_matmul(&other.value).map(Var::constant),
            };
            if other.rank() == 1 {
                product = product.squeeze(-1);
            }
            if self.rank() == 1 {
                product = product.squeeze(if other.rank() == 1 { -1 } else { -2 });
            }
            return Ok(product);
        }
        let value = self.value.try_matmul(&other.value)?;
        let (a, b) = (self.clone(), other.clone());
        let rule = move |ctx: &BackwardContext<'_, T>| {
            let g = ctx.grad;
            Gradients::from_iter([
                ctx.needs[0].then(|| g.matmul(&b.transpose(-1, -2)).sum_to_shape(a.shape())),
                ctx.needs[1].then(|| a.transpose(-1, -2).matmul(g).sum_to_shape(b.shape())),
            ])
        };
        if self.rank() == 2 && other.rank() == 2 {
            // The engine may defer `b`'s gradient and sum every step's share in one GEMM.
            let lhs = RefCell::new(Some(Box::new(self.value.clone())));
            return Ok(Var::record_with_shortcut(
                "matmul",
                value,
                &[self, other],
                Shortcut::Matmul { lhs },
                rule,
            ));
        }
        Ok(Var::record("matmul", value, &[self, other], false, rule))
    }

    panicking_forms! {
        /// Matrix product; panics when the shapes do not fit.
        ///
        /// ```
        /// use tapeloop_autograd::{Var, Tensor};
        /// let x = Var::constant(Tensor::<f64>::ones(&[3, 2]));
        /// let w = Var::leaf(Tensor::<f64>::ones(&[4, 2]));
        /// let y = x.matmul(&w.t()); // [3, 4]
        /// y.sum(&[], false).backward().unwrap();
        /// assert_eq!(w.grad().unwrap().to_vec(), vec![3.0; 8]);
        /// ```
        fn matmul => try_matmul(other: &Var<T>) -> Var<T>;
    }
}
