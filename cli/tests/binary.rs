//! The `bluegreen` binary as a script runs it: environment variables, no terminal, exit codes
//! and messages on stderr. Nothing here needs a running API.

use std::process::{Command, Output, Stdio};

fn bluegreen(args: &[&str], env: &[(&str, &str)]) -> Output {
    let home = std::env::temp_dir().join("bluegreen-cli-test-home");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bluegreen"));
    cmd.args(args)
        .stdin(Stdio::null())
        .env("HOME", &home)
        .env("NO_COLOR", "1");
    for k in [
        "BLUEGREEN_ENDPOINT",
        "BLUEGREEN_LOCAL",
        "BLUEGREEN_STACK",
        "BLUEGREEN_CONFIG",
        "BLUEGREEN_ROUTER_URL",
        "BLUEGREEN_ROUTER_PORT",
        "XDG_CONFIG_HOME",
    ] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("running bluegreen: {e}"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bluegreen_local_1_selects_the_local_stack_and_says_to_start_it() {
    // Port 1 is not served: the connection is refused.
    let o = bluegreen(
        &["metrics", "-s", "checkout"],
        &[("BLUEGREEN_LOCAL", "1"), ("BLUEGREEN_ROUTER_PORT", "1")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("start the local stack: make stack-up"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains('\u{1b}'), "NO_COLOR: no escape codes");
}

#[test]
fn without_an_endpoint_it_is_a_configuration_error() {
    let o = bluegreen(&["history", "--env", "prd"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no API endpoint: pass --endpoint"),
        "{}",
        stderr(&o)
    );
    let o = bluegreen(&["history", "--env", "prd", "--stack", "bluegreen"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("describe-stacks --stack-name bluegreen"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn rollback_without_a_terminal_needs_yes() {
    let o = bluegreen(
        &["--local", "rollback", "prd", "--service", "checkout"],
        &[("BLUEGREEN_ROUTER_PORT", "1")],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("pass --yes"), "{}", stderr(&o));
}

#[test]
fn a_named_config_file_that_is_missing_or_wrong_is_a_usage_error() {
    let o = bluegreen(&["--config", "/nonexistent/bluegreen.toml", "metrics"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read the config /nonexistent/bluegreen.toml"));
}
