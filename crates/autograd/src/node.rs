//! A node of the tape: one recorded op, its inputs and its backward rule.

use std::cell::{Cell, RefCell};
use std::panic::Location;
use std::rc::Rc;

use smallvec::SmallVec;
use tensor::{Element, Shape, Tensor};

use crate::var::Var;

/// Gradients for an op's inputs, in input order; `None` where no gradient is needed or it is zero.
pub type Gradients<T> = SmallVec<[Option<Var<T>>; 2]>;

/// What a backward rule sees: the gradient of the loss with respect to the op's output, the
/// output itself (when the op saved it), and which inputs need a gradient.
pub struct BackwardContext<'a, T: Element> {
    /// ∂L/∂output.
    pub grad: &'a Var<T>,
    pub(crate) output: Option<Var<T>>,
    /// `needs[i]` is true when input `i` requires a gradient.
    pub needs: &'a [bool],
}

impl<T: Element> BackwardContext<'_, T> {
    /// The op's output, as a variable connected to the graph (so a rule written with it, like
    /// tanh's `1 − y²`, is itself differentiable). Only ops recorded with a saved output have it.
    #[track_caller]
    pub fn output(&self) -> &Var<T> {
        self.output
            .as_ref()
            .expect("this op was recorded without saving its output")
    }
}

/// A backward rule: maps ∂L/∂output to ∂L/∂input for every input.
pub type BackwardFn<T> = Box<dyn Fn(&BackwardContext<'_, T>) -> Gradients<T>>;

/// A gradient hook: sees the gradient flowing into a variable and may replace it.
pub type Hook<T> = Box<dyn Fn(&Var<T>) -> Option<Var<T>>>;

thread_local! {
    static LIVE_NODES: Cell<usize> = const { Cell::new(0) };
}

/// How many tape nodes (leaves, parameters and recorded ops) are alive in this thread.
///
/// A training loop whose graph is freed every iteration returns to the same count after each
/// one; a count that grows means something (a stored gradient built with `create_graph`, a
/// hidden state never detached) keeps old graphs alive.
///
/// ```
/// use tapeloop_autograd::{Var, Tensor, live_nodes};
///
/// let before = live_nodes();
/// {
///     let x = Var::leaf(Tensor::<f64>::ones(&[2]));
///     let y = x.tanh().sum(&[], false);
///     assert_eq!(live_nodes(), before + 3);
///     y.backward().unwrap();
/// }
/// assert_eq!(live_nodes(), before);
/// ```
pub fn live_nodes() -> usize {
    LIVE_NODES.with(Cell::get)
}

/// Counts a node alive from its creation to its drop; every `Node` holds one, so no
/// construction site can forget the count.
pub(crate) struct LiveToken(());

impl LiveToken {
    pub(crate) fn new() -> Self {
        LIVE_NODES.with(|n| n.set(n.get() + 1));
        Self(())
    }
}

impl Drop for LiveToken {
    fn drop(&mut self) {
        // `try_with`: a node may be dropped while the thread's locals are being torn down.
        let _ = LIVE_NODES.try_with(|n| n.set(n.get() - 1));
    }
}

/// Where an op was recorded and the shapes of its inputs (anomaly mode).
pub(crate) struct Origin {
    pub(crate) location: &'static Location<'static>,
    pub(crate) input_shapes: Vec<Vec<usize>>,
}

/// Where a slice sits in its input: `start..start + len` of `dim`, with `dim` removed from
/// the result when `squeezed` (a `select`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SliceOf {
    pub(crate) dim: usize,
    pub(crate) start: usize,
    pub(crate) squeezed: bool,
}

/// What the engine knows about an op's structure, so that outside `create_graph` it can move
/// the gradient more cheaply than the op's rule would.
pub(crate) enum Shortcut<T: Element> {
    /// `narrow` or `select`: the result is a block of the single input, so the engine adds its
    /// gradient straight into that block of the input's gradient instead of running the rule
    /// (which builds a zero-padded copy). Without this, taking each of T time steps out of a
    /// sequence costs T full-size gradients.
    Slice(SliceOf),
    /// The transpose of a matrix: a deferred product passes through it unevaluated
    /// (`(L R)ᵀ = Rᵀ Lᵀ`, views only).
    Transpose,
    /// The product `a · b` of two matrices, holding `a`'s value: `b`'s gradient `aᵀ g` is kept
    /// as a factor pair, and every time step's pair for a shared weight is summed by one GEMM
    /// (see `deferred`). Released with the rule after a backward pass.
    /// (Boxed, like [`Node::grad`], so that every node stays small: see there.)
    Matmul {
        lhs: RefCell<Option<Box<Tensor<T>>>>,
    },
}

