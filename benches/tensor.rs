//! Tensor kernels next to their peers, so each ratio is read from one run.
//!
//! - `matmul/*`: f32 GEMM at 512³, 1024³ and 64×512 · 512×2048, with the right operand
//!   row-major (`B`) and as a transposed view (`Bt`, strides `[1, k]`, as `x.matmul(&w.t())`
//!   passes it). Throughput is in FLOP (2·m·k·n), so criterion's `elem/s` reads as FLOP/s. The
//!   OpenBLAS peer runs from `benches/numpy_matmul.py` (see BENCHMARKS.md).
//! - `unary/*`, `broadcast_add/*`, `sum/*`: tapeloop next to a plain Rust loop over slices doing
//!   the same work on one thread. Throughput is bytes read plus written.
//!
//! ```text
//! cargo bench --bench tensor
//! cargo bench --bench tensor -- matmul      # one group
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tensor::{Tensor, seeded_rng};

fn matmul(c: &mut Criterion) {
    let mut group = c.benchmark_group("matmul");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(6));
    let mut rng = seeded_rng(0);
    for (m, k, n) in [(512, 512, 512), (1024, 1024, 1024), (64, 512, 2048)] {
        let a = Tensor::<f32>::randn(&[m, k], &mut rng);
        let b = Tensor::<f32>::randn(&[k, n], &mut rng);
        // The same kind of operand stored as n × k and viewed transposed: the layout of a
        // weight matrix in `x · Wᵀ`.
        let b_transposed = Tensor::<f32>::randn(&[n, k], &mut rng).t();
        group.throughput(Throughput::Elements(2 * (m * k * n) as u64));
        for (label, rhs) in [("B", &b), ("Bt", &b_transposed)] {
            let id = BenchmarkId::new(format!("tapeloop_{label}"), format!("{m}x{k}x{n}"));
            group.bench_function(id, |bench| {
                bench.iter(|| black_box(&a).matmul(black_box(rhs)))
            });
        }
    }
    group.finish();
}

/// One f32 unary op on a contiguous tensor and the plain loop doing the same thing.
fn unary_pair(
    c: &mut Criterion,
    name: &str,
    shape: &[usize],
    tensor_op: fn(&Tensor<f32>) -> Tensor<f32>,
    scalar_op: fn(f32) -> f32,
) {
    let mut group = c.benchmark_group(format!("unary/{name}"));
    let x = Tensor::<f32>::randn(shape, &mut seeded_rng(1));
    let n = x.len();
    let label = format!("{n}");
    group.throughput(Throughput::Bytes((2 * n * size_of::<f32>()) as u64));
    group.bench_function(BenchmarkId::new("tapeloop", &label), |b| {
        b.iter(|| tensor_op(black_box(&x)))
    });
    let src = x.to_vec();
    group.bench_function(BenchmarkId::new("plain_loop", &label), |b| {
        b.iter(|| {
            let out: Vec<f32> = black_box(&src).iter().map(|&v| scalar_op(v)).collect();
            out
        })
    });
    group.finish();
}

fn unary(c: &mut Criterion) {
    // 1M elements: above PARALLEL_THRESHOLD, so tapeloop splits the work across threads.
    unary_pair(c, "tanh", &[1024, 1024], |x| x.tanh(), f32::tanh);
    unary_pair(c, "exp", &[1024, 1024], |x| x.exp(), f32::exp);
    // 32K elements: below the threshold, one thread each, so the ratio is pure overhead.
    unary_pair(c, "tanh", &[128, 256], |x| x.tanh(), f32::tanh);
    unary_pair(c, "exp", &[128, 256], |x| x.exp(), f32::exp);
}

fn broadcast_add(c: &mut Criterion) {
    let mut group = c.benchmark_group("broadcast_add");
    for (rows, cols) in [(1024, 1024), (128, 256)] {
        let a = Tensor::<f32>::randn(&[rows, cols], &mut seeded_rng(2));
        let row = Tensor::<f32>::randn(&[cols], &mut seeded_rng(3));
        let label = format!("{rows}x{cols}+{cols}");
        group.throughput(Throughput::Bytes(
            (2 * rows * cols * size_of::<f32>()) as u64,
        ));
        group.bench_function(BenchmarkId::new("tapeloop", &label), |b| {
            b.iter(|| black_box(&a).add(black_box(&row)))
        });
        let (a_data, row_data) = (a.to_vec(), row.to_vec());
        group.bench_function(BenchmarkId::new("plain_loop", &label), |b| {
            b.iter(|| {
                let (a_data, row_data) = (black_box(&a_data), black_box(&row_data));
                let mut out = Vec::with_capacity(a_data.len());
                for a_row in a_data.chunks_exact(cols) {
                    out.extend(a_row.iter().zip(row_data).map(|(&x, &y)| x + y));
                }
                out
            })
        });
    }
    group.finish();
}

fn sum(c: &mut Criterion) {
    let mut group = c.benchmark_group("sum");
    let n = 1 << 20;
    let x = Tensor::<f32>::randn(&[n], &mut seeded_rng(4));
    let label = format!("{n}");
    group.throughput(Throughput::Bytes((n * size_of::<f32>()) as u64));
    group.bench_function(BenchmarkId::new("tapeloop", &label), |b| {
        b.iter(|| black_box(&x).sum_all())
    });
    let data = x.to_vec();
    // The loop anyone would write first: one running sum, which the compiler must keep in order.
    group.bench_function(BenchmarkId::new("plain_loop", &label), |b| {
        b.iter(|| black_box(&data).iter().sum::<f32>())
    });
    // The same loop with eight independent accumulators, which the compiler vectorizes.
    group.bench_function(BenchmarkId::new("plain_loop_8_lanes", &label), |b| {
        b.iter(|| {
            let mut lanes = [0f32; 8];
            let chunks = black_box(&data).chunks_exact(8);
            let tail: f32 = chunks.remainder().iter().sum();
            for chunk in chunks {
                for (lane, &v) in lanes.iter_mut().zip(chunk) {
                    *lane += v;
                }
            }
            lanes.iter().sum::<f32>() + tail
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // No HTML plots: the numbers are what BENCHMARKS.md records, and criterion's plotting
    // backend panics without a system font when the workspace enables plotters' `ab_glyph`.
    config = Criterion::default().without_plots();
    targets = matmul, unary, broadcast_add, sum
}
criterion_main!(benches);
