//! Intra-op threads: how one large op (a GEMM, an elementwise kernel over many elements) is
//! shared between the thread that calls it and a pool of helper threads.
//!
//! The calling thread always works on its own op, as the master thread of an OpenMP team does
//! in PyTorch: with `n` threads in all, the pool holds `n − 1` helpers. Handing the whole op to
//! a pool of `n` instead (rayon's global pool, called from outside it) leaves the caller either
//! waiting for a wake-up or, with `rayon::in_place_scope`, working next to `n` pool threads —
//! one thread more than cores, so a spinning idle helper took CPU from the two that had work.
//! A one-step LSTM microbenchmark at B=32, H=128 called from `main` timed the step's
//! `h·W_hhᵀ` at 31–36 µs that way against 19–29 µs on a pool worker.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::{Result, TensorError};

/// The environment variable that sets the thread count before any op runs.
pub const THREADS_VARIABLE: &str = "TAPELOOP_NUM_THREADS";

/// The threads one op may use: the caller plus `helpers`.
struct Team {
    threads: usize,
    /// `None` with one thread, or when the operating system refused to start helpers.
    helpers: Option<rayon::ThreadPool>,
}

impl Team {
    fn new(threads: usize) -> Team {
        let helpers = (threads > 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads - 1)
                    .thread_name(|i| format!("tapeloop-helper-{i}"))
                    .build()
                    .ok()
            })
            .flatten();
        let threads = if helpers.is_some() { threads } else { 1 };
        Team { threads, helpers }
    }
}

/// The team in use; built on first use, replaced by [`set_num_threads`]. An op holds its own
/// `Arc`, so a team replaced mid-op finishes that op first.
static TEAM: Mutex<Option<Arc<Team>>> = Mutex::new(None);

fn team() -> Arc<Team> {
    let mut slot = TEAM.lock().unwrap_or_else(PoisonError::into_inner);
    slot.get_or_insert_with(|| Arc::new(Team::new(default_threads())))
        .clone()
}

/// `TAPELOOP_NUM_THREADS` if it holds a positive number, else one thread per available core.
fn default_threads() -> usize {
    std::env::var(THREADS_VARIABLE)
        .ok()
        .and_then(|value| value.trim().parse().ok())
        .filter(|&threads| threads > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(Into::into))
        .unwrap_or(1)
}

/// How many threads, the caller's included, one large op is split across (PyTorch's
/// `torch.get_num_threads`).
///
/// ```
/// assert!(tapeloop_tensor::num_threads() >= 1);
/// ```
pub fn num_threads() -> usize {
    team().threads
}

/// Sets how many threads, the caller's included, one large op is split across (PyTorch's
/// `torch.set_num_threads`); the default is [`THREADS_VARIABLE`] or one per core. `1` runs
/// everything on the calling thread, which is also the setting to use when the program already
/// runs its own threads, one model each.
///
/// Results do not depend on the setting: each output element is computed by one thread in the
/// same order whatever the split.
///
/// ```
/// use tapeloop_tensor::{Tensor, num_threads, set_num_threads};
///
/// let previous = num_threads();
/// set_num_threads(1).unwrap();
/// let a = Tensor::<f32>::ones(&[256, 256]);
/// let alone = a.matmul(&a);
/// set_num_threads(2).unwrap();
/// assert_eq!(a.matmul(&a).to_vec(), alone.to_vec());
/// assert!(set_num_threads(0).is_err());
/// set_num_threads(previous).unwrap();
/// ```
pub fn set_num_threads(threads: usize) -> Result<()> {
    if threads == 0 {
        return Err(TensorError::new(
            "set_num_threads",
            "the thread count must be at least 1, got 0",
        ));
    }
    let team = Arc::new(Team::new(threads));
    *TEAM.lock().unwrap_or_else(PoisonError::into_inner) = Some(team);
    Ok(())
}

