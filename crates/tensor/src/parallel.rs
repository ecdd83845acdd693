//! Intra-op threads: how one large op (a GEMM, an elementwise kernel over many elements) is
//! shared between the thread that calls it and a team of helper threads.
//!
//! The calling thread always works on its own op, as the master thread of an OpenMP team does
//! in PyTorch: with `n` threads in all, the team holds `n − 1` helpers. Handing the whole op to
//! a pool of `n` instead (rayon's global pool, called from outside it) leaves the caller either
//! waiting for a wake-up or, with `rayon::in_place_scope`, working next to `n` pool threads —
//! one thread more than cores, so a spinning idle helper took CPU from the two that had work.
//! A one-step LSTM microbenchmark at B=32, H=128 called from `main` timed the step's
//! `h·W_hhᵀ` at 31–36 µs that way against 19–29 µs on a pool worker.
//!
//! The helpers are this module's own threads rather than a rayon pool so that an idle helper
//! keeps polling for the next op for a while ([`HELPER_POLL_TIME`]) before it sleeps, as
//! OpenMP's threads do: a rayon worker slept between the GEMMs of consecutive recurrent
//! steps and had to be woken for each.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{Result, TensorError};

/// The environment variable that sets the thread count before any op runs.
pub const THREADS_VARIABLE: &str = "TAPELOOP_NUM_THREADS";

/// How long an idle helper keeps polling for the next op before it sleeps (OpenMP's "block
/// time"; GNU OpenMP, which PyTorch's wheels use, spins longer by default). A recurrent step
/// alternates a split GEMM with tens to hundreds of microseconds of unsplit elementwise work.
/// Polling instead of sleeping in between made a small GRU training step (T=50, B=32, H=128)
/// 4–10% faster in each of four interleaved A/B runs, and the LSTM up to 9% faster in four
/// runs of five (BENCHMARKS.md); 0.2 ms measured the same as 1 ms there.
const HELPER_POLL_TIME: Duration = Duration::from_millis(1);

/// The threads one op may use: the caller plus `helpers`.
struct Team {
    threads: usize,
    /// `None` with one thread.
    helpers: Option<Arc<Helpers>>,
}

impl Team {
    /// A team of `threads` (at least 1), or the operating system's reason for refusing to
    /// start its helpers.
    fn new(threads: usize) -> std::io::Result<Team> {
        if threads == 1 {
            return Ok(Team {
                threads,
                helpers: None,
            });
        }
        // More threads than cores: a polling helper would take the core an op needs.
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let helpers = Arc::new(Helpers {
            poll_time: if threads <= cores {
                HELPER_POLL_TIME
            } else {
                Duration::ZERO
            },
            generation: AtomicU64::new(0),
            job: Mutex::new(Job::Idle),
            wake: Condvar::new(),
            sleeping: AtomicUsize::new(0),
        });
        let team = Team {
            threads,
            helpers: Some(Arc::clone(&helpers)),
        };
        for index in 0..threads - 1 {
            let helpers = Arc::clone(&helpers);
            // On an error `team` drops here, which stops the helpers already started.
            std::thread::Builder::new()
                .name(format!("tapeloop-helper-{index}"))
                .spawn(move || helpers.serve())?;
        }
        Ok(team)
    }
}

impl Drop for Team {
    /// Tells the helpers to exit once they finish their current block (nobody joins them:
    /// the last `Arc` of a replaced team may go on any thread, a helper's own included).
    fn drop(&mut self) {
        if let Some(helpers) = &self.helpers {
            helpers.publish(Job::Stop);
        }
    }
}

/// What the helpers should do next.
enum Job {
    /// Nothing published yet.
    Idle,
    /// Claim blocks of this op (the newest one published; an older caller whose op was
    /// replaced finishes its remaining blocks itself). It stays here after the op returns,
    /// with its block function gone: a helper that takes it then claims nothing, since the
    /// caller set its next block to the end before returning (`WaitForClaimed`), so it never
    /// reaches the function.
    Split(Arc<Shared>),
    /// The team was replaced or dropped: exit.
    Stop,
}

