//! Argument parsing, exit codes, and commands against a scripted daemon.

use super::cli::Targets;
use super::torrents::parse_priority;
use super::*;
use swarm_control::FilePriority;
use swarm_control::RpcError;

#[test]
fn priorities() {
    let c = parse_priority("1,3-5=skip").unwrap();
    assert_eq!(
        c.iter().map(|c| c.index).collect::<Vec<_>>(),
        vec![1, 3, 4, 5]
    );
    assert!(c.iter().all(|c| c.priority == FilePriority::Skip));
    assert_eq!(
        parse_priority("0=HIGH").unwrap()[0].priority,
        FilePriority::High
    );
    for bad in ["1", "x=skip", "1=max", "5-3=low", "0-99999999=low"] {
        assert_eq!(parse_priority(bad).unwrap_err().code, exit::USAGE, "{bad}");
    }
}

#[test]
fn exit_codes() {
    let rpc = |code| Failure::from(ClientError::Rpc(RpcError::new(code, "m")));
    assert_eq!(rpc(codes::TORRENT_NOT_FOUND).code, exit::NOT_FOUND);
    assert_eq!(rpc(codes::AMBIGUOUS_TORRENT).code, exit::NOT_FOUND);
    assert_eq!(rpc(codes::PERMISSION_DENIED).code, exit::PERMISSION);
    assert_eq!(rpc(codes::TORRENT_EXISTS).code, exit::EXISTS);
    assert_eq!(rpc(codes::INTERNAL_ERROR).code, exit::DAEMON_ERROR);
    assert_eq!(rpc(codes::TORRENT_NOT_FOUND).message(), "m");
    let nr = Failure::from(ClientError::NotRunning {
        path: "/x.sock".into(),
    });
    assert_eq!(nr.code, exit::NOT_RUNNING);
    assert_eq!(nr.message(), "swarmd is not running (no socket at /x.sock)");
}

/// A scripted daemon: answers every request with `reply(method, params)`.
fn fake_daemon(
    reply: impl Fn(&str, &serde_json::Value) -> Result<serde_json::Value, RpcError> + Send + 'static,
) -> (PathBuf, std::thread::JoinHandle<()>) {
    use std::io::{BufRead, BufReader, Write};
    let path = std::env::temp_dir().join(format!(
        "swarmctl-fake-{}-{:?}.sock",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let handle = std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut w = stream.try_clone().unwrap();
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let req: swarm_control::Request = serde_json::from_str(&line).unwrap();
                let params = req.params.clone().unwrap_or_default();
                let resp = match reply(&req.method, &params) {
                    Ok(v) => swarm_control::Response::ok(req.id, v),
                    Err(e) => swarm_control::Response::err(req.id, e),
                };
                let _ = writeln!(w, "{}", serde_json::to_string(&resp).unwrap());
            }
        }
    });
    (path, handle)
}

#[test]
fn commands_against_a_scripted_daemon() {
    let (path, handle) = fake_daemon(|method, params| match method {
        names::TORRENT_PAUSE if params["torrent"] == "aaaaaa" => Ok(serde_json::Value::Null),
        names::TORRENT_PAUSE => Err(RpcError::new(
            codes::TORRENT_NOT_FOUND,
            "no torrent matches bbbbbb",
        )),
        names::SESSION_SET_LIMITS => {
            assert_eq!(
                params,
                &serde_json::json!({"download": 4 << 20, "upload": 0})
            );
            Ok(serde_json::json!({"download": 4 << 20, "upload": null}))
        }
        _ => Err(RpcError::new(
            codes::PERMISSION_DENIED,
            "permission denied: uid 1",
        )),
    });
    let common = Common {
        socket: Some(path.clone()),
        json: true,
    };
    // The first failure decides the status; the other torrents are still tried.
    let targets = Targets {
        torrents: vec!["bbbbbb".into(), "aaaaaa".into()],
        common: common.clone(),
    };
    assert_eq!(
        execute(DaemonCommand::Pause(targets)).unwrap(),
        exit::NOT_FOUND
    );
    let limits = DaemonCommand::Limits {
        torrent: None,
        down: Some(4 << 20),
        up: Some(0),
        peers: None,
        slots: None,
        priority: None,
        common: common.clone(),
    };
    assert_eq!(execute(limits).unwrap(), exit::OK);
    let shutdown = DaemonCommand::Shutdown {
        wait: false,
        timeout: 60,
        common,
    };
    let err = execute(shutdown).unwrap_err();
    assert_eq!(err.code, exit::PERMISSION);
    std::fs::remove_file(&path).unwrap();
    drop(handle);
}
