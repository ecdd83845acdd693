//! Optimizers, schedules and gradient clipping against PyTorch, and SGD against hand-derived
//! values.
//!
//! The reference numbers were computed once with PyTorch 2.15.0 in float64 by
//! `scripts/torch_optim_reference.py` and pasted here. Every optimizer case minimises
//! `loss = Σ w·c + Σ w²` (so `∇ = c + 2w`) from `w0 = [0.5, −1.5, 2.0, −0.25]` with
//! `c = [1.0, −2.0, 0.5, 3.0]`, and lists `w` after each of five steps.

use tapeloop_rnn::optim::{
    Adam, AdamConfig, LrSchedule, Optimizer, Rmsprop, RmspropConfig, Sgd, SgdConfig,
};
use tapeloop_rnn::train::{clip_grad_norm, clip_grad_value};
use tapeloop_rnn::{Parameter, Tensor, Var};

const W0: [f64; 4] = [0.5, -1.5, 2.0, -0.25];
const C: [f64; 4] = [1.0, -2.0, 0.5, 3.0];

/// Runs five steps of `make`'s optimizer on the reference loss and returns `w` after each.
fn run(make: impl FnOnce(Vec<Parameter<f64>>) -> Box<dyn Optimizer<f64>>) -> Vec<Vec<f64>> {
    let w = Parameter::new(Tensor::from_vec(W0.to_vec(), &[4]));
    let c = Var::constant(Tensor::from_vec(C.to_vec(), &[4]));
    let mut optimizer = make(vec![w.clone()]);
    (0..5)
        .map(|_| {
            optimizer.zero_grad();
            let loss = &(&w.var() * &c).sum(&[], false) + &w.var().square().sum(&[], false);
            loss.backward().unwrap();
            optimizer.step();
            w.value().to_vec()
        })
        .collect()
}

/// Asserts agreement to a few units in the last place of f64 (PyTorch's kernels may round
/// `a·b + c` differently from ours).
fn assert_close(name: &str, got: &[Vec<f64>], expected: &[[f64; 4]; 5]) {
    for (step, (g, e)) in got.iter().zip(expected).enumerate() {
        for (i, (a, b)) in g.iter().zip(e).enumerate() {
            let tolerance = 1e-14 * b.abs().max(1.0);
            assert!(
                (a - b).abs() <= tolerance,
                "{name}: step {} element {i}: got {a:e}, PyTorch {b:e}",
                step + 1
            );
        }
    }
}

fn sgd(config: SgdConfig) -> impl FnOnce(Vec<Parameter<f64>>) -> Box<dyn Optimizer<f64>> {
    move |params| Box::new(Sgd::new(params, config).unwrap())
}

fn adam(config: AdamConfig) -> impl FnOnce(Vec<Parameter<f64>>) -> Box<dyn Optimizer<f64>> {
    move |params| Box::new(Adam::new(params, config).unwrap())
}

fn rmsprop(config: RmspropConfig) -> impl FnOnce(Vec<Parameter<f64>>) -> Box<dyn Optimizer<f64>> {
    move |params| Box::new(Rmsprop::new(params, config).unwrap())
}

#[test]
fn sgd_by_hand() {
    // loss = w², w = 2, lr 0.125, momentum 0.5, weight decay 0.5 (so g = 2w + 0.5w = 2.5w):
    // step 1: g = 5,          b = 5,                        w = 2 − 0.125·5             = 1.375
    // step 2: g = 3.4375,     b = 0.5·5 + 3.4375 = 5.9375,  w = 1.375 − 0.125·5.9375    = 0.6328125
    // step 3: g = 1.58203125, b = 2.96875 + 1.58203125 = 4.55078125,
    //                                                       w = 0.6328125 − 0.56884765625 = 0.06396484375
    // Every value is dyadic, so the arithmetic is exact and the comparison can be too.
    let w = Parameter::new(Tensor::<f64>::scalar(2.0));
    let mut optimizer = Sgd::new(
        vec![w.clone()],
        SgdConfig::new(0.125).momentum(0.5).weight_decay(0.5),
    )
    .unwrap();
    for expected in [1.375, 0.6328125, 0.06396484375] {
        optimizer.zero_grad();
        w.var().square().backward().unwrap();
        optimizer.step();
        assert_eq!(w.value().item(), expected);
    }
    let buffer = &optimizer.state().tensors[0];
    assert_eq!(
        (buffer.0.as_str(), buffer.1.item()),
        ("0.momentum_buffer", 4.55078125)
    );

    // Nesterov, one step from the same start: g = 5, b = 5, g ← g + 0.5·b = 7.5,
    // w = 2 − 0.125·7.5 = 1.0625.
    let w = Parameter::new(Tensor::<f64>::scalar(2.0));
    let mut nesterov = Sgd::new(
        vec![w.clone()],
        SgdConfig::new(0.125)
            .momentum(0.5)
            .weight_decay(0.5)
            .nesterov(true),
    )
    .unwrap();
    w.var().square().backward().unwrap();
    nesterov.step();
    assert_eq!(w.value().item(), 1.0625);
}

