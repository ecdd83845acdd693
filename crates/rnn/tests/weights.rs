//! Weights in and out (safetensors under PyTorch's names) and the initialization schemes.

use tapeloop_rnn::io::{TensorFile, load_module, save_module, save_tensors};
use tapeloop_rnn::{Gru, Init, Lstm, Module, RecurrentConfig, RnnError, Tensor, seeded_rng};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tapeloop-weights-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn names_follow_pytorch_for_stacked_bidirectional_projected_lstms() {
    let config = RecurrentConfig::new(3, 5).num_layers(2).bidirectional(true);
    let lstm = Lstm::<f32>::lstm(&config, 2, &mut seeded_rng(0));
    let names: Vec<(String, Vec<usize>)> = lstm
        .named_parameters()
        .into_iter()
        .map(|(n, p)| (n, p.shape()))
        .collect();
    let expect = |name: &str, shape: &[usize]| {
        assert!(
            names.contains(&(name.to_string(), shape.to_vec())),
            "{name} {shape:?} missing from {names:?}"
        );
    };
    expect("weight_ih_l0", &[20, 3]);
    expect("weight_hh_l0", &[20, 2]);
    expect("weight_hr_l0", &[2, 5]);
    expect("bias_ih_l0_reverse", &[20]);
    expect("weight_ih_l1", &[20, 4]); // two directions × proj_size 2
    expect("weight_hr_l1_reverse", &[2, 5]);
    assert_eq!(names.len(), 4 * 5);
}

#[test]
fn a_round_trip_preserves_every_value_and_outputs() {
    let dir = temp_dir("roundtrip");
    let config = RecurrentConfig::new(3, 4).num_layers(2);
    let a = Gru::<f64>::gru(&config, &mut seeded_rng(1));
    let b = Gru::<f64>::gru(&config, &mut seeded_rng(2));
    save_module(&a, dir.join("gru.safetensors")).unwrap();
    load_module(&b, dir.join("gru.safetensors")).unwrap();
    for ((na, pa), (nb, pb)) in a.named_parameters().into_iter().zip(b.named_parameters()) {
        assert_eq!(na, nb);
        assert_eq!(pa.value(), pb.value(), "{na}");
    }
}

#[test]
fn every_problem_is_listed_and_nothing_is_half_loaded() {
    let dir = temp_dir("problems");
    let path = dir.join("bad.safetensors");
    let model = Lstm::<f64>::lstm(&RecurrentConfig::new(3, 4), 0, &mut seeded_rng(3));
    let mut tensors: Vec<(String, Tensor<f64>)> = model
        .named_parameters()
        .into_iter()
        .map(|(name, p)| (name, p.value().add_scalar(1.0)))
        .collect();
    tensors.retain(|(name, _)| name != "bias_hh_l0"); // missing
    tensors[0].1 = Tensor::zeros(&[16, 2]); // weight_ih_l0 mis-shaped
    tensors.push(("weight_ih_l7".into(), Tensor::zeros(&[1]))); // unexpected
    save_tensors(&path, &tensors, None).unwrap();
    let before: Vec<Tensor<f64>> = model.parameters().iter().map(|p| p.value()).collect();

    let err = load_module(&model, &path).unwrap_err();
    let RnnError::Weights(problems) = &err else {
        panic!("expected a weights error, got {err}")
    };
    assert_eq!(problems.len(), 3, "{err}");
    let message = err.to_string();
    for needle in [
        "bias_hh_l0",
        "weight_ih_l0` has shape [16, 2], the model expects [16, 3]",
        "unexpected tensor `weight_ih_l7`",
    ] {
        assert!(message.contains(needle), "`{needle}` not in: {message}");
    }
    let after: Vec<Tensor<f64>> = model.parameters().iter().map(|p| p.value()).collect();
    assert_eq!(before, after, "a failed load must not change any parameter");
}

#[test]
fn a_wrong_dtype_is_an_error_naming_both() {
    let dir = temp_dir("dtype");
    let path = dir.join("f32.safetensors");
    let config = RecurrentConfig::new(2, 3);
    save_module(&Gru::<f32>::gru(&config, &mut seeded_rng(0)), &path).unwrap();
    let err = load_module(&Gru::<f64>::gru(&config, &mut seeded_rng(0)), &path)
        .unwrap_err()
        .to_string();
    assert!(err.contains("dtype F32, expected F64"), "{err}");
}

