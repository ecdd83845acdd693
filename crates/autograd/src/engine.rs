//! The backward pass: replay the tape in reverse.
//!
//! Every node carries its position on the tape (the order it was recorded in). A backward pass
//! collects the nodes reachable from the outputs, sorts them by that position, newest first —
//! the Wengert list read backwards — and hands each node's accumulated gradient to its rule.
//! Because an op is always recorded after its inputs, every node's gradient is complete by the
//! time it is visited.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use smallvec::SmallVec;
use tensor::{Element, Tensor};

use crate::deferred::ProductSum;
use crate::error::{AnomalyReport, AutogradError, location_string};
use crate::mode::{self, GradModeGuard};
use crate::node::{BackwardContext, Node, NodeKind, Shortcut};
use crate::slices::SliceGradients;
use crate::var::Var;

/// Hashes a node's address with one multiplication. The keys are addresses the process chose,
/// so SipHash's defence against chosen keys buys nothing, and it cost an eighth of a backward
/// pass over scalar ops.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn write(&mut self, _: &[u8]) {
        unreachable!("only node addresses are hashed")
    }

    fn write_usize(&mut self, address: usize) {
        let product = (address as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // Addresses are aligned, so the product's low bits (the table's bucket index) would
        // be zero without folding the well-mixed high half into them.
        self.0 = product ^ (product >> 32);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Position of each reachable node in this pass's reversed tape.
type Positions<T> = HashMap<*const Node<T>, usize, BuildHasherDefault<AddressHasher>>;

/// How a backward pass treats the graph.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackwardOptions {
    /// Keep the graph's saved values so it can be backpropagated again.
    pub retain_graph: bool,
    /// Record the backward pass itself, so the gradients can be differentiated again
    /// (Hessian-vector products, gradient penalties). Implies `retain_graph`.
    pub create_graph: bool,
}

impl BackwardOptions {
    /// Keep the graph for another backward pass.
    pub fn retain_graph() -> Self {
        Self {
            retain_graph: true,
            create_graph: false,
        }
    }

    /// Record the backward pass for higher-order gradients.
    pub fn create_graph() -> Self {
        Self {
            retain_graph: true,
            create_graph: true,
        }
    }
}

/// Backpropagates `seeds` from `outputs` and accumulates into every leaf's gradient.
pub(crate) fn backward<T: Element>(
    outputs: &[Var<T>],
    seeds: &[Var<T>],
    options: BackwardOptions,
) -> Result<(), AutogradError> {
    run(outputs, seeds, options, &[], true).map(|_| ())
}

/// Gradients of `outputs` (weighted by `seeds`) with respect to `inputs`, without touching any
/// leaf's accumulated gradient (PyTorch's `torch.autograd.grad`).
///
/// With `create_graph` the results are themselves recorded, so they can be differentiated
/// again:
///
/// ```
/// use tapeloop_autograd::{BackwardOptions, Var, grad, Tensor};
///
/// let x = Var::leaf(Tensor::<f64>::scalar(3.0));
/// let y = &(&x * &x) * &x; // x³
/// let dy = grad(&[y], &[x.clone()], None, BackwardOptions::create_graph(), false).unwrap();
/// let dy = dy[0].clone().unwrap(); // 3x² = 27
/// assert_eq!(dy.item(), 27.0);
/// let d2y = grad(&[dy], &[x], None, BackwardOptions::default(), false).unwrap();
/// assert_eq!(d2y[0].as_ref().unwrap().item(), 18.0); // 6x
/// ```
pub fn grad<T: Element>(
    outputs: &[Var<T>],
    inputs: &[Var<T>],
    seeds: Option<&[Var<T>]>,
    options: BackwardOptions,
    allow_unused: bool,
) -> Result<Vec<Option<Var<T>>>, AutogradError> {
    let default_seeds: Vec<Var<T>>;
    let seeds = match seeds {
        Some(s) => s,
        None => {
            if let Some(bad) = outputs.iter().find(|o| o.value.len() != 1) {
                return Err(AutogradError::NonScalarOutput {
                    shape: bad.shape().to_vec(),
                });
            }
            default_seeds = outputs
                .iter()
                .map(|o| Var::constant(Tensor::ones(o.shape())))
                .collect();
            &default_seeds
        }
    };
    let mut wanted = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        match &input.node {
            Some(node) => wanted.push(node.clone()),
            None if allow_unused => wanted.push(Rc::new(Node::leaf(input.shape()))),
            None => return Err(AutogradError::NotInGraph { input: i }),
        }
    }
    let results = run(outputs, seeds, options, &wanted, false)?;
    if !allow_unused && let Some(i) = results.iter().position(Option::is_none) {
        return Err(AutogradError::NotInGraph { input: i });
    }
    Ok(results)
}

