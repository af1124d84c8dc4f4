//! swarmd's HTTP face (`[rpc]`, docs/http-rpc.md) as the tests meet it: the `[rpc]` section of a
//! test daemon (with a password hashed by `swarmd rpc-password`), the session-id handshake, one
//! legacy call, and the venv of `scripts/install-test-deps.sh` whose Python has the PyPI clients
//! (`transmission-rpc`, `selenium`).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::http;
use crate::swarmd::{swarmd_bin, workspace_root};

pub const USER: &str = "sonarr";
pub const PASSWORD: &str = "correct horse";

/// The `[rpc]` section of a test daemon on `port`, with a password made by `swarmd rpc-password`.
pub fn rpc_section(port: u16, extra: &str) -> String {
    let mut child = Command::new(swarmd_bin())
        .arg("rpc-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("running swarmd rpc-password");
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "swarmd rpc-password failed");
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(hash.starts_with("sha256:"), "{hash}");
    format!(
        "[rpc]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\nusername = \"{USER}\"\n\
         password_hash = \"{hash}\"\n{extra}\n"
    )
}

pub fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/transmission/rpc")
}

pub fn basic() -> String {
    format!(
        "Basic {}",
        data_encoding::BASE64.encode(format!("{USER}:{PASSWORD}").as_bytes())
    )
}

/// One legacy-form call with the handshake done (`sid`), returning the parsed body.
pub fn call(port: u16, sid: &str, method: &str, arguments: Value) -> Value {
    let body = json!({"method": method, "arguments": arguments, "tag": 7}).to_string();
    let auth = basic();
    let r = http::post(
        &url(port),
        &[("X-Transmission-Session-Id", sid), ("Authorization", &auth)],
        body.as_bytes(),
        Duration::from_secs(10),
    )
    .expect("HTTP RPC request");
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).expect("a JSON answer")
}

/// Runs Debian's `transmission-remote` against the daemon's RPC on `port` with the test's
/// account; panics with its output if it fails. Returns stdout and stderr.
pub fn remote(port: u16, args: &[&str]) -> String {
    let bin = crate::util::require_tool("transmission-remote");
    let out = Command::new(bin)
        .arg(format!("127.0.0.1:{port}"))
        .arg("--auth")
        .arg(format!("{USER}:{PASSWORD}"))
        .args(args)
        .output()
        .expect("running transmission-remote");
    let text = crate::util::output_text(&out);
    assert!(
        out.status.success(),
        "transmission-remote {args:?} failed: {text}"
    );
    text
}

/// The session id, from the 409 a bodyless GET gets.
pub fn session_id(port: u16) -> String {
    let auth = basic();
    let r = http::request(
        "GET",
        &url(port),
        &[("Authorization", &auth)],
        &[],
        Duration::from_secs(10),
    )
    .expect("GET /transmission/rpc");
    assert_eq!(r.status, 409, "{}", r.text());
    r.header("X-Transmission-Session-Id")
        .expect("the session id header")
        .to_owned()
}

/// The Python of `target/test-venv` (with `transmission-rpc` and `selenium`).
pub fn venv_python() -> PathBuf {
    let p = workspace_root().join("target/test-venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-test-deps.sh (it installs the PyPI transmission-rpc \
         library there)",
        p.display()
    );
    p
}
