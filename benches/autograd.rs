//! Cost of the tape itself: recording an op, backpropagating through it and freeing it, on
//! tensors so small that the arithmetic is negligible.
//!
//! Each benchmark times one whole iteration (build the graph, backward, drop). Two groups run
//! the same benchmarks: `autograd` in wall time (criterion's default; its "elem/s" throughput is
//! recorded ops per second) and, on Linux, `autograd_cpu` in this thread's CPU time with the
//! throughput shown directly as nanoseconds per recorded op — the figure that stays put when
//! other processes share the cores.
//!
//! ```text
//! cargo bench --bench autograd
//! cargo bench --bench autograd -- autograd_cpu   # CPU time only
//! ```

use std::hint::black_box;

use autograd::{Tensor, Var};
use criterion::measurement::Measurement;
use criterion::{Criterion, Throughput};

/// Adds recorded per iteration of the scalar chain.
const CHAIN: usize = 1000;

/// y ← y + x, `CHAIN` times, then backward: every op has two inputs on the tape and x's
/// gradient accumulates `CHAIN` contributions.
fn scalar_add_chain<M: Measurement>(c: &mut Criterion<M>, group_name: &str) {
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Elements(CHAIN as u64));
    group.bench_function("scalar_add_chain_1000", |b| {
        b.iter(|| {
            let x = Var::leaf(Tensor::<f32>::scalar(0.5));
            let mut y = x.clone();
            for _ in 0..CHAIN {
                y = &y + &x;
            }
            y.backward().unwrap();
            black_box(x.grad())
        })
    });
    // The same chain with a constant operand: one input on the tape per op.
    group.bench_function("scalar_add_constant_chain_1000", |b| {
        let one = Var::constant(Tensor::<f32>::scalar(1.0));
        b.iter(|| {
            let x = Var::leaf(Tensor::<f32>::scalar(0.5));
            let mut y = x.clone();
            for _ in 0..CHAIN {
                y = &y + &one;
            }
            y.backward().unwrap();
            black_box(x.grad())
        })
    });
    group.finish();
}

/// Ten elementwise ops (tanh, mul, add, …) on 32×128 `f32` tensors, a sum, and backward.
fn elementwise_chain<M: Measurement>(c: &mut Criterion<M>, group_name: &str) {
    let mut rng = autograd::seeded_rng(0);
    let x0 = Tensor::<f32>::randn(&[32, 128], &mut rng);
    let w0 = Tensor::<f32>::randn(&[32, 128], &mut rng);
    let mut group = c.benchmark_group(group_name);
    // tanh, mul, add three times, then tanh: 10 ops, plus the final sum.
    group.throughput(Throughput::Elements(11));
    group.bench_function("elementwise_32x128_chain_10", |b| {
        b.iter(|| {
            let x = Var::leaf(x0.clone());
            let w = Var::leaf(w0.clone());
            let mut y = x.clone();
            for _ in 0..3 {
                y = &(&y.tanh() * &w) + &x;
            }
            let loss = y.tanh().sum(&[], false);
            loss.backward().unwrap();
            black_box((x.grad(), w.grad()))
        })
    });
    group.finish();
}

/// Steps of the scalar recurrence below.
const STEPS: usize = 20;

/// h ← tanh(w·h + u·x_t + b) over 20 steps on scalars, loss = Σ h_t, forward and backward:
/// 6 ops per step (mul, mul, add, add, tanh, and the add into the loss).
fn scalar_recurrence<M: Measurement>(c: &mut Criterion<M>, group_name: &str) {
    let inputs: Vec<Var<f32>> = (0..STEPS)
        .map(|t| Var::constant(Tensor::scalar((t as f32 * 0.3).sin())))
        .collect();
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Elements((STEPS * 6) as u64));
    group.bench_function("scalar_recurrence_20_steps", |b| {
        b.iter(|| {
            let w = Var::leaf(Tensor::<f32>::scalar(0.9));
            let u = Var::leaf(Tensor::<f32>::scalar(0.5));
            let bias = Var::leaf(Tensor::<f32>::scalar(0.1));
            let mut h = Var::constant(Tensor::scalar(0.0));
            let mut loss = Var::constant(Tensor::scalar(0.0));
            for x in &inputs {
                h = (&(&(&w * &h) + &(&u * x)) + &bias).tanh();
                loss = &loss + &h;
            }
            loss.backward().unwrap();
            black_box((w.grad(), u.grad(), bias.grad()))
        })
    });
    group.finish();
}

