//! The command line as a user runs it: the built binary, its exit status and its messages.

use std::process::Command;

/// `tapeloop bench` on the smallest layer, with `TAPELOOP_NUM_THREADS` set to `threads`.
fn bench_with_threads_variable(threads: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .args(["bench", "--cell", "rnn", "--seq-len", "2", "--batch", "1"])
        .args([
            "--input",
            "2",
            "--hidden",
            "2",
            "--warmup",
            "0",
            "--iterations",
            "1",
        ])
        .env("TAPELOOP_NUM_THREADS", threads)
        .output()
        .expect("the tapeloop binary runs")
}

#[test]
fn a_bad_thread_count_in_the_environment_is_an_error_naming_it() {
    for bad in ["abc", "0", "-2", ""] {
        let output = bench_with_threads_variable(bad);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{bad:?} was accepted");
        assert!(
            stderr.contains(&format!(
                "TAPELOOP_NUM_THREADS must be a positive whole number, got {bad:?}"
            )),
            "{bad:?}: {stderr}"
        );
    }
    for good in ["1", " 2 "] {
        let output = bench_with_threads_variable(good);
        assert!(
            output.status.success(),
            "{good:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn the_environment_is_checked_even_when_threads_is_given() {
    let output = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .args([
            "train",
            "--task",
            "adding",
            "--steps",
            "1",
            "--threads",
            "2",
        ])
        .env("TAPELOOP_NUM_THREADS", "many")
        .output()
        .expect("the tapeloop binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("TAPELOOP_NUM_THREADS must be a positive whole number, got \"many\""),
        "{stderr}"
    );
}

#[cfg(unix)]
#[test]
fn a_thread_count_that_is_not_text_is_an_error() {
    use std::os::unix::ffi::OsStrExt;
    let output = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .args(["bench", "--cell", "rnn", "--seq-len", "1", "--batch", "1"])
        .args([
            "--input",
            "1",
            "--hidden",
            "1",
            "--warmup",
            "0",
            "--iterations",
            "1",
        ])
        .env(
            "TAPELOOP_NUM_THREADS",
            std::ffi::OsStr::from_bytes(&[0xff, b'2']),
        )
        .output()
        .expect("the tapeloop binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("TAPELOOP_NUM_THREADS must be a positive whole number"),
        "{stderr}"
    );
}