/// The state the helper threads share with the callers that publish ops to them.
struct Helpers {
    /// [`HELPER_POLL_TIME`], or zero when the team has more threads than the machine has cores.
    poll_time: Duration,
    /// Bumped under `job`'s lock every time `job` changes.
    generation: AtomicU64,
    job: Mutex<Job>,
    /// Signalled when `job` changes and a helper sleeps.
    wake: Condvar,
    /// Helpers waiting on `wake` (changed under `job`'s lock).
    sleeping: AtomicUsize,
}

thread_local! {
    /// Set on helper threads: an op split from inside a block runs there alone.
    static ON_HELPER: Cell<bool> = const { Cell::new(false) };
}

impl Helpers {
    /// Hands `job` to the helpers, waking those asleep.
    fn publish(&self, job: Job) {
        let previous = {
            let mut slot = self.job.lock().unwrap_or_else(PoisonError::into_inner);
            self.generation.fetch_add(1, Ordering::Release);
            std::mem::replace(&mut *slot, job)
        };
        // Dropped unlocked: the last reference to an old op can hold a panic payload whose
        // `drop` may run ops of its own.
        drop(previous);
        // A helper counts itself as sleeping and checks the generation under the same lock,
        // so either it saw the new generation or its count is visible here.
        if self.sleeping.load(Ordering::Acquire) > 0 {
            self.wake.notify_all();
        }
    }

    /// A helper thread's life: wait for a new job, work on it, until told to stop.
    fn serve(&self) {
        ON_HELPER.set(true);
        let mut seen = 0;
        loop {
            seen = self.next_generation(seen);
            let job = match &*self.job.lock().unwrap_or_else(PoisonError::into_inner) {
                Job::Idle => continue,
                Job::Split(shared) => Arc::clone(shared),
                Job::Stop => return,
            };
            job.work(true);
        }
    }

    /// Waits until the generation differs from `seen` and returns it: polling for
    /// `poll_time`, then asleep.
    fn next_generation(&self, seen: u64) -> u64 {
        let started = Instant::now();
        let mut polls = 0u32;
        loop {
            let generation = self.generation.load(Ordering::Acquire);
            if generation != seen {
                return generation;
            }
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(256) && started.elapsed() >= self.poll_time {
                break;
            }
            std::hint::spin_loop();
        }
        let mut guard = self.job.lock().unwrap_or_else(PoisonError::into_inner);
        self.sleeping.fetch_add(1, Ordering::AcqRel);
        while self.generation.load(Ordering::Acquire) == seen {
            guard = self
                .wake
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
        }
        self.sleeping.fetch_sub(1, Ordering::AcqRel);
        self.generation.load(Ordering::Acquire)
    }
}

/// The team in use; built on first use, replaced by [`set_num_threads`]. An op holds its own
/// `Arc`, so a team replaced mid-op finishes that op first.
static TEAM: Mutex<Option<Arc<Team>>> = Mutex::new(None);

fn team() -> Arc<Team> {
    let mut slot = TEAM.lock().unwrap_or_else(PoisonError::into_inner);
    slot.get_or_insert_with(|| {
        // Ops cannot report an error, so a default team whose helpers cannot start runs
        // everything on the calling thread; `set_num_threads` reports the same failure.
        let team = Team::new(default_threads()).or_else(|_| Team::new(1));
        Arc::new(team.expect("a team of one thread starts no thread"))
    })
    .clone()
}

/// `TAPELOOP_NUM_THREADS` if it holds a positive number, else one thread per available core.
/// (Ops cannot report errors, so an unusable value is ignored here; a program can check it
/// with [`threads_from_environment`].)
fn default_threads() -> usize {
    threads_from_environment()
        .ok()
        .flatten()
        .or_else(|| std::thread::available_parallelism().ok().map(Into::into))
        .unwrap_or(1)
}

