//! More parity with PyTorch: variable-length batches (`pack_padded_sequence` with
//! `enforce_sorted=False`, padded back with zeros) and LSTM projections in stacked,
//! bidirectional layers. The cases are written by `scripts/torch_fixtures.py` (see
//! tests/fixtures/torch/README.md); every tensor in each file is compared element by element.

use std::path::PathBuf;

use tapeloop_rnn::parity::check_parity;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/torch")
        .join(name)
}

fn assert_parity(name: &str) {
    let report = check_parity(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let failures: Vec<String> = report
        .rows
        .iter()
        .filter(|r| !r.passed)
        .map(|r| {
            format!(
                "{}: max abs {:.3e}, max rel {:.3e}",
                r.name, r.max_abs, r.max_rel
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{name} ({}):\n{}",
        report.description,
        failures.join("\n")
    );
    // Every gradient in the file was compared, not skipped.
    assert!(report.rows.iter().any(|r| r.name == "grad.input"));
    assert!(report.rows.iter().any(|r| r.name == "grad.h0"));
    assert!(
        report
            .rows
            .iter()
            .any(|r| r.name.starts_with("grad.weight_hh_l0"))
    );
}

/// Asserts the description says the case is variable-length, so the lengths were read.
fn assert_variable_length(name: &str) {
    let report = check_parity(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        report.description.contains("variable-length"),
        "{name}: {}",
        report.description
    );
}

#[test]
fn rnn_tanh_variable_length() {
    assert_parity("rnn_tanh_varlen.safetensors");
    assert_variable_length("rnn_tanh_varlen.safetensors");
}

#[test]
fn lstm_two_layers_bidirectional_variable_length() {
    assert_parity("lstm_2layer_bidirectional_varlen.safetensors");
    assert_variable_length("lstm_2layer_bidirectional_varlen.safetensors");
}

#[test]
fn gru_bidirectional_variable_length() {
    assert_parity("gru_bidirectional_varlen.safetensors");
    assert_variable_length("gru_bidirectional_varlen.safetensors");
}

#[test]
fn lstm_batch_first_variable_length() {
    assert_parity("lstm_batch_first_varlen.safetensors");
    assert_variable_length("lstm_batch_first_varlen.safetensors");
}

#[test]
fn lstm_with_projection_two_layers_bidirectional() {
    assert_parity("lstm_proj_2layer_bidirectional.safetensors");
}

#[test]
fn lstm_with_projection_bidirectional_variable_length() {
    assert_parity("lstm_proj_bidirectional_varlen.safetensors");
    assert_variable_length("lstm_proj_bidirectional_varlen.safetensors");
}