#[test]
fn sgd_matches_pytorch() {
    assert_close(
        "sgd",
        &run(sgd(SgdConfig::new(0.1))),
        &[
            [0.3, -1.0, 1.55, -0.5],
            [0.13999999999999996, -0.6, 1.19, -0.7],
            [
                0.01199999999999997,
                -0.2799999999999999,
                0.9019999999999999,
                -0.86,
            ],
            [
                -0.09040000000000004,
                -0.02399999999999994,
                0.6715999999999999,
                -0.988,
            ],
            [
                -0.17232000000000003,
                0.18080000000000007,
                0.4872799999999999,
                -1.0904,
            ],
        ],
    );
    assert_close(
        "sgd momentum",
        &run(sgd(SgdConfig::new(0.1).momentum(0.9))),
        &[
            [0.3, -1.0, 1.55, -0.5],
            [
                -0.04000000000000006,
                -0.14999999999999997,
                0.7849999999999999,
                -0.925,
            ],
            [-0.4380000000000001, 0.845, -0.11050000000000014, -1.4225],
            [
                -0.8086000000000001,
                1.7715,
                -0.9443500000000001,
                -1.8857500000000003,
            ],
            [
                -1.0804200000000002,
                2.4510500000000004,
                -1.5559450000000001,
                -2.225525,
            ],
        ],
    );
    assert_close(
        "sgd dampening",
        &run(sgd(SgdConfig::new(0.1).momentum(0.9).dampening(0.3))),
        &[
            [0.3, -1.0, 1.55, -0.5],
            [0.00799999999999998, -0.26999999999999996, 0.893, -0.865],
            [
                -0.32592000000000004,
                0.5648000000000002,
                0.14168000000000003,
                -1.2824,
            ],
            [
                -0.6508192,
                1.3770480000000003,
                -0.5893432000000001,
                -1.6885240000000001,
            ],
            [-0.922113792, 2.0552844800000005, -1.199756032, -2.02764224],
        ],
    );
    assert_close(
        "sgd nesterov",
        &run(sgd(SgdConfig::new(0.1).momentum(0.9).nesterov(true))),
        &[
            [0.12, -0.5499999999999999, 1.1449999999999998, -0.725],
            [-0.2776, 0.44400000000000006, 0.2503999999999998, -1.222],
            [-0.608352, 1.2708800000000002, -0.4937920000000001, -1.63544],
            [
                -0.8248230400000001,
                1.8120576000000002,
                -0.98085184,
                -1.9060288,
            ],
            [
                -0.9157175808000001,
                2.039293952,
                -1.1853645568,
                -2.019646976,
            ],
        ],
    );
    assert_close(
        "sgd weight decay",
        &run(sgd(SgdConfig::new(0.1).momentum(0.5).weight_decay(0.1))),
        &[
            [0.295, -0.985, 1.53, -0.4975],
            [0.030549999999999983, -0.32065, 0.9237, -0.816775],
            [
                -0.2080905,
                0.27886150000000004,
                0.3765729999999999,
                -1.1048897500000001,
            ],
            [
                -0.38371174500000005,
                0.720056335,
                -0.02607083000000011,
                -1.3169202775000002,
            ],
            [
                -0.49094290105000005,
                0.98944192215,
                -0.27191787070000006,
                -1.4463822829750002,
            ],
        ],
    );
}

