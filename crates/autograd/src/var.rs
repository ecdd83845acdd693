//! [`Var`]: a tensor that may be recorded on the tape.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::Location;
use std::rc::Rc;

use smallvec::SmallVec;
use tensor::{Element, Tensor};

use crate::engine::{self, BackwardOptions};
use crate::error::{AnomalyReport, AutogradError, location_string};
use crate::mode;
use crate::node::{BackwardContext, Gradients, LiveToken, Node, NodeKind, Origin, Shortcut};

/// A tensor value plus, when it requires gradients, its node on the tape.
///
/// Ops on variables that require gradients are recorded (unless inside [`no_grad`](crate::no_grad));
/// [`Var::backward`] walks the recorded ops in reverse and accumulates gradients into the
/// leaves. A variable used several times (a weight shared by every time step) receives the sum
/// of its gradients, which is how backprop through time comes out of the tape.
///
/// Cloning a `Var` is cheap (reference counts) and the clone is the same variable.
///
/// ```
/// use tapeloop_autograd::{Var, Tensor};
///
/// let x = Var::leaf(Tensor::<f64>::from_vec(vec![1.0, 2.0], &[2]));
/// let y = (&x * &x).sum(&[], false); // y = Σ x²
/// y.backward().unwrap();
/// assert_eq!(x.grad().unwrap().to_vec(), vec![2.0, 4.0]); // ∂y/∂x = 2x
/// ```
pub struct Var<T: Element> {
    pub(crate) value: Tensor<T>,
    pub(crate) node: Option<Rc<Node<T>>>,
}

impl<T: Element> Clone for Var<T> {
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            node: self.node.clone(),
        }
    }
}

impl<T: Element> Var<T> {
    /// A variable that never requires gradients.
    pub fn constant(value: Tensor<T>) -> Self {
        Self { value, node: None }
    }

    /// A leaf that requires gradients: its gradient accumulates into [`Var::grad`].
    pub fn leaf(value: Tensor<T>) -> Self {
        let node = Rc::new(Node::leaf(value.shape()));
        Self {
            value,
            node: Some(node),
        }
    }

    /// The value.
    pub fn value(&self) -> &Tensor<T> {
        &self.value
    }

    /// The value's shape.
    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    /// The value's rank.
    pub fn rank(&self) -> usize {
        self.value.rank()
    }

    /// The size of one dimension (negative counts from the end).
    #[track_caller]
    pub fn dim(&self, dim: isize) -> usize {
        self.value.dim(dim)
    }

    /// The single element of a one-element variable.
    #[track_caller]
    pub fn item(&self) -> T {
        self.value.item()
    }

    /// True when gradients flow into this variable.
    pub fn requires_grad(&self) -> bool {
        self.node.is_some()
    }

    /// True for variables created by the user (constants and [`Var::leaf`]s), false for op
    /// results.
    pub fn is_leaf(&self) -> bool {
        self.node
            .as_ref()
            .is_none_or(|n| matches!(n.kind, NodeKind::Leaf))
    }

