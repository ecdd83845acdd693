//! Parity with PyTorch 2.15 on the reference cases in tests/fixtures/torch: outputs, final
//! states, the loss and every gradient, element by element. The first nine are the project's
//! shared cases; the rest — variable-length batches (`pack_padded_sequence` with
//! `enforce_sorted=False`, padded back with zeros) and projections in stacked bidirectional
//! LSTMs — are written by `scripts/torch_fixtures.py` (see the fixtures README).

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

#[test]
fn rnn_tanh() {
    assert_parity("rnn_tanh.safetensors");
}

#[test]
fn rnn_relu_two_layers() {
    assert_parity("rnn_relu_2layer.safetensors");
}

#[test]
fn lstm() {
    assert_parity("lstm.safetensors");
}

#[test]
fn lstm_two_layers_bidirectional() {
    assert_parity("lstm_2layer_bidirectional.safetensors");
}

#[test]
fn lstm_batch_first_without_bias() {
    assert_parity("lstm_batch_first_nobias.safetensors");
}

#[test]
fn lstm_float32() {
    assert_parity("lstm_f32.safetensors");
}

#[test]
fn lstm_with_projection() {
    assert_parity("lstm_proj.safetensors");
}

#[test]
fn gru() {
    assert_parity("gru.safetensors");
}

#[test]
fn gru_two_layers_bidirectional() {
    assert_parity("gru_2layer_bidirectional.safetensors");
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

#[test]
fn malformed_files_are_errors_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("tapeloop-parity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"not a safetensors file").unwrap();
    let err = check_parity(&garbage).unwrap_err().to_string();
    assert!(
        err.contains("garbage.safetensors") && err.contains("not a valid safetensors file"),
        "{err}"
    );
    let missing = dir.join("missing.safetensors");
    let err = check_parity(&missing).unwrap_err().to_string();
    assert!(
        err.contains("missing.safetensors") && err.contains("cannot read"),
        "{err}"
    );
}