#[test]
fn adam_and_adamw_match_pytorch() {
    assert_close(
        "adam",
        &run(adam(AdamConfig::adam(0.1))),
        &[
            [
                0.4000000005,
                -1.4000000002,
                1.9000000002222222,
                -0.3499999996,
            ],
            [
                0.30041222869179285,
                -1.300127188380826,
                1.8001442685259845,
                -0.4496962728305869,
            ],
            [
                0.20158627294603026,
                -1.200473933862959,
                1.7005387267792513,
                -0.5488445502757112,
            ],
            [
                0.10393906057374606,
                -1.1011384093723093,
                1.6012968726904249,
                -0.6471646862431369,
            ],
            [
                0.007963659264342032,
                -1.0022246492755822,
                1.5025399461361866,
                -0.7443371606978946,
            ],
        ],
    );
    assert_close(
        "adam weight decay amsgrad",
        &run(adam(
            AdamConfig::adam(0.05)
                .betas(0.8, 0.99)
                .eps(1e-6)
                .weight_decay(0.1)
                .amsgrad(true),
        )),
        &[
            [
                0.450000024390232,
                -1.450000009708736,
                1.9500000106382955,
                -0.299999979797988,
            ],
            [
                0.40015669653188146,
                -1.400057301101739,
                1.9000631306020668,
                -0.349873280062364,
            ],
            [
                0.3505843897911917,
                -1.3502109968516727,
                1.8502326397531728,
                -0.3995291890777794,
            ],
            [
                0.3014039504807509,
                -1.3005004234016124,
                1.8005521770328108,
                -0.4488732401422868,
            ],
            [
                0.25274172753902735,
                -1.2509647204015375,
                1.7510653076946565,
                -0.49780805493729413,
            ],
        ],
    );
    assert_close(
        "adamw",
        &run(adam(AdamConfig::adamw(0.1).weight_decay(0.1))),
        &[
            [
                0.3950000005,
                -1.3850000001999998,
                1.8800000002222221,
                -0.3474999996,
            ],
            [
                0.2914915844890452,
                -1.271300391712539,
                1.7613802847850655,
                -0.44373135614366344,
            ],
            [
                0.18983029448835673,
                -1.1589965156591853,
                1.644259334346125,
                -0.5384774976607996,
            ],
            [
                0.09043518908167834,
                -1.0481887987384766,
                1.5287637613250469,
                -0.6314965507105259,
            ],
            [
                -0.006204763159779053,
                -0.9389826153824273,
                1.4150283278692581,
                -0.722520140268913,
            ],
        ],
    );
}

#[test]
fn rmsprop_matches_pytorch() {
    assert_close(
        "rmsprop",
        &run(rmsprop(RmspropConfig::new(0.01))),
        &[
            [
                0.40000000499999977,
                -1.400000002,
                1.9000000022222223,
                -0.3499999960000001,
            ],
            [
                0.33291796797003315,
                -1.3305659171179889,
                1.8307329541366688,
                -0.4178897403536844,
            ],
            [
                0.2799822732436351,
                -1.2744680312943564,
                1.774857952138493,
                -0.47191667378356106,
            ],
            [
                0.23538904443822353,
                -1.226260423899927,
                1.7269030708105972,
                -0.5177635577007422,
            ],
            [
                0.1964657887382079,
                -1.183411106793733,
                1.684326178815551,
                -0.5580550791696351,
            ],
        ],
    );
    assert_close(
        "rmsprop momentum centered",
        &run(rmsprop(
            RmspropConfig::new(0.01)
                .alpha(0.9)
                .eps(1e-6)
                .momentum(0.9)
                .centered(true)
                .weight_decay(0.1),
        )),
        &[
            [
                0.4666667208671205,
                -1.4666666882416257,
                1.9666666903073118,
                -0.2833332884400156,
            ],
            [
                0.41160067281303253,
                -1.4113421156254986,
                1.9113582197936458,
                -0.3384740087519268,
            ],
            [
                0.34064422841973524,
                -1.3394742918357876,
                1.8395464287736407,
                -0.40969625945115806,
            ],
            [
                0.2577190859940195,
                -1.2544853416665456,
                1.754682343094643,
                -0.49323043900163616,
            ],
            [
                0.16585786501912844,
                -1.1587885380608265,
                1.6592132337469199,
                -0.5862389581718125,
            ],
        ],
    );
}

#[test]
fn parameters_without_gradient_are_skipped() {
    let used = Parameter::new(Tensor::<f64>::ones(&[2]));
    let unused = Parameter::new(Tensor::<f64>::ones(&[3]));
    let mut optimizer = Adam::new(
        vec![used.clone(), unused.clone()],
        AdamConfig::adamw(0.1), // decoupled decay would shrink `unused` if it were visited
    )
    .unwrap();
    for _ in 0..3 {
        optimizer.zero_grad();
        used.var().square().sum(&[], false).backward().unwrap();
        optimizer.step();
    }
    assert_eq!(unused.value().to_vec(), vec![1.0; 3]);
    assert_ne!(used.value().to_vec(), vec![1.0; 2]);
    let state = optimizer.state();
    assert_eq!(state.steps, vec![3, 0]);
    let names: Vec<&str> = state.tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["0.exp_avg", "0.exp_avg_sq"]);
}

