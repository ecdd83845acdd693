//! Loading PyTorch weights from safetensors.
//!
//! In PyTorch: `safetensors.torch.save_file(lstm.state_dict(), "lstm.safetensors")`. The names
//! (`weight_ih_l0`, `bias_hh_l0`, …), shapes and gate order are PyTorch's, so the file loads one
//! to one into the equivalent tapeloop layer. This example uses one of the project's PyTorch
//! reference cases, which also holds the inputs and PyTorch's outputs, and checks that the
//! loaded layer reproduces them.
//!
//! Run with `cargo run --release --example load_pytorch_weights [FILE]`.

use tapeloop::rnn::io::{TensorFile, load_from};
use tapeloop::rnn::{Lstm, Module, RecurrentConfig, Var, seeded_rng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/crates/rnn/tests/fixtures/torch/lstm.safetensors"
        )
        .to_string()
    });
    let file = TensorFile::open(&path)?;
    // nn.LSTM(input_size=4, hidden_size=6), as the file's metadata says.
    let lstm = Lstm::<f64>::lstm(&RecurrentConfig::new(4, 6), 0, &mut seeded_rng(0));
    // Not strict: the reference file holds inputs and results beside the state_dict.
    load_from(&lstm, &file, "", false)?;
    for (name, param) in lstm.named_parameters() {
        println!("loaded {name:<14} {:?}", param.shape());
    }
    let input = Var::constant(file.tensor::<f64>("input")?);
    let initial = [
        Var::constant(file.tensor::<f64>("h0")?),
        Var::constant(file.tensor::<f64>("c0")?),
    ];
    let out = lstm.forward(&input, Some(&initial), None)?;
    let expected = file.tensor::<f64>("output")?;
    let difference = out
        .output
        .value()
        .sub(&expected)
        .abs()
        .max(&[], false)
        .item();
    println!("largest |tapeloop − PyTorch| over the output: {difference:.3e}");
    assert!(difference < 1e-12);
    Ok(())
}