/// The thread count [`THREADS_VARIABLE`] asks for: `None` when it is unset, an error naming
/// the value when it is not a positive whole number.
///
/// ```
/// match tapeloop_tensor::threads_from_environment() {
///     Ok(Some(threads)) => assert!(threads >= 1),
///     Ok(None) => {} // unset: one thread per core
///     Err(error) => assert!(error.to_string().contains("TAPELOOP_NUM_THREADS")),
/// }
/// ```
pub fn threads_from_environment() -> Result<Option<usize>> {
    let Some(value) = std::env::var_os(THREADS_VARIABLE) else {
        return Ok(None);
    };
    let error = || {
        TensorError::new(
            "threads",
            format!("{THREADS_VARIABLE} must be a positive whole number, got {value:?}"),
        )
    };
    let threads: usize = value
        .to_str()
        .and_then(|text| text.trim().parse().ok())
        .ok_or_else(error)?;
    if threads == 0 {
        return Err(error());
    }
    Ok(Some(threads))
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
/// runs its own threads, one model each. An op already running finishes on the old team.
///
/// Elementwise results do not depend on the setting (each element is computed once, the same
/// way). A matrix product's blocks do, and so can the order of its sums: expect differences in
/// the last bits between thread counts, as with PyTorch.
///
/// ```
/// use tapeloop_tensor::{Tensor, num_threads, seeded_rng, set_num_threads};
///
/// let previous = num_threads();
/// let a = Tensor::<f64>::randn(&[256, 256], &mut seeded_rng(0));
/// set_num_threads(1).unwrap();
/// let alone = a.matmul(&a).to_vec();
/// set_num_threads(2).unwrap();
/// let shared = a.matmul(&a).to_vec();
/// assert!(alone.iter().zip(&shared).all(|(x, y)| (x - y).abs() <= 1e-12 * x.abs().max(1.0)));
/// assert_eq!(
///     set_num_threads(0).unwrap_err().to_string(),
///     "set_num_threads: the thread count must be at least 1, got 0"
/// );
/// set_num_threads(previous).unwrap();
/// ```
pub fn set_num_threads(threads: usize) -> Result<()> {
    if threads == 0 {
        return Err(TensorError::new(
            "set_num_threads",
            "the thread count must be at least 1, got 0",
        ));
    }
    if TEAM
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .is_some_and(|team| team.threads == threads)
    {
        return Ok(());
    }
    let team = Team::new(threads).map_err(|e| {
        TensorError::new(
            "set_num_threads",
            format!("cannot start {} helper threads: {e}", threads - 1),
        )
    })?;
    let previous = TEAM
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .replace(Arc::new(team));
    // Dropped outside the lock: the last op on the old team may still hold it.
    drop(previous);
    Ok(())
}

/// Runs `run(0)`, …, `run(blocks − 1)`, each exactly once, on the calling thread and the
/// helpers, and returns when all have run (re-raising the first panic of any of them). Blocks
/// are claimed one at a time, so when a helper wakes late the caller works through the blocks
/// meanwhile. Called from a helper (a block splitting its own work), the blocks run on that
/// helper alone.
///
/// The caller waits for the helpers' last blocks on a counter of finished blocks: spinning,
/// then yielding, then parked until the helper that finishes the last block wakes it. Waiting
/// in a rayon scope instead put it to sleep on a futex whenever a helper finished last: 21,477
/// `futex` calls in a 3-iteration medium LSTM run against 122 for the same run on a rayon
/// worker (`strace -c`).
pub(crate) fn for_each_block(blocks: usize, run: impl Fn(usize) + Sync) {
    split_over(&team(), blocks, run);
}

/// [`for_each_block`] on a given team.
fn split_over(team: &Team, blocks: usize, run: impl Fn(usize) + Sync) {
    let helpers = match &team.helpers {
        Some(helpers) if blocks > 1 && !ON_HELPER.get() => helpers,
        _ => return (0..blocks).for_each(run),
    };
    let run: &(dyn Fn(usize) + Sync) = &run;
    // SAFETY: only the lifetime bound changes, into a raw pointer that `Shared::work`
    // dereferences only after claiming a block below `blocks`. This function does not return
    // or unwind before every claimed block has finished: `WaitForClaimed` stops further claims
    // and waits for those in its `drop`, which runs on both paths, before `run` (a parameter,
    // dropped after every local) goes. A helper that takes the job later only reads the
    // counters, which its `Arc` keeps alive.
    let run: *const (dyn Fn(usize) + Sync + 'static) = unsafe { std::mem::transmute(run) };
    let shared = Arc::new(Shared {
        blocks,
        next: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
        run,
        panic: Mutex::new(None),
        caller: std::thread::current(),
    });
    let wait = WaitForClaimed(&shared);
    helpers.publish(Job::Split(Arc::clone(&shared)));
    shared.work(false);
    drop(wait);
    let panic = shared
        .panic
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(payload) = panic {
        std::panic::resume_unwind(payload);
    }
}

/// One split op, shared by the caller and the helpers that take it from the job slot.
struct Shared {
    blocks: usize,
    /// The next block to claim; at `blocks` or above, none is left. The number of blocks
    /// claimed is always `min(next, blocks)`: nothing may lower `next` below that, or
    /// `WaitForClaimed` would stop waiting for a running block.
    next: AtomicUsize,
    finished: AtomicUsize,
    /// The caller's block function (see `for_each_block` for how long it lives).
    run: *const (dyn Fn(usize) + Sync + 'static),
    /// The first panic of a block, re-raised on the calling thread.
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
    /// Woken by the helper that finishes the last block, in case it waits parked.
    caller: std::thread::Thread,
}

// SAFETY: `run` points to a `Sync` closure, which any thread may call through a shared
// reference; every other field is `Send` and `Sync` itself.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

impl Shared {
    /// Claims and runs blocks until none is left; `on_helper` when not on the calling thread.
    fn work(&self, on_helper: bool) {
        loop {
            let block = self.next.fetch_add(1, Ordering::Relaxed);
            if block >= self.blocks {
                return;
            }
            // SAFETY: a block below `blocks` was claimed, so the caller is still waiting for
            // it to finish and `run` is alive (see `for_each_block`).
            let run = unsafe { &*self.run };
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(block)));
            // Only the first panic is kept; a later payload is dropped after the block is
            // counted, so a payload whose `drop` panics cannot leave the caller waiting.
            let rejected = result.err().and_then(|payload| {
                let mut first = self.panic.lock().unwrap_or_else(PoisonError::into_inner);
                match *first {
                    None => {
                        *first = Some(payload);
                        None
                    }
                    Some(_) => Some(payload),
                }
            });
            if self.finished.fetch_add(1, Ordering::Release) + 1 == self.blocks && on_helper {
                self.caller.unpark();
            }
            drop(rejected);
        }
    }
}

/// Stops further claims and waits until every claimed block has finished.
struct WaitForClaimed<'a>(&'a Shared);