fn run<T: Element>(
    outputs: &[Var<T>],
    seeds: &[Var<T>],
    options: BackwardOptions,
    wanted: &[Rc<Node<T>>],
    accumulate: bool,
) -> Result<Vec<Option<Var<T>>>, AutogradError> {
    // Anomaly mode checks every op as it runs, including the ops of backward rules. A
    // non-finite gradient is reported by the pass itself, as the backward of the op that owns
    // the rule; a forward report of one of the rule's ops (the division in sqrt's rule) would
    // instead be returned by the next, unrelated backward call. So the pass leaves the pending
    // forward report as it found it.
    let pending = mode::replace_first_anomaly(None);
    let result = run_pass(outputs, seeds, options, wanted, accumulate);
    mode::replace_first_anomaly(pending);
    result
}

fn run_pass<T: Element>(
    outputs: &[Var<T>],
    seeds: &[Var<T>],
    options: BackwardOptions,
    wanted: &[Rc<Node<T>>],
    accumulate: bool,
) -> Result<Vec<Option<Var<T>>>, AutogradError> {
    let retain = options.retain_graph || options.create_graph;
    let _mode = GradModeGuard::new(options.create_graph);
    let mut roots = Vec::with_capacity(outputs.len());
    for (output, seed) in outputs.iter().zip(seeds) {
        if seed.shape() != output.shape() {
            return Err(AutogradError::SeedShape {
                output: output.shape().to_vec(),
                seed: seed.shape().to_vec(),
            });
        }
        if let Some(node) = &output.node {
            roots.push((node.clone(), seed.clone()));
        }
    }
    if roots.is_empty() {
        return Err(AutogradError::NoGraph);
    }

    // The reachable part of the tape, newest first.
    let mut order: Vec<Rc<Node<T>>> = Vec::new();
    let mut position: Positions<T> = Positions::default();
    let mut stack: Vec<Rc<Node<T>>> = roots.iter().map(|(n, _)| n.clone()).collect();
    while let Some(node) = stack.pop() {
        let key = Rc::as_ptr(&node);
        if position.contains_key(&key) {
            continue;
        }
        position.insert(key, 0);
        stack.extend(node.inputs.iter().flatten().cloned());
        order.push(node);
    }
    order.sort_unstable_by_key(|n| std::cmp::Reverse(n.sequence));
    for (i, node) in order.iter().enumerate() {
        position.insert(Rc::as_ptr(node), i);
    }

    let mut grads: Vec<Option<Var<T>>> = vec![None; order.len()];
    // Matrix-product gradients not yet evaluated (see `deferred`); used outside `create_graph`
    // and anomaly mode only, where every gradient must be a recorded or checked tensor.
    let mut deferred: Vec<ProductSum<T>> = std::iter::repeat_with(ProductSum::default)
        .take(order.len())
        .collect();
    // Slice gradients not yet joined (see `slices`); outside `create_graph` only.
    let mut slices: Vec<SliceGradients<T>> = std::iter::repeat_with(SliceGradients::default)
        .take(order.len())
        .collect();
    let shortcuts = !options.create_graph && !mode::is_anomaly_enabled();
    for (node, seed) in roots {
        accumulate_into(
            &mut grads[position[&Rc::as_ptr(&node)]],
            seed,
            options.create_graph,
        );
    }
    let mut results: Vec<Option<Var<T>>> = vec![None; wanted.len()];

    for (index, node) in order.iter().enumerate() {
        let pending = std::mem::take(&mut deferred[index]);
        if !pending.is_empty() {
            let observed = !node.hooks.borrow().is_empty()
                || node.retains_grad.get()
                || wanted.iter().any(|w| Rc::ptr_eq(w, node));
            let alone = grads[index].is_none() && slices[index].is_empty();
            if let (Some(Shortcut::Transpose), Some(Some(input)), true, false) =
                (&node.shortcut, node.inputs.first(), alone, observed)
            {
                if node.backward.borrow().is_none() {
                    return Err(AutogradError::GraphFreed { op: node.op });
                }
                let target = position[&Rc::as_ptr(input)];
                defer(
                    &mut deferred[target],
                    &mut grads[target],
                    pending.transposed(),
                );
                if !retain {
                    node.backward.borrow_mut().take();
                }
                continue;
            }
            accumulate_into(&mut grads[index], Var::constant(pending.evaluate()), false);
        }
        let held = std::mem::take(&mut slices[index]);
        if !held.is_empty() {
            grads[index] = held.join(grads[index].take(), &node.shape);
        }
        let Some(mut grad) = grads[index].take() else {
            continue;
        };
        for hook in node.hooks.borrow().iter() {
            if let Some(replaced) = hook(&grad) {
                grad = replaced;
            }
        }
        for (slot, target) in results.iter_mut().zip(wanted) {
            if Rc::ptr_eq(target, node) {
                *slot = Some(grad.clone());
            }
        }
        let keep = |grad: &Var<T>| {
            if options.create_graph {
                grad.clone()
            } else {
                grad.detach()
            }
        };
        match node.kind {
            NodeKind::Leaf => {
                if accumulate {
                    accumulate_into_node(
                        &mut node.grad.borrow_mut(),
                        keep(&grad),
                        options.create_graph,
                    );
                }
                continue;
            }
            NodeKind::Op => {
                if accumulate && node.retains_grad.get() {
                    accumulate_into_node(
                        &mut node.grad.borrow_mut(),
                        keep(&grad),
                        options.create_graph,
                    );
                }
            }
        }
        if !options.create_graph
            && let (Some(Shortcut::Slice(slice)), Some(Some(input))) =
                (&node.shortcut, node.inputs.first())
        {
            // A block of its input: held until the input's gradient is needed (see `slices`).
            if node.backward.borrow().is_none() {
                return Err(AutogradError::GraphFreed { op: node.op });
            }
            check_gradient(node, &grad)?;
            let target = position[&Rc::as_ptr(input)];
            slices[target].add(&mut grads[target], &input.shape, *slice, grad.value);
            if !retain {
                node.backward.borrow_mut().take();
            }
            continue;
        }
        let mut needs: SmallVec<[bool; 2]> = node.inputs.iter().map(Option::is_some).collect();
        if shortcuts
            && let (Some(Shortcut::Matmul { lhs }), Some(Some(rhs))) =
                (&node.shortcut, node.inputs.get(1))
        {
            // ∂b = aᵀ g, kept as a factor pair: a weight shared by T steps gets one GEMM.
            let a = lhs
                .borrow()
                .as_deref()
                .cloned()
                .ok_or(AutogradError::GraphFreed { op: node.op })?;
            let mut product = ProductSum::default();
            product.push(a.t(), grad.value.clone());
            let target = position[&Rc::as_ptr(rhs)];
            defer(&mut deferred[target], &mut grads[target], product);
            needs[1] = false;
        }
        let input_grads = {
            let rule = node.backward.borrow();
            let rule = rule
                .as_ref()
                .ok_or(AutogradError::GraphFreed { op: node.op })?;
            let output = node.saved_output.borrow().clone().map(|value| Var {
                value,
                node: Some(node.clone()),
            });
            rule(&BackwardContext {
                grad: &grad,
                output,
                needs: &needs,
            })
        };
        for (input, input_grad) in node.inputs.iter().zip(input_grads) {
            let (Some(input), Some(input_grad)) = (input, input_grad) else {
                continue;
            };
            if input_grad.shape() != &input.shape[..] {
                return Err(AutogradError::GradientShape {
                    op: node.op,
                    expected: input.shape.to_vec(),
                    got: input_grad.shape().to_vec(),
                });
            }
            check_gradient(node, &input_grad)?;
            accumulate_into(
                &mut grads[position[&Rc::as_ptr(input)]],
                input_grad,
                options.create_graph,
            );
        }
        if !retain {
            node.backward.borrow_mut().take();
            node.saved_output.borrow_mut().take();
            if let Some(Shortcut::Matmul { lhs }) = &node.shortcut {
                lhs.borrow_mut().take();
            }
        }
    }
    Ok(results)
}

