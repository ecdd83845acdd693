//! [`Parameter`]: a leaf that persists across training iterations.

use std::cell::RefCell;
use std::rc::Rc;

use tensor::{Element, Tensor, TensorError};

use crate::node::Node;
use crate::var::Var;

/// A trainable tensor that outlives the graphs built from it.
///
/// Each training iteration calls [`Parameter::var`] to use the parameter in that iteration's
/// graph; backward accumulates into the parameter's gradient; the optimizer reads
/// [`Parameter::grad`] and writes the new value with [`Parameter::update`]; the graph is freed
/// when the iteration's variables are dropped. Nothing grows from one iteration to the next.
///
/// Clones share the same parameter (as `Rc` does).
///
/// ```
/// use tapeloop_autograd::{Parameter, Tensor};
///
/// let w = Parameter::new(Tensor::<f64>::from_vec(vec![3.0], &[1]));
/// for _ in 0..100 {
///     let loss = w.var().square().sum(&[], false); // minimise w²
///     loss.backward().unwrap();
///     let step = w.grad().unwrap().mul_scalar(-0.1);
///     w.update(|value| value.add_assign(&step));
///     w.zero_grad();
/// }
/// assert!(w.value().item().abs() < 1e-6);
/// ```
#[derive(Clone)]
pub struct Parameter<T: Element> {
    inner: Rc<ParameterInner<T>>,
}

struct ParameterInner<T: Element> {
    value: RefCell<Tensor<T>>,
    leaf: Rc<Node<T>>,
}

impl<T: Element> Parameter<T> {
    /// A parameter with an initial value.
    pub fn new(value: Tensor<T>) -> Self {
        let leaf = Rc::new(Node::leaf(value.shape()));
        Self {
            inner: Rc::new(ParameterInner {
                value: RefCell::new(value),
                leaf,
            }),
        }
    }

    /// The parameter as a variable of the current graph (a leaf whose gradient accumulates
    /// into this parameter).
    pub fn var(&self) -> Var<T> {
        Var {
            value: self.inner.value.borrow().clone(),
            node: Some(self.inner.leaf.clone()),
        }
    }

    /// The current value (shares storage; cheap).
    pub fn value(&self) -> Tensor<T> {
        self.inner.value.borrow().clone()
    }

    /// The shape.
    pub fn shape(&self) -> Vec<usize> {
        self.inner.value.borrow().shape().to_vec()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.inner.value.borrow().len()
    }

    /// True when the parameter holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The accumulated gradient, if a backward pass reached this parameter.
    pub fn grad(&self) -> Option<Tensor<T>> {
        self.inner
            .leaf
            .grad
            .borrow()
            .as_ref()
            .map(|g| g.value.clone())
    }

    /// Replaces the accumulated gradient (e.g. after clipping).
    pub fn set_grad(&self, grad: Option<Tensor<T>>) {
        *self.inner.leaf.grad.borrow_mut() = grad.map(|g| Box::new(Var::constant(g)));
    }

    /// Clears the accumulated gradient.
    pub fn zero_grad(&self) {
        self.inner.leaf.grad.borrow_mut().take();
    }

    /// Changes the value in place (copy-on-write: graphs that saved the old value keep it).
    pub fn update(&self, f: impl FnOnce(&mut Tensor<T>)) {
        let mut value = self.inner.value.borrow_mut();
        let shape = value.shape().to_vec();
        f(&mut value);
        assert_eq!(
            value.shape(),
            &shape[..],
            "Parameter::update must keep the shape {shape:?}"
        );
    }

    /// Replaces the value; an error names both shapes when they differ.
    pub fn set_value(&self, value: Tensor<T>) -> Result<(), TensorError> {
        let current = self.shape();
        if value.shape() != &current[..] {
            return Err(TensorError::new(
                "set_value",
                format!(
                    "parameter has shape {:?} but the new value has shape {:?}",
                    current,
                    value.shape()
                ),
            ));
        }
        *self.inner.value.borrow_mut() = value;
        Ok(())
    }

    /// True when both handles are the same parameter.
    pub fn ptr_eq(&self, other: &Parameter<T>) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

impl<T: Element> std::fmt::Debug for Parameter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Parameter(shape={:?})", self.shape())
    }
}