pub(crate) enum NodeKind {
    /// A variable created by the user that requires gradients; its gradient accumulates.
    Leaf,
    /// The result of a recorded op.
    Op,
}

pub(crate) struct Node<T: Element> {
    /// Position on the tape: larger than every node recorded before it.
    pub(crate) sequence: u64,
    pub(crate) op: &'static str,
    pub(crate) kind: NodeKind,
    /// The nodes of the inputs that require gradients (`None` for constants).
    pub(crate) inputs: SmallVec<[Option<Rc<Node<T>>>; 2]>,
    /// Released after a backward pass unless the graph is retained.
    pub(crate) backward: RefCell<Option<BackwardFn<T>>>,
    pub(crate) saved_output: RefCell<Option<Tensor<T>>>,
    pub(crate) shape: Shape,
    /// Accumulated gradient of a leaf, or the retained gradient of an op result. Boxed, as is
    /// the matmul shortcut's operand: most nodes never hold either, and inline they made every
    /// node 552 bytes, each one written in full when an op is recorded.
    pub(crate) grad: RefCell<Option<Box<Var<T>>>>,
    pub(crate) retains_grad: Cell<bool>,
    pub(crate) hooks: RefCell<Vec<Hook<T>>>,
    /// Where the op was called, and its input shapes; recorded in anomaly mode only.
    pub(crate) origin: Option<Box<Origin>>,
    /// Structure the engine can exploit outside `create_graph` (slices, transposes, products).
    pub(crate) shortcut: Option<Shortcut<T>>,
    /// Keeps [`live_nodes`] exact.
    pub(crate) _live: LiveToken,
}

impl<T: Element> Node<T> {
    pub(crate) fn leaf(shape: &[usize]) -> Self {
        Self {
            sequence: crate::mode::next_sequence(),
            op: "leaf",
            kind: NodeKind::Leaf,
            inputs: SmallVec::new(),
            backward: RefCell::new(None),
            saved_output: RefCell::new(None),
            shape: SmallVec::from_slice(shape),
            grad: RefCell::new(None),
            retains_grad: Cell::new(true),
            hooks: RefCell::new(Vec::new()),
            origin: None,
            shortcut: None,
            _live: LiveToken::new(),
        }
    }
}

impl<T: Element> Drop for Node<T> {
    /// Frees the graph behind this node without recursion: a 1,000-step sequence builds chains
    /// tens of thousands of nodes deep, and dropping them recursively would overflow the stack.
    fn drop(&mut self) {
        // Inline capacity: a chain being freed keeps one or two nodes pending, so dropping a
        // node almost never allocates.
        let mut pending: SmallVec<[Rc<Node<T>>; 8]> = SmallVec::new();
        // Pushed one by one: `collect` and `extend` through `Flatten` cost more than the pushes
        // (callgrind), and every node of every graph passes through here.
        for input in self.inputs.drain(..).flatten() {
            pending.push(input);
        }
        // The rule's captured inputs are also held by `pending`, so this never drops a node.
        drop(self.backward.get_mut().take());
        while let Some(mut node) = pending.pop() {
            // Emptied in place through `get_mut` (the last reference) rather than moved out
            // with `Rc::into_inner`: a node was over 500 bytes then (336 now), and that move
            // was a `memcpy` per node freed (3% of a tiny LSTM step's instructions under
            // callgrind).
            // `get_mut` also needs no `Weak` to exist; nothing makes one to a node, and one
            // would bring back recursion here (`tests/memory.rs` builds chains deep enough to
            // overflow the stack then).
            if let Some(inner) = Rc::get_mut(&mut node) {
                for input in inner.inputs.drain(..).flatten() {
                    pending.push(input);
                }
                drop(inner.backward.get_mut().take());
                // `node` now has no inputs, so dropping it does not recurse.
            }
        }
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::*;

    /// Every recorded op writes a whole node; the rarely used fields are boxed to keep it small
    /// (552 bytes with them inline, which cost a tiny LSTM run 1.8% more instructions). A field
    /// added inline that pushes the size up should be a deliberate choice.
    #[test]
    fn a_node_stays_small() {
        let size = std::mem::size_of::<Node<f32>>();
        assert!(size <= 336, "Node<f32> grew to {size} bytes");
    }
}
