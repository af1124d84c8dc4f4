//! swarmd's transmission-compatible HTTP RPC (`[rpc]`, docs/http-rpc.md) against the clients
//! people run: Debian's `transmission-remote` and the PyPI `transmission-rpc` library (in the
//! venv `scripts/install-test-deps.sh` makes), downloading from a libtorrent seeder; and the
//! gate (session id, password, Host header, body cap) with raw requests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use swarm_integration_tests::http;
use swarm_integration_tests::http_rpc::{
    basic, call, remote, rpc_section, session_id, url, venv_python, PASSWORD, USER,
};
use swarm_integration_tests::libtorrent::{require_python_libtorrent, seeded};
use swarm_integration_tests::prelude::*;
use swarm_integration_tests::util::{free_tcp_port, wait_until};

/// A raw HTTP/1.0 request with the given head lines; returns the status code.
fn raw_status(port: u16, head: &str, body: &[u8]) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /transmission/rpc HTTP/1.0\r\n{head}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn rpc_is_off_unless_enabled() {
    let env = TestEnv::new("http-rpc-off");
    let rpc_port = free_tcp_port();
    let extra = format!("[rpc]\nlisten = \"127.0.0.1:{rpc_port}\"\n");
    let dirs = DaemonConfig {
        extra: &extra,
        ..DaemonConfig::new("http_rpc off")
    }
    .write(&env, free_tcp_port());
    let d = Daemon::start(&env, &dirs, "daemon");
    assert!(
        TcpStream::connect(("127.0.0.1", rpc_port)).is_err(),
        "nothing may listen on the RPC port while [rpc] enabled is false"
    );
    d.assert_alive("checking the RPC port");
}