#[test]
fn files_that_are_not_safetensors_are_errors_naming_the_path() {
    let dir = temp_dir("garbage");
    let path = dir.join("garbage.safetensors");
    std::fs::write(&path, [0u8; 3]).unwrap();
    let err = TensorFile::open(&path)
        .err()
        .expect("garbage must not parse")
        .to_string();
    assert!(
        err.contains("garbage.safetensors") && err.contains("not a valid safetensors file"),
        "{err}"
    );
}

#[test]
fn initialization_schemes_draw_what_they_promise() {
    let hidden = 8;
    let config = RecurrentConfig::new(6, hidden);
    let lstm = Lstm::<f64>::lstm(&config, 0, &mut seeded_rng(4));
    let bound = 1.0 / (hidden as f64).sqrt();
    for (name, p) in lstm.named_parameters() {
        let max = p.value().abs().max(&[], false).item();
        assert!(
            max <= bound,
            "{name}: PyTorch's default keeps |w| ≤ 1/√H, got {max}"
        );
    }

    lstm.reinitialize(Init::Orthogonal, &mut seeded_rng(5));
    let params: std::collections::HashMap<String, Tensor<f64>> = lstm
        .named_parameters()
        .into_iter()
        .map(|(n, p)| (n, p.value()))
        .collect();
    for gate in 0..4 {
        let block = params["weight_hh_l0"].narrow(0, gate * hidden, hidden);
        let error = block
            .matmul(&block.t())
            .sub(&Tensor::eye(hidden))
            .abs()
            .max(&[], false)
            .item();
        assert!(
            error < 1e-12,
            "recurrent block {gate} is not orthogonal: {error}"
        );
    }
    let xavier = (6.0 / (hidden + 6) as f64).sqrt();
    assert!(params["weight_ih_l0"].abs().max(&[], false).item() <= xavier);
    assert_eq!(params["bias_ih_l0"].abs().sum_all(), 0.0);

    lstm.set_forget_bias(1.0);
    let b_ih = lstm
        .named_parameters()
        .into_iter()
        .find(|(n, _)| n == "bias_ih_l0")
        .unwrap()
        .1
        .value();
    let b_hh = lstm
        .named_parameters()
        .into_iter()
        .find(|(n, _)| n == "bias_hh_l0")
        .unwrap()
        .1
        .value();
    let forget_sum = b_ih.add(&b_hh).narrow(0, hidden, hidden);
    assert_eq!(forget_sum.to_vec(), vec![1.0; hidden]);
    assert_eq!(
        b_ih.narrow(0, 0, hidden).to_vec(),
        vec![0.0; hidden],
        "other gates untouched"
    );
}

#[test]
fn bad_inputs_are_errors_naming_the_shapes() {
    let lstm = Lstm::<f64>::lstm(
        &RecurrentConfig::new(3, 4).num_layers(2),
        0,
        &mut seeded_rng(0),
    );
    let x = tapeloop_rnn::Var::constant(Tensor::zeros(&[5, 2, 7]));
    let err = lstm.forward(&x, None, None).err().unwrap().to_string();
    assert!(
        err.contains("3 features") && err.contains("[5, 2, 7]"),
        "{err}"
    );
    let x = tapeloop_rnn::Var::constant(Tensor::zeros(&[5, 2, 3]));
    let h0 = tapeloop_rnn::Var::constant(Tensor::zeros(&[1, 2, 4]));
    let err = lstm
        .forward(&x, Some(&[h0.clone(), h0]), None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("[2, 2, 4]") && err.contains("[1, 2, 4]"),
        "{err}"
    );
    let err = lstm
        .forward(&x, None, Some(&[5, 9]))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("1..=5") && err.contains("9"), "{err}");
    let err = lstm
        .forward(&x, None, Some(&[5]))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("lengths has 1 entries but the batch has 2"),
        "{err}"
    );
}

/// A zero hidden size is reported as such for every cell; the LSTM used to report
/// "proj_size 0 must be smaller than hidden_size 0" instead.
#[test]
fn a_zero_hidden_size_is_named_for_every_cell() {
    let config = RecurrentConfig::new(3, 0);
    let message = |build: fn(&RecurrentConfig)| {
        let panic = std::panic::catch_unwind(|| build(&config)).unwrap_err();
        panic.downcast_ref::<String>().cloned().unwrap_or_default()
    };
    for text in [
        message(|c| {
            Lstm::<f32>::lstm(c, 0, &mut seeded_rng(0));
        }),
        message(|c| {
            Gru::<f32>::gru(c, &mut seeded_rng(0));
        }),
    ] {
        assert!(text.contains("hidden_size must be positive"), "{text}");
    }
}
