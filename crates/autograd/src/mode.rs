//! Thread-local switches: whether ops are recorded (`no_grad`) and whether results are checked
//! for NaN/Inf (anomaly mode).

use std::cell::{Cell, RefCell};

use crate::error::AnomalyReport;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
    static ANOMALY_MODE: Cell<bool> = const { Cell::new(false) };
    static FIRST_ANOMALY: RefCell<Option<AnomalyReport>> = const { RefCell::new(None) };
    static NEXT_SEQUENCE: Cell<u64> = const { Cell::new(0) };
}

/// True when ops on variables that require gradients are recorded on the tape.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(Cell::get)
}

/// Restores the previous grad mode when dropped.
#[must_use = "grad mode is restored when the guard is dropped"]
pub struct GradModeGuard {
    previous: bool,
}

impl GradModeGuard {
    /// Sets grad mode to `enabled` until the guard is dropped.
    pub fn new(enabled: bool) -> Self {
        let previous = GRAD_ENABLED.with(|g| g.replace(enabled));
        Self { previous }
    }
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

/// Runs `f` without recording anything: results are constants (PyTorch's `torch.no_grad()`).
///
/// ```
/// use tapeloop_autograd::{Var, no_grad, Tensor};
/// let w = Var::leaf(Tensor::<f64>::ones(&[2]));
/// let y = no_grad(|| &w * 3.0);
/// assert!(!y.requires_grad());
/// ```
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = GradModeGuard::new(false);
    f()
}

/// True when anomaly mode is on in this thread.
pub fn is_anomaly_enabled() -> bool {
    ANOMALY_MODE.with(Cell::get)
}

/// Turns anomaly mode on or off for this thread. When on, every op records where it was called
/// and every forward and backward result is checked for NaN and infinity; the first op that
/// produced one is reported by [`Var::backward`](crate::Var::backward) (and by
/// [`take_first_anomaly`]). It costs a scan of every result: use it to debug, not to train.
pub fn set_anomaly_enabled(enabled: bool) {
    ANOMALY_MODE.with(|a| a.set(enabled));
    if enabled {
        FIRST_ANOMALY.with(|f| f.borrow_mut().take());
    }
}

/// Runs `f` with anomaly mode on, restoring the previous setting afterwards.
pub fn detect_anomaly<R>(f: impl FnOnce() -> R) -> R {
    let previous = is_anomaly_enabled();
    set_anomaly_enabled(true);
    let result = f();
    ANOMALY_MODE.with(|a| a.set(previous));
    result
}

/// Records the first anomaly seen since anomaly mode was turned on (later ones are ignored:
/// the first is where things went wrong).
pub(crate) fn report_anomaly(report: AnomalyReport) {
    FIRST_ANOMALY.with(|f| {
        let mut slot = f.borrow_mut();
        if slot.is_none() {
            *slot = Some(report);
        }
    });
}

/// Puts `report` in place of the pending forward anomaly and returns the one it replaces.
pub(crate) fn replace_first_anomaly(report: Option<AnomalyReport>) -> Option<AnomalyReport> {
    FIRST_ANOMALY.with(|f| std::mem::replace(&mut *f.borrow_mut(), report))
}

/// The first forward anomaly recorded in this thread since anomaly mode was turned on, if any,
/// clearing it.
pub fn take_first_anomaly() -> Option<AnomalyReport> {
    FIRST_ANOMALY.with(|f| f.borrow_mut().take())
}

/// The next position on the tape: every recorded node gets a larger number than all nodes
/// recorded before it in this thread, so sorting by it replays the recording order.
pub(crate) fn next_sequence() -> u64 {
    NEXT_SEQUENCE.with(|n| {
        let value = n.get();
        n.set(value + 1);
        value
    })
}