#[test]
fn the_gate_refuses_and_the_daemon_carries_on() {
    let env = TestEnv::new("http-rpc-gate");
    let port = free_tcp_port();
    let extra = rpc_section(port, "max_body_bytes = 65536");
    let dirs = DaemonConfig {
        extra: &extra,
        ..DaemonConfig::new("http_rpc gate")
    }
    .write(&env, free_tcp_port());
    let d = Daemon::start(&env, &dirs, "daemon");
    let sid = session_id(port);
    let auth = basic();
    let host = format!("Host: 127.0.0.1:{port}\r\n");
    let good = format!("{host}Authorization: {auth}\r\nX-Transmission-Session-Id: {sid}\r\n");
    let session_get = br#"{"method":"session-get"}"#;
    assert_eq!(raw_status(port, &good, session_get), 200);
    // No session id: 409 (cross-site request forgery defence), with the id to use.
    assert_eq!(
        raw_status(
            port,
            &format!("{host}Authorization: {auth}\r\n"),
            session_get
        ),
        409
    );
    // Wrong password, no password: 401.
    let wrong = data_encoding::BASE64.encode(format!("{USER}:nope").as_bytes());
    let h = format!("{host}Authorization: Basic {wrong}\r\nX-Transmission-Session-Id: {sid}\r\n");
    assert_eq!(raw_status(port, &h, session_get), 401);
    assert_eq!(
        raw_status(
            port,
            &format!("{host}X-Transmission-Session-Id: {sid}\r\n"),
            session_get
        ),
        401
    );
    // A name that could be rebound to 127.0.0.1: 421; localhost is fine.
    let rebound = good.replace(&host, &format!("Host: attacker.example:{port}\r\n"));
    assert_eq!(raw_status(port, &rebound, session_get), 421);
    let local = good.replace(&host, &format!("Host: localhost:{port}\r\n"));
    assert_eq!(raw_status(port, &local, session_get), 200);
    // A body over max_body_bytes: 413.
    let huge = format!(
        r#"{{"method":"session-get","arguments":{{"x":"{}"}}}}"#,
        "a".repeat(100_000)
    );
    assert_eq!(raw_status(port, &good, huge.as_bytes()), 413);
    // Malformed JSON and an unknown method: answered with an error result.
    for (body, needle) in [
        (&b"{not json"[..], "not JSON"),
        (
            br#"{"method":"torrent-frobnicate","tag":3}"#,
            "not recognized",
        ),
        (br#"{"arguments":{}}"#, "no method name"),
    ] {
        let r = http::post(
            &url(port),
            &[
                ("X-Transmission-Session-Id", &sid),
                ("Authorization", &auth),
            ],
            body,
            Duration::from_secs(10),
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        let result = v["result"].as_str().unwrap();
        assert!(result.contains(needle), "{result}");
    }
    // The daemon carries on: the RPC and the control socket still answer.
    let v = call(
        port,
        &sid,
        "session-get",
        json!({"fields": ["version", "rpc-version"]}),
    );
    assert_eq!(v["result"], "success");
    assert_eq!(v["tag"], 7);
    assert_eq!(v["arguments"]["rpc-version"], 17);
    assert!(v["arguments"]["version"]
        .as_str()
        .unwrap()
        .starts_with("4.0.6 (swarmd "));
    d.assert_alive("refused requests");
}

/// The `-l` row of torrent `id`: its columns split on runs of two spaces or more.
fn list_row(port: u16, id: u64) -> Vec<String> {
    let list = remote(port, &["-l"]);
    let line = list
        .lines()
        .find(|l| {
            l.split_whitespace().next() == Some(&id.to_string())
                || l.trim_start().starts_with(&format!("{id}*"))
        })
        .unwrap_or_else(|| panic!("no row for {id} in:\n{list}"));
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn transmission_remote_drives_swarmd() {
    require_python_libtorrent();
    let env = TestEnv::new("http-rpc-remote");
    let tracker = Opentracker::start(&env, &[]);
    let payload = Payload::multi(&env.subdir("seed"), "remote", 3 * MIB + 5, 3, 31);
    let (payload, torrent, _seeder) = seeded(&env, &tracker, payload, 15, LtOptions::seed());
    let port = free_tcp_port();
    let extra = rpc_section(port, "");
    let dirs = DaemonConfig {
        extra: &extra,
        ..DaemonConfig::new("http_rpc remote")
    }
    .write(&env, free_tcp_port());
    let d = Daemon::start(&env, &dirs, "daemon");

    // Add a .torrent: it downloads from the seeder; -l shows it done.
    let out = remote(port, &["-a", torrent.path.to_str().unwrap()]);
    assert!(out.contains("success"), "{out}");
    wait_until(
        "the download to finish (seen by -l)",
        Duration::from_secs(60),
        Duration::from_millis(300),
        || list_row(port, 1).get(1).is_some_and(|c| c == "100%"),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", remote(port, &["-l"])));
    verify_download(&torrent, &payload, &dirs.downloads);
    let row = list_row(port, 1);
    assert!(row.last().unwrap().contains("remote"), "{row:?}");
    assert!(row.iter().any(|c| c == "Seeding" || c == "Idle"), "{row:?}");

    // -t 1 -i: the details are swarmd's.
    let info = remote(port, &["-t", "1", "-i"]);
    let hash = torrent.info_hash.to_hex();
    assert!(info.contains(&format!("Hash: {hash}")), "{info}");
    assert!(info.contains("Name: remote"), "{info}");
    assert!(info.contains("Percent Done: 100%"), "{info}");
    assert!(
        info.contains(&format!("Location: {}", dirs.downloads.display())),
        "{info}"
    );

    // Stop and start, seen by swarmd's control socket.
    remote(port, &["-t", "1", "-S"]);
    d.wait_torrent(&hash, "paused", Duration::from_secs(10), |v| {
        v["state"] == "paused"
    });
    assert!(
        list_row(port, 1).iter().any(|c| c == "Stopped"),
        "{:?}",
        list_row(port, 1)
    );
    remote(port, &["-t", "1", "-s"]);
    d.wait_torrent(&hash, "seeding again", Duration::from_secs(20), |v| {
        v["state"] == "seeding"
    });

    // Verify: swarmd rechecks and ends seeding with all pieces.
    remote(port, &["-t", "1", "-v"]);
    d.wait_torrent(
        &hash,
        "seeding after verify",
        Duration::from_secs(30),
        |v| v["state"] == "seeding" && v["pieces_have"] == v["pieces"],
    );

    // Session limits: -d/-u set them in swarmd (kB/s of 1000 bytes), -D/-U lift them.
    remote(port, &["-d", "300", "-u", "200"]);
    let limits = d.ctl_json(&["limits"]);
    assert_eq!(
        (limits["download"].as_u64(), limits["upload"].as_u64()),
        (Some(300_000), Some(200_000)),
        "{limits}"
    );
    let si = remote(port, &["-si"]);
    assert!(si.contains("300 kB/s"), "{si}");
    remote(port, &["-D", "-U"]);
    let limits = d.ctl_json(&["limits"]);
    assert!(
        limits["download"].is_null() && limits["upload"].is_null(),
        "{limits}"
    );

    // Removed without its data, then added again as a magnet: id 2, which fetches the metadata
    // from the seeder and finds the data complete.
    let magnet = torrent.magnet(&[&tracker.announce_url()]);
    remote(port, &["-t", "1", "-r"]);
    let out = remote(port, &["-a", &magnet]);
    assert!(out.contains("success"), "{out}");
    wait_until(
        "the magnet to be complete (seen by -l)",
        Duration::from_secs(60),
        Duration::from_millis(300),
        || list_row(port, 2).get(1).is_some_and(|c| c == "100%"),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", remote(port, &["-l"])));

    // Remove with data: gone from swarmd and from the disk.
    remote(port, &["-t", "2", "--remove-and-delete"]);
    wait_until(
        "the files to be deleted",
        Duration::from_secs(20),
        Duration::from_millis(200),
        || !dirs.downloads.join("remote").exists(),
    )
    .unwrap();
    let list = d.rpc("torrent.list", None).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
    d.assert_alive("the transmission-remote session");
}

/// What Sonarr/Radarr do through the transmission-rpc library: session-get, torrent-add paused,
/// torrent-get with Sonarr's field list, start, watch to completion, remove.
const SONARR_SCRIPT: &str = r#"
import sys, time, json
from transmission_rpc import Client
port, user, password, torrent, downloads = sys.argv[1:6]
c = Client(host="127.0.0.1", port=int(port), username=user, password=password, timeout=10)
s = c.get_session()
assert s.rpc_version == 17 and s.rpc_version_minimum == 14, (s.rpc_version, s.rpc_version_minimum)
assert s.version.startswith("4.0.6 (swarmd "), s.version
assert s.download_dir == downloads, s.download_dir
t = c.add_torrent(open(torrent, "rb").read(), paused=True, download_dir=downloads)
SONARR = ["id", "hashString", "name", "downloadDir", "totalSize", "leftUntilDone", "isFinished",
          "eta", "status", "secondsDownloading", "secondsSeeding", "errorString", "uploadedEver",
          "downloadedEver", "seedRatioLimit", "seedRatioMode", "seedIdleLimit", "seedIdleMode",
          "fileCount", "file-count", "labels"]
t = c.get_torrent(t.id, arguments=SONARR)
assert t.status == "stopped", t.status
assert t.fields["leftUntilDone"] == t.fields["totalSize"] > 0, t.fields
assert t.fields["labels"] == [] and t.fields["isFinished"] is False, t.fields
assert t.fields["downloadDir"] == downloads
c.start_torrent(t.id)
for _ in range(300):
    t = c.get_torrent(t.id, arguments=SONARR + ["percentDone", "rateDownload"])
    if t.fields["leftUntilDone"] == 0 and t.status == "seeding":
        break
    time.sleep(0.2)
else:
    sys.exit("not complete: %s" % json.dumps(t.fields))
assert t.fields["eta"] == -1 and t.percent_done == 1.0, t.fields
again = c.add_torrent(open(torrent, "rb").read())
assert again.id == t.id, (again.id, t.id)
stats = c.session_stats()
assert stats.torrent_count == 1
c.remove_torrent(t.id, delete_data=False)
assert c.get_torrents() == []
print("ok", t.hashString)
"#;

#[test]
fn transmission_rpc_library_downloads_like_sonarr() {
    require_python_libtorrent();
    let python = venv_python();
    let env = TestEnv::new("http-rpc-python");
    let tracker = Opentracker::start(&env, &[]);
    let payload = Payload::single(&env.subdir("seed"), "sonarr.mkv", 2 * MIB + 17, 41);
    let (payload, torrent, _seeder) = seeded(&env, &tracker, payload, 15, LtOptions::seed());
    let port = free_tcp_port();
    let extra = rpc_section(port, "");
    let dirs = DaemonConfig {
        extra: &extra,
        make_dirs: true,
        ..DaemonConfig::new("http_rpc python")
    }
    .write(&env, free_tcp_port());
    let d = Daemon::start(&env, &dirs, "daemon");
    let script = env.path().join("sonarr.py");
    std::fs::write(&script, SONARR_SCRIPT).unwrap();
    let out = Command::new(python)
        .arg(&script)
        .args([
            &port.to_string(),
            USER,
            PASSWORD,
            torrent.path.to_str().unwrap(),
            dirs.downloads.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = output_text(&out);
    assert!(
        out.status.success(),
        "the transmission-rpc script failed:\n{text}\n{}",
        d.log_tail()
    );
    assert!(
        text.contains(&format!("ok {}", torrent.info_hash.to_hex())),
        "{text}"
    );
    verify_download(&torrent, &payload, &dirs.downloads);
    d.assert_alive("the transmission-rpc session");
}

/// One JSON-RPC 2.0 body posted with the handshake done; the status and the parsed answer
/// (`Null` for an empty body).
fn jsonrpc(port: u16, sid: &str, body: &Value) -> (u16, Value) {
    let auth = basic();
    let r = http::post(
        &url(port),
        &[("X-Transmission-Session-Id", sid), ("Authorization", &auth)],
        body.to_string().as_bytes(),
        Duration::from_secs(10),
    )
    .expect("JSON-RPC request");
    let v = if r.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
    };
    (r.status, v)
}

/// transmission 4.1's JSON-RPC form on the same endpoint: snake_case names, ids echoed,
/// batches, notifications, error objects; `pieces` of a torrent whose data is all there.
#[test]
fn jsonrpc_2_form_of_transmission_4_1() {
    let env = TestEnv::new("http-rpc-jsonrpc");
    let port = free_tcp_port();
    let extra = rpc_section(port, "");
    let dirs = DaemonConfig {
        extra: &extra,
        make_dirs: true,
        ..DaemonConfig::new("http_rpc jsonrpc")
    }
    .write(&env, free_tcp_port());
    // 9 pieces of 32 KiB, already in the download directory: complete after the check.
    let payload = Payload::single(&dirs.downloads, "present.bin", 9 * 32 * KIB - 100, 7);
    let torrent = payload.make_torrent(&env.path().join("present.torrent"), 15, &[]);
    let d = Daemon::start(&env, &dirs, "daemon");

    // The handshake tells a 4.1 client that this form is spoken.
    let auth = basic();
    let r = http::request(
        "GET",
        &url(port),
        &[("Authorization", &auth)],
        &[],
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(r.status, 409);
    assert_eq!(r.header("X-Transmission-Rpc-Version"), Some("6.0.0"));
    let sid = session_id(port);

    let metainfo = data_encoding::BASE64.encode(&std::fs::read(&torrent.path).unwrap());
    let (status, v) = jsonrpc(
        port,
        &sid,
        &json!({"jsonrpc": "2.0", "id": "add-1", "method": "torrent_add",
                "params": {"metainfo": metainfo, "download_dir": dirs.downloads,
                           "bandwidth_priority": 1, "peer_limit": 9}}),
    );
    assert_eq!(status, 200);
    assert_eq!(v["id"], "add-1", "{v}");
    let hash = torrent.info_hash.to_hex();
    assert_eq!(
        v["result"]["torrent_added"]["hash_string"],
        hash.as_str(),
        "{v}"
    );
    let id = v["result"]["torrent_added"]["id"].as_u64().unwrap();

    let get = json!({"jsonrpc": "2.0", "id": 7, "method": "torrent_get",
        "params": {"ids": [id], "fields": ["id", "hash_string", "status", "pieces",
            "piece_count", "percent_done", "wanted", "files", "download_dir",
            "bandwidth_priority", "peer_limit"]}});
    let mut t = Value::Null;
    wait_until(
        "the torrent to be seeding (seen by torrent_get)",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || {
            t = jsonrpc(port, &sid, &get).1["result"]["torrents"][0].clone();
            t["status"] == 6
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {t}"));
    // torrent_add's limits held from the start (and the torrent, held while they were set,
    // was started: it seeds).
    assert_eq!(t["bandwidth_priority"], 1, "{t}");
    assert_eq!(t["peer_limit"], 9, "{t}");
    assert_eq!(t["piece_count"], 9, "{t}");
    assert_eq!(t["wanted"], json!([true]), "{t}");
    assert_eq!(t["download_dir"], dirs.downloads.to_str().unwrap(), "{t}");
    assert_eq!(t["files"][0]["begin_piece"], 0, "{t}");
    assert_eq!(t["files"][0]["end_piece"], 9, "{t}");
    let pieces = data_encoding::BASE64
        .decode(t["pieces"].as_str().unwrap().as_bytes())
        .unwrap();
    assert_eq!(
        pieces,
        [0xff, 0x80],
        "all 9 pieces, as the wire's bitfield: {t}"
    );

    // A batch: a notification (no answer, but it runs), an unknown method, a feature swarmd
    // does not have, by-position params.
    let (status, v) = jsonrpc(
        port,
        &sid,
        &json!([
            {"jsonrpc": "2.0", "method": "torrent_stop", "params": {"ids": [hash]}},
            {"jsonrpc": "2.0", "id": 1, "method": "session_get",
             "params": {"fields": ["rpc_version", "version", "peer_port"]}},
            {"jsonrpc": "2.0", "id": 2, "method": "torrent_frobnicate"},
            {"jsonrpc": "2.0", "id": 3, "method": "torrent_set",
             "params": {"ids": [id], "group": "fast"}},
            {"jsonrpc": "2.0", "id": 4, "method": "torrent_get", "params": ["id"]},
        ]),
    );
    assert_eq!(status, 200);
    let answers = v
        .as_array()
        .unwrap_or_else(|| panic!("a batch answer: {v}"));
    assert_eq!(answers.len(), 4, "{v}");
    assert_eq!(answers[0]["result"]["rpc_version"], 18, "{v}");
    assert!(answers[0]["result"]["version"]
        .as_str()
        .unwrap()
        .starts_with("4.1.0 (swarmd "));
    assert_eq!(answers[0]["result"]["peer_port"], d.port(), "{v}");
    assert_eq!(
        (
            answers[1]["id"].clone(),
            answers[1]["error"]["code"].clone()
        ),
        (json!(2), json!(-32601))
    );
    assert_eq!(answers[2]["error"]["code"], -32000, "{v}");
    assert!(answers[2]["error"]["data"]["error_string"]
        .as_str()
        .unwrap()
        .contains("bandwidth groups"));
    assert_eq!(answers[3]["error"]["code"], -32602, "{v}");
    d.wait_torrent(
        &hash,
        "paused by the notification",
        Duration::from_secs(10),
        |v| v["state"] == "paused",
    );

    // Only notifications: 204 and no body; malformed JSON-RPC: a parse error object.
    let (status, v) = jsonrpc(
        port,
        &sid,
        &json!({"jsonrpc": "2.0", "method": "torrent_start", "params": {"ids": [id]}}),
    );
    assert_eq!((status, v), (204, Value::Null));
    d.wait_torrent(
        &hash,
        "started by the notification",
        Duration::from_secs(20),
        |v| v["state"] == "seeding",
    );
    let r = http::post(
        &url(port),
        &[
            ("X-Transmission-Session-Id", &sid),
            ("Authorization", &auth),
        ],
        br#"{"jsonrpc": "2.0", "method": "session_get", "id": 1"#,
        Duration::from_secs(10),
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        (v["error"]["code"].clone(), v["id"].clone()),
        (json!(-32700), Value::Null),
        "{v}"
    );
    // The legacy form still answers on the same endpoint.
    let v = call(
        port,
        &sid,
        "torrent-get",
        json!({"fields": ["hashString", "pieces"]}),
    );
    assert_eq!(
        v["arguments"]["torrents"][0]["hashString"],
        hash.as_str(),
        "{v}"
    );
    assert_eq!(v["arguments"]["torrents"][0]["pieces"], "/4A=", "{v}");
    d.assert_alive("the JSON-RPC session");
}