/// Runs `run(0)`, …, `run(blocks − 1)`, each exactly once, on the calling thread and the
/// helpers. Blocks are claimed one at a time, so a helper that wakes late finds its share
/// already taken rather than holding the caller up. A block that calls back in here (a helper
/// thread asking) runs its own blocks on its own thread.
pub(crate) fn for_each_block(blocks: usize, run: impl Fn(usize) + Sync) {
    let team = team();
    let helpers = match &team.helpers {
        Some(helpers) if blocks > 1 && helpers.current_thread_index().is_none() => helpers,
        _ => return (0..blocks).for_each(run),
    };
    let next = AtomicUsize::new(0);
    let work = || {
        loop {
            let block = next.fetch_add(1, Ordering::Relaxed);
            if block >= blocks {
                break;
            }
            run(block);
        }
    };
    let work = &work;
    helpers.in_place_scope(|scope| {
        for _ in 1..team.threads.min(blocks) {
            scope.spawn(move |_| work());
        }
        work();
    });
}

/// Splits `data` into chunks of `chunk_len` (the last may be shorter) and runs
/// `run(index, chunk)` on each, spread over the threads as [`for_each_block`] does.
pub(crate) fn for_each_chunk_mut<X: Send>(
    data: &mut [X],
    chunk_len: usize,
    run: impl Fn(usize, &mut [X]) + Sync,
) {
    assert!(chunk_len > 0, "for_each_chunk_mut: chunk length 0");
    // Each chunk is claimed by exactly one block, so every lock is taken once, uncontended:
    // a safe way to hand out disjoint `&mut` chunks through a shared closure.
    let chunks: Vec<Mutex<&mut [X]>> = data.chunks_mut(chunk_len).map(Mutex::new).collect();
    for_each_block(chunks.len(), |index| {
        let mut chunk = chunks[index].lock().unwrap_or_else(PoisonError::into_inner);
        run(index, &mut chunk);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts how often each block ran.
    fn run_counts(blocks: usize) -> Vec<usize> {
        let counts: Vec<AtomicUsize> = (0..blocks).map(|_| AtomicUsize::new(0)).collect();
        for_each_block(blocks, |block| {
            counts[block].fetch_add(1, Ordering::Relaxed);
        });
        counts.into_iter().map(AtomicUsize::into_inner).collect()
    }

    // One test owns the global setting, so no other test of this binary changes it meanwhile.
    #[test]
    fn every_block_runs_once_whatever_the_thread_count() {
        let previous = num_threads();
        for threads in [1, 2, 3, 5] {
            set_num_threads(threads).unwrap();
            assert_eq!(num_threads(), threads);
            for blocks in [0, 1, 2, 7, 64] {
                assert_eq!(run_counts(blocks), vec![1; blocks], "{threads} threads");
            }
            // Callers on several threads at once share one team.
            std::thread::scope(|scope| {
                for _ in 0..4 {
                    scope.spawn(|| assert_eq!(run_counts(33), vec![1; 33]));
                }
            });
            // A block that splits its own work again.
            let nested: Vec<AtomicUsize> = (0..12).map(|_| AtomicUsize::new(0)).collect();
            for_each_block(3, |outer| {
                for_each_block(4, |inner| {
                    nested[outer * 4 + inner].fetch_add(1, Ordering::Relaxed);
                })
            });
            assert!(nested.iter().all(|n| n.load(Ordering::Relaxed) == 1));
        }
        let error = set_num_threads(0).unwrap_err();
        assert_eq!(
            error.to_string(),
            "set_num_threads: the thread count must be at least 1, got 0"
        );
        assert_eq!(num_threads(), 5, "a refused count changes nothing");
        set_num_threads(previous).unwrap();
    }

    #[test]
    fn chunks_cover_the_slice_in_order() {
        let mut data = vec![0usize; 1000];
        for_each_chunk_mut(&mut data, 64, |index, chunk| {
            assert!(chunk.len() == 64 || (index == 15 && chunk.len() == 40));
            for (offset, slot) in chunk.iter_mut().enumerate() {
                *slot = index * 64 + offset;
            }
        });
        assert_eq!(data, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn a_panicking_block_reaches_the_caller_and_the_team_still_works() {
        let caught = std::panic::catch_unwind(|| {
            for_each_block(8, |block| assert_ne!(block, 5, "block 5 fails"));
        });
        assert!(caught.is_err());
        assert_eq!(run_counts(8), vec![1; 8]);
    }
}
