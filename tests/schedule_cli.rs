//! `ringmaster schedule next` as a child process: the instants on stdout, one
//! per line in RFC 3339 UTC; a bad spec, zone or instant exits non-zero with
//! the message on stderr.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_ringmaster");

fn next(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["schedule", "next"])
        .args(args)
        .output()
        .expect("run ringmaster")
}

fn lines(out: &Output) -> Vec<String> {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn prints_the_next_instants_in_utc_through_a_spring_forward_gap() {
    let out = next(&[
        "30 2 * * *",
        "--tz",
        "America/New_York",
        "--after",
        "2026-03-07T12:00:00Z",
        "-n",
        "3",
    ]);
    assert_eq!(
        lines(&out),
        vec![
            "2026-03-08T07:00:00Z", // 02:30 does not exist: 03:00 EDT
            "2026-03-09T06:30:00Z",
            "2026-03-10T06:30:00Z",
        ]
    );
}

#[test]
fn literal_policy_fires_in_both_folds_of_a_fall_back() {
    let args = |dst| {
        vec![
            "30 1 * * *",
            "--tz",
            "America/New_York",
            "--after",
            "2026-11-01T04:00:00Z",
            "-n",
            "2",
            "--dst",
            dst,
        ]
    };
    assert_eq!(
        lines(&next(&args("literal"))),
        vec!["2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z"]
    );
    assert_eq!(
        lines(&next(&args("vixie"))),
        vec!["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
    );
}

#[test]
fn every_counts_from_after_and_offsets_are_accepted() {
    let out = next(&[
        "every 15m",
        "--after",
        "2026-01-01T01:00:00+01:00",
        "-n",
        "2",
    ]);
    assert_eq!(
        lines(&out),
        vec!["2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z"]
    );
}

#[test]
fn bad_input_exits_non_zero_with_the_message_on_stderr() {
    for (args, message) in [
        (vec!["0 0 32 * *"], "day-of-month: 32 is out of range 1-31"),
        (
            vec!["* * * * *", "--tz", "Mars/Base"],
            "timezone: unknown IANA zone \"Mars/Base\"",
        ),
        (vec!["0 0 30 2 *"], "spec \"0 0 30 2 *\" can never fire"),
        (
            vec!["* * * * *", "--dst", "sometimes"],
            "dst: unknown policy \"sometimes\"",
        ),
        (
            vec!["* * * * *", "--after", "yesterday"],
            "--after: \"yesterday\" is not an RFC 3339 instant",
        ),
    ] {
        let out = next(&args);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}
