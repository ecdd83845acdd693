//! A tour of the tensor crate: views that copy nothing, broadcasting, reductions and matmul.
//!
//! Run with `cargo run --release --example tensor_tour`.

use tapeloop::tensor::{Tensor, seeded_rng};

fn main() {
    let mut rng = seeded_rng(0);
    let a = Tensor::<f32>::arange(0.0, 12.0, 1.0).reshape(&[3, 4]);
    println!("a = {a}");

    let at = a.t();
    println!(
        "a.t() shares storage with a: {}, strides {:?}",
        at.shares_storage(&a),
        at.strides()
    );
    println!("a.narrow(1, 1, 2) = {}", a.narrow(1, 1, 2));

    let row = Tensor::<f32>::from_vec(vec![10.0, 20.0, 30.0, 40.0], &[4]);
    println!("a + row (broadcast) = {}", &a + &row);
    println!("a.sum(dim 1) = {}", a.sum(&[1], false));
    println!("a.softmax(-1) = {}", a.softmax(-1));

    let w = Tensor::<f32>::randn(&[4, 5], &mut rng);
    println!("a @ w = {}", a.matmul(&w));
    println!(
        "at.t() @ w copies nothing: {}",
        at.t().matmul(&w) == a.matmul(&w)
    );

    let big = Tensor::<f32>::randn(&[64, 512], &mut rng);
    let weight = Tensor::<f32>::randn(&[2048, 512], &mut rng);
    let start = std::time::Instant::now();
    let projected = big.matmul(&weight.t());
    let seconds = start.elapsed().as_secs_f64();
    let gflops = 2.0 * 64.0 * 512.0 * 2048.0 / seconds / 1e9;
    println!(
        "[64, 512] x [512, 2048] -> {:?} at {gflops:.0} GFLOP/s (one cold run)",
        projected.shape()
    );
}