#[test]
fn invalid_hyperparameters_are_named() {
    let p = || vec![Parameter::new(Tensor::<f32>::zeros(&[1]))];
    let err = Sgd::new(p(), SgdConfig::new(0.1).nesterov(true))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("nesterov needs momentum > 0"), "{err}");
    let err = Adam::new(p(), AdamConfig::adam(-1.0).betas(0.9, 1.0))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("lr must be ≥ 0, got -1") && err.contains("beta2"),
        "{err}"
    );
    let err = Rmsprop::new(p(), RmspropConfig::new(0.01).alpha(1.5))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("alpha must be in [0, 1], got 1.5"), "{err}");
}

#[test]
fn schedules_match_pytorch() {
    let cases: [(LrSchedule, [f64; 10]); 3] = [
        (
            LrSchedule::Step {
                step_size: 3,
                gamma: 0.5,
            },
            [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125],
        ),
        (
            LrSchedule::Exponential { gamma: 0.9 },
            [
                0.1,
                0.09000000000000001,
                0.08100000000000002,
                0.07290000000000002,
                0.06561000000000002,
                0.05904900000000002,
                0.05314410000000002,
                0.04782969000000002,
                0.043046721000000024,
                0.03874204890000002,
            ],
        ),
        (
            LrSchedule::Cosine {
                t_max: 8,
                eta_min: 0.01,
            },
            [
                0.1,
                0.0965745789630079,
                0.08681980515339463,
                0.07222075445642905,
                0.055,
                0.03777924554357096,
                0.023180194846605363,
                0.013425421036992097,
                0.01,
                0.013425421036992097,
            ],
        ),
    ];
    for (schedule, expected) in cases {
        for (step, &e) in expected.iter().enumerate() {
            let got = schedule.learning_rate(0.1, step as u64);
            // PyTorch multiplies its rates step by step; the closed form rounds differently.
            assert!(
                (got - e).abs() <= 1e-15,
                "{schedule:?} at step {step}: {got} vs PyTorch {e}"
            );
        }
    }
}

fn clip_fixture() -> [Parameter<f64>; 2] {
    let a = Parameter::new(Tensor::zeros(&[2, 2]));
    let b = Parameter::new(Tensor::zeros(&[3]));
    a.set_grad(Some(Tensor::from_vec(vec![3.0, -4.0, 1.0, 2.0], &[2, 2])));
    b.set_grad(Some(Tensor::from_vec(vec![0.5, -6.0, 2.5], &[3])));
    [a, b]
}

#[test]
fn clip_grad_norm_matches_pytorch() {
    // torch.nn.utils.clip_grad_norm_ on the same gradients, max_norm 1.0.
    let [a, b] = clip_fixture();
    let norm = clip_grad_norm(&[a.clone(), b.clone()], 1.0);
    assert!((norm - 8.514693182963201).abs() < 1e-14, "{norm}");
    let expected_a = [
        0.3523320903295166,
        -0.46977612043935546,
        0.11744403010983887,
        0.23488806021967773,
    ];
    let expected_b = [
        0.05872201505491943,
        -0.7046641806590332,
        0.29361007527459715,
    ];
    for (got, expected) in [
        (a.grad().unwrap(), &expected_a[..]),
        (b.grad().unwrap(), &expected_b[..]),
    ] {
        for (g, e) in got.to_vec().iter().zip(expected) {
            assert!((g - e).abs() < 1e-15, "{g} vs PyTorch {e}");
        }
    }
    // The clipped gradients have norm max_norm (up to PyTorch's 1e-6 guard).
    let after = clip_grad_norm(&[a, b], 100.0);
    assert!((after - 1.0).abs() < 1e-6, "{after}");

    // Under the limit: the norm is reported and nothing changes.
    let [a, b] = clip_fixture();
    let norm = clip_grad_norm(&[a.clone(), b.clone()], 100.0);
    assert!((norm - 8.514693182963201).abs() < 1e-14);
    assert_eq!(a.grad().unwrap().to_vec(), vec![3.0, -4.0, 1.0, 2.0]);
    assert_eq!(b.grad().unwrap().to_vec(), vec![0.5, -6.0, 2.5]);
}

#[test]
fn clip_grad_value_clamps_each_element() {
    let [a, b] = clip_fixture();
    let no_grad = Parameter::new(Tensor::<f64>::zeros(&[1]));
    clip_grad_value(&[a.clone(), b.clone(), no_grad.clone()], 2.5);
    assert_eq!(a.grad().unwrap().to_vec(), vec![2.5, -2.5, 1.0, 2.0]);
    assert_eq!(b.grad().unwrap().to_vec(), vec![0.5, -2.5, 2.5]);
    assert!(no_grad.grad().is_none());
}
