//! The command line as a user runs it: the built binary, its exit status and its messages.

use std::ffi::OsStr;
use std::process::{Command, Output};

/// The smallest `tapeloop bench` run.
const TINY_BENCH: [&str; 15] = [
    "bench",
    "--cell",
    "rnn",
    "--seq-len",
    "2",
    "--batch",
    "1",
    "--input",
    "2",
    "--hidden",
    "2",
    "--warmup",
    "0",
    "--iterations",
    "1",
];

/// `tapeloop args…` with `TAPELOOP_NUM_THREADS` set to `threads`.
fn run_with_threads_variable(args: &[&str], threads: impl AsRef<OsStr>) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .args(args)
        .env("TAPELOOP_NUM_THREADS", threads)
        .output()
        .expect("the tapeloop binary runs")
}

/// The run failed, and its error names the variable and what a valid value is.
#[track_caller]
fn assert_refused(output: &Output, value_shown: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "accepted: {stderr}");
    assert!(
        stderr.contains(&format!(
            "TAPELOOP_NUM_THREADS must be a positive whole number, got {value_shown}"
        )),
        "{stderr}"
    );
}

#[test]
fn a_bad_thread_count_in_the_environment_is_an_error_naming_it() {
    for bad in ["abc", "0", "-2", ""] {
        assert_refused(
            &run_with_threads_variable(&TINY_BENCH, bad),
            &format!("{bad:?}"),
        );
    }
    for good in ["1", " 2 "] {
        let output = run_with_threads_variable(&TINY_BENCH, good);
        assert!(
            output.status.success(),
            "{good:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn the_environment_is_checked_even_when_threads_is_given() {
    let train = [
        "train",
        "--task",
        "adding",
        "--steps",
        "1",
        "--threads",
        "2",
    ];
    assert_refused(&run_with_threads_variable(&train, "many"), "\"many\"");
}

#[cfg(unix)]
#[test]
fn a_thread_count_that_is_not_text_is_an_error() {
    use std::os::unix::ffi::OsStrExt;
    let not_utf8 = OsStr::from_bytes(&[0xff, b'2']);
    assert_refused(
        &run_with_threads_variable(&TINY_BENCH, not_utf8),
        r#""\xFF2""#,
    );
}

#[test]
fn a_configuration_too_large_for_memory_is_refused_before_allocating() {
    // W_hh alone is 4·10⁷ × 10⁷ floats (1.6 PB): refused with a message, not killed by the
    // kernel part-way through allocating it.
    let mut args = TINY_BENCH;
    args[10] = "10000000";
    let output = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .args(args)
        .output()
        .expect("the tapeloop binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "accepted: {stderr}");
    assert!(
        stderr.contains("bench: the weights and inputs of this configuration alone need")
            && stderr.contains("hidden 10000000"),
        "{stderr}"
    );
}