/// Adds `products` to a deferred gradient, evaluating it into the dense slot once it pins too
/// much memory.
fn defer<T: Element>(
    deferred: &mut ProductSum<T>,
    dense: &mut Option<Var<T>>,
    products: ProductSum<T>,
) {
    deferred.append(products);
    if deferred.is_due() {
        let sum = std::mem::take(deferred).evaluate();
        accumulate_into(dense, Var::constant(sum), false);
    }
}

/// Anomaly mode's backward check: a non-finite gradient is blamed on the op whose rule made it.
fn check_gradient<T: Element>(node: &Node<T>, gradient: &Var<T>) -> Result<(), AutogradError> {
    if !mode::is_anomaly_enabled() || gradient.value.to_vec().iter().all(|x| x.is_finite()) {
        return Ok(());
    }
    let (location, input_shapes) = node
        .origin
        .as_deref()
        .map(|o| (location_string(o.location), o.input_shapes.clone()))
        .unwrap_or_else(|| ("(recorded before anomaly mode was on)".into(), Vec::new()));
    Err(AutogradError::Anomaly(AnomalyReport {
        op: node.op,
        phase: "backward",
        input_shapes,
        location,
    }))
}

/// A gradient made safe to add into in place: broadcast gradients (a `sum`'s, say) are stride-0
/// views, whose elements must first get storage of their own.
pub(crate) fn writable<T: Element>(value: &mut Tensor<T>) -> &mut Tensor<T> {
    if value.layout().has_overlap() {
        *value = value.contiguous();
    }
    value
}

/// Adds `grad` to a gradient being accumulated. Outside `create_graph` the sum is formed in
/// place (copy-on-write keeps any tensor shared with the graph intact); with it, the sum is a
/// recorded op so it can be differentiated again.
fn accumulate_into<T: Element>(slot: &mut Option<Var<T>>, grad: Var<T>, create_graph: bool) {
    match slot {
        None => *slot = Some(grad),
        Some(existing) => add_into(existing, grad, create_graph),
    }
}

/// [`accumulate_into`] for a node's own gradient, which the node keeps boxed.
fn accumulate_into_node<T: Element>(
    slot: &mut Option<Box<Var<T>>>,
    grad: Var<T>,
    create_graph: bool,
) {
    match slot {
        None => *slot = Some(Box::new(grad)),
        Some(existing) => add_into(existing, grad, create_graph),
    }
}

fn add_into<T: Element>(existing: &mut Var<T>, grad: Var<T>, create_graph: bool) {
    if !create_graph && existing.node.is_none() && grad.node.is_none() {
        writable(&mut existing.value).add_assign(&grad.value);
    } else {
        *existing = &*existing + &grad;
    }
}