fn run_all<M: Measurement>(c: &mut Criterion<M>, group_name: &str) {
    scalar_add_chain(c, group_name);
    elementwise_chain(c, group_name);
    scalar_recurrence(c, group_name);
}

fn main() {
    // No plots: they need system fonts, and the numbers are what BENCHMARKS.md records.
    let mut wall = Criterion::default().without_plots().configure_from_args();
    run_all(&mut wall, "autograd");
    #[cfg(target_os = "linux")]
    {
        let mut cpu = Criterion::default()
            .without_plots()
            .with_measurement(cpu_time::ThreadCpuTime)
            .configure_from_args();
        run_all(&mut cpu, "autograd_cpu");
    }
    Criterion::default().configure_from_args().final_summary();
}

/// A criterion measurement of the calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), which
/// does not count the time other processes hold the core.
#[cfg(target_os = "linux")]
mod cpu_time {
    use criterion::Throughput;
    use criterion::measurement::{Measurement, ValueFormatter};

    #[repr(C)]
    struct Timespec {
        seconds: i64,
        nanoseconds: i64,
    }

    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

    unsafe extern "C" {
        fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
    }

    fn now_ns() -> u64 {
        let mut time = Timespec {
            seconds: 0,
            nanoseconds: 0,
        };
        // SAFETY: `clock_gettime` writes one `struct timespec` through the pointer, which
        // points to a live, writable `Timespec`; on 64-bit Linux `timespec` is two 64-bit
        // integers (`time_t`, `long`), the layout of the `repr(C)` struct above.
        let status = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut time) };
        assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
        time.seconds as u64 * 1_000_000_000 + time.nanoseconds as u64
    }

    /// This thread's CPU time, in nanoseconds.
    pub struct ThreadCpuTime;

    impl Measurement for ThreadCpuTime {
        type Intermediate = u64;
        type Value = u64;

        fn start(&self) -> u64 {
            now_ns()
        }

        fn end(&self, start: u64) -> u64 {
            now_ns() - start
        }

        fn add(&self, a: &u64, b: &u64) -> u64 {
            a + b
        }

        fn zero(&self) -> u64 {
            0
        }

        fn to_f64(&self, value: &u64) -> f64 {
            *value as f64
        }

        fn formatter(&self) -> &dyn ValueFormatter {
            &CpuNanoseconds
        }
    }

    /// Shows times in ns/µs/ms of CPU, and element throughput as CPU nanoseconds per element
    /// (per recorded op, in these benchmarks).
    struct CpuNanoseconds;

    impl ValueFormatter for CpuNanoseconds {
        fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
            let (divisor, unit) = if typical < 1e3 {
                (1.0, "ns cpu")
            } else if typical < 1e6 {
                (1e3, "µs cpu")
            } else {
                (1e6, "ms cpu")
            };
            values.iter_mut().for_each(|v| *v /= divisor);
            unit
        }

        fn scale_throughputs(
            &self,
            _typical: f64,
            throughput: &Throughput,
            values: &mut [f64],
        ) -> &'static str {
            match *throughput {
                Throughput::Elements(count) => {
                    values.iter_mut().for_each(|v| *v /= count as f64);
                    "ns cpu/op"
                }
                _ => "ns cpu",
            }
        }

        fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
            "ns"
        }
    }
}