    /// The name of the op that produced this variable (`"leaf"` or `"constant"` otherwise).
    pub fn op_name(&self) -> &'static str {
        self.node.as_ref().map_or("constant", |n| n.op)
    }

    /// The same value, cut from the graph: gradients stop here. This is how truncated backprop
    /// through time carries state from one chunk to the next.
    pub fn detach(&self) -> Self {
        Self::constant(self.value.clone())
    }

    /// The gradient accumulated by backward passes: for leaves always, for op results after
    /// [`Var::retain_grad`]. `None` before any backward pass reached it.
    pub fn grad(&self) -> Option<Tensor<T>> {
        self.grad_var().map(|g| g.value)
    }

    /// The gradient as a variable; connected to the graph when the backward pass that produced
    /// it ran with `create_graph`.
    pub fn grad_var(&self) -> Option<Var<T>> {
        self.node
            .as_ref()
            .and_then(|n| n.grad.borrow().as_deref().cloned())
    }

    /// Clears the accumulated gradient.
    pub fn zero_grad(&self) {
        if let Some(node) = &self.node {
            node.grad.borrow_mut().take();
        }
    }

    /// Keeps this op result's gradient after backward so [`Var::grad`] can read it (PyTorch's
    /// `retain_grad`): e.g. ∂L/∂h_t for every time step t.
    pub fn retain_grad(&self) -> Result<(), AutogradError> {
        let node = self.node.as_ref().ok_or(AutogradError::NoGraph)?;
        node.retains_grad.set(true);
        Ok(())
    }

    /// Calls `hook` with the gradient flowing into this variable during backward; if it
    /// returns a tensor, that replaces the gradient (PyTorch's `register_hook`).
    ///
    /// ```
    /// use std::{cell::RefCell, rc::Rc};
    /// use tapeloop_autograd::{Var, Tensor};
    ///
    /// let x = Var::leaf(Tensor::<f64>::ones(&[3]));
    /// let h = x.tanh();
    /// let seen = Rc::new(RefCell::new(None));
    /// let store = seen.clone();
    /// h.register_hook(move |g| {
    ///     *store.borrow_mut() = Some(g.value().clone());
    ///     None
    /// })
    /// .unwrap();
    /// h.sum(&[], false).backward().unwrap();
    /// assert_eq!(seen.borrow().as_ref().unwrap().to_vec(), vec![1.0; 3]);
    /// ```
    pub fn register_hook(
        &self,
        hook: impl Fn(&Var<T>) -> Option<Var<T>> + 'static,
    ) -> Result<(), AutogradError> {
        let node = self.node.as_ref().ok_or(AutogradError::NoGraph)?;
        node.hooks.borrow_mut().push(Box::new(hook));
        Ok(())
    }

    /// Backpropagates from this single-element variable: every leaf it depends on receives
    /// ∂self/∂leaf added to its gradient. The graph is freed afterwards.
    pub fn backward(&self) -> Result<(), AutogradError> {
        if self.value.len() != 1 {
            return Err(AutogradError::NonScalarOutput {
                shape: self.shape().to_vec(),
            });
        }
        let seed = Tensor::ones(self.shape());
        self.backward_with(&seed, BackwardOptions::default())
    }

    /// Backpropagates a seed gradient (∂L/∂self) of this variable's shape.
    pub fn backward_with(
        &self,
        seed: &Tensor<T>,
        options: BackwardOptions,
    ) -> Result<(), AutogradError> {
        if let Some(report) = mode::take_first_anomaly() {
            return Err(AutogradError::Anomaly(report));
        }
        engine::backward(
            std::slice::from_ref(self),
            &[Var::constant(seed.clone())],
            options,
        )
    }

    /// Records an op. `inputs` are the op's variable inputs; `backward` maps ∂L/∂output to
    /// ∂L/∂input for each. Use this to add an op of your own (written with existing ops, its
    /// backward is differentiable again).
    ///
    /// ```
    /// use tapeloop_autograd::{Var, Gradients, Tensor};
    ///
    /// // softplus(x) = log(1 + eˣ), derivative sigmoid(x)
    /// fn softplus(x: &Var<f64>) -> Var<f64> {
    ///     let value = x.value().exp().add_scalar(1.0).log();
    ///     let input = x.clone();
    ///     Var::record("softplus", value, &[x], false, move |ctx| {
    ///         Gradients::from_iter([Some(ctx.grad * &input.sigmoid())])
    ///     })
    /// }
    /// let x = Var::leaf(Tensor::<f64>::zeros(&[1]));
    /// softplus(&x).sum(&[], false).backward().unwrap();
    /// assert_eq!(x.grad().unwrap().to_vec(), vec![0.5]);
    /// ```
    #[track_caller]
    pub fn record(
        op: &'static str,
        value: Tensor<T>,
        inputs: &[&Var<T>],
        save_output: bool,
        backward: impl Fn(&BackwardContext<'_, T>) -> Gradients<T> + 'static,
    ) -> Var<T> {
        Self::record_node(
            op,
            value,
            inputs,
            save_output,
            None,
            Box::new(backward),
            Location::caller(),
        )
    }

    /// Records an op whose structure (see [`Shortcut`]) the engine may exploit outside
    /// `create_graph`; `backward` must still be the complete rule.
    #[track_caller]
    pub(crate) fn record_with_shortcut(
        op: &'static str,
        value: Tensor<T>,
        inputs: &[&Var<T>],
        shortcut: Shortcut<T>,
        backward: impl Fn(&BackwardContext<'_, T>) -> Gradients<T> + 'static,
    ) -> Var<T> {
        Self::record_node(
            op,
            value,
            inputs,
            false,
            Some(shortcut),
            Box::new(backward),
            Location::caller(),
        )
    }

    fn record_node(
        op: &'static str,
        value: Tensor<T>,
        inputs: &[&Var<T>],
        save_output: bool,
        shortcut: Option<Shortcut<T>>,
        backward: crate::node::BackwardFn<T>,
        location: &'static Location<'static>,
    ) -> Var<T> {
        let anomaly = mode::is_anomaly_enabled();
        if anomaly {
            check_forward(op, &value, inputs, location);
        }
        if !mode::is_grad_enabled() || inputs.iter().all(|v| v.node.is_none()) {
            return Var::constant(value);
        }
        let node = Node {
            sequence: mode::next_sequence(),
            op,
            kind: NodeKind::Op,
            inputs: {
                // Pushed one by one: `collect` into a `SmallVec` goes through its generic
                // `extend`, which cost more than the pushes on every recorded op (callgrind).
                let mut nodes = SmallVec::new();
                for input in inputs {
                    nodes.push(input.node.clone());
                }
                nodes
            },
            backward: RefCell::new(Some(backward)),
            saved_output: RefCell::new(save_output.then(|| value.clone())),
            shape: SmallVec::from_slice(value.shape()),
            grad: RefCell::new(None),
            retains_grad: Cell::new(false),
            hooks: RefCell::new(Vec::new()),
            origin: anomaly.then(|| {
                Box::new(Origin {
                    location,
                    input_shapes: inputs.iter().map(|v| v.shape().to_vec()).collect(),
                })
            }),
            shortcut,
            _live: LiveToken::new(),
        };
        Var {
            value,
            node: Some(Rc::new(node)),
        }
    }

    /// True when both are the same variable (same node), or both constants with the same
    /// storage.
    pub fn same_as(&self, other: &Var<T>) -> bool {
        match (&self.node, &other.node) {
            (Some(a), Some(b)) => Rc::ptr_eq(a, b),
            (None, None) => self.value.shares_storage(&other.value),
            _ => false,
        }
    }
}

/// Anomaly mode's forward check: a non-finite result from finite inputs is the op to blame.
fn check_forward<T: Element>(
    op: &'static str,
    value: &Tensor<T>,
    inputs: &[&Var<T>],
    location: &'static Location<'static>,
) {
    let finite = |t: &Tensor<T>| t.to_vec().iter().all(|x| x.is_finite());
    if !finite(value) && inputs.iter().all(|v| finite(&v.value)) {
        mode::report_anomaly(AnomalyReport {
            op,
            phase: "forward",
            input_shapes: inputs.iter().map(|v| v.shape().to_vec()).collect(),
            location: location_string(location),
        });
    }
}

impl<T: Element> fmt::Debug for Var<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Var({}, op={})", self.value, self.op_name())
    }
}

impl<T: Element> fmt::Display for Var<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.value, f)
    }
}

/// Builds a [`Gradients`] list from per-input gradients.
pub fn gradients<T: Element>(items: impl IntoIterator<Item = Option<Var<T>>>) -> Gradients<T> {
    items.into_iter().collect::<SmallVec<_>>()
}