impl Drop for WaitForClaimed<'_> {
    fn drop(&mut self) {
        let shared = self.0;
        // Every `fetch_add` after this swap sees `blocks` or more and claims nothing; every
        // one before it is counted in `claimed`.
        let claimed = shared
            .next
            .swap(shared.blocks, Ordering::AcqRel)
            .min(shared.blocks);
        let mut spins = 0u32;
        let mut yielding_since = None;
        while shared.finished.load(Ordering::Acquire) < claimed {
            // A helper's block takes microseconds to milliseconds: spin briefly, then leave
            // the core to it in case they share one, and only after a millisecond sleep until
            // the helper that finishes the last block wakes this thread. (Parking after a few
            // dozen yields cost a medium LSTM step 3–15%: a futex wake-up per long GEMM
            // block. The timeout covers a caller unwinding out of its own block while a
            // helper still runs one, when not every block is finished and nobody unparks it.)
            if spins < 1 << 10 {
                spins += 1;
                std::hint::spin_loop();
            } else if yielding_since.get_or_insert_with(Instant::now).elapsed()
                < Duration::from_millis(1)
            {
                std::thread::yield_now();
            } else {
                std::thread::park_timeout(Duration::from_millis(1));
            }
        }
    }
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

    /// Two blocks, the first claimed waiting (up to 10 s) until the other has started, so each
    /// runs on a different thread; returns the names of the threads that ran them.
    fn two_threads_meet(team: &Team, on_helper: impl Fn() + Sync) -> Vec<String> {
        let started = AtomicUsize::new(0);
        let names = Mutex::new(Vec::new());
        split_over(team, 2, |_| {
            let name = std::thread::current().name().unwrap_or("").to_string();
            names.lock().unwrap().push(name.clone());
            if started.fetch_add(1, Ordering::SeqCst) == 0 {
                let deadline = Instant::now() + Duration::from_secs(10);
                while started.load(Ordering::SeqCst) < 2 {
                    assert!(Instant::now() < deadline, "no second thread took a block");
                    std::hint::spin_loop();
                }
            }
            if name.starts_with("tapeloop-helper") {
                on_helper();
            }
        });
        names.into_inner().unwrap()
    }

    // The only test that changes the global setting: the others run with whatever count it
    // has set at the time, which they do not depend on.
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

        set_num_threads(2).unwrap();
        let error = set_num_threads(0).unwrap_err();
        assert_eq!(
            error.to_string(),
            "set_num_threads: the thread count must be at least 1, got 0"
        );
        assert_eq!(num_threads(), 2, "a refused count changes nothing");
        set_num_threads(previous).unwrap();
    }

    // On a team of its own, so that no other test's op takes its helper.
    #[test]
    fn the_caller_and_a_helper_share_an_op() {
        let team = Team::new(2).unwrap();
        let caller = std::thread::current().name().unwrap_or("").to_string();
        let mut names = two_threads_meet(&team, || {});
        names.sort();
        assert_eq!(names, [caller, "tapeloop-helper-0".to_string()]);
        // A helper that went to sleep after polling in vain wakes for the next op.
        std::thread::sleep(HELPER_POLL_TIME * 20);
        assert!(two_threads_meet(&team, || {}).contains(&"tapeloop-helper-0".to_string()));
        // An op split inside a helper's block runs there, whole.
        two_threads_meet(&team, || assert_eq!(run_counts(4), vec![1; 4]));
        // A panic on a helper reaches the caller, and the team keeps working.
        let caught =
            std::panic::catch_unwind(|| two_threads_meet(&team, || panic!("a helper fails")));
        assert!(caught.is_err());
        two_threads_meet(&team, || {});

        // The op stays in the job slot after it returns; a helper that takes it late runs
        // nothing.
        let runs = AtomicUsize::new(0);
        split_over(&team, 4, |_| {
            runs.fetch_add(1, Ordering::SeqCst);
        });
        let late = match &*team.helpers.as_ref().unwrap().job.lock().unwrap() {
            Job::Split(op) => Arc::clone(op),
            _ => panic!("no op in the job slot"),
        };
        late.work(true);
        assert_eq!(runs.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn helpers_exit_when_their_team_goes() {
        let team = Team::new(3).unwrap();
        let helpers = Arc::clone(team.helpers.as_ref().unwrap());
        assert_eq!(
            Arc::strong_count(&helpers),
            4,
            "the team and its two helper threads"
        );
        drop(team);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&helpers) > 1 {
            assert!(Instant::now() < deadline, "a helper thread did not exit");
            std::thread::sleep(Duration::from_millis(1));
        }
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
    fn a_panicking_block_reaches_the_caller() {
        let caught = std::panic::catch_unwind(|| {
            for_each_block(8, |block| assert_ne!(block, 5, "block 5 fails"));
        });
        assert!(caught.is_err());
    }
}
