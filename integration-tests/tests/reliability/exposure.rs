//! Privilege and exposure: the control socket's mode against another user, no TCP port but the
//! peer port, and the hardening of the systemd unit file.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use swarm_integration_tests::prelude::*;
use swarm_integration_tests::swarmd::workspace_root;

use super::start_daemon;

/// Inodes of the sockets a process holds (`socket:[N]` links in /proc/PID/fd).
fn socket_inodes(pid: u32) -> Vec<u64> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let target = fs::read_link(e.path()).ok()?;
            let t = target.to_str()?;
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// Listening TCP sockets (IPv4 and IPv6) among `inodes`: their local ports.
fn tcp_listeners(inodes: &[u64]) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for l in text.lines().skip(1) {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                continue; // not LISTEN
            }
            let inode: u64 = f[9].parse().unwrap_or(0);
            if !inodes.contains(&inode) {
                continue;
            }
            let (addr, port) = f[1].split_once(':').unwrap();
            out.push((
                format!("{table}:{addr}"),
                u16::from_str_radix(port, 16).unwrap(),
            ));
        }
    }
    out
}

/// `setpriv` (util-linux) running `cmd` as `nobody` with no supplementary groups.
fn as_nobody(args: &[&str]) -> Output {
    let setpriv = require_tool("setpriv");
    Command::new(setpriv)
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap()
}

/// The control socket is mode 0660 and another user (`nobody`) cannot use it even when every
/// directory above it lets them through; given a world-writable socket, `nobody` could read but
/// still not change state. The daemon listens on no TCP port but the peer port. The systemd unit
/// runs as its own user with the hardening docs/operations.md promises.
#[test]
fn control_socket_and_unit_file_limit_exposure() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test switches to user `nobody` and must run as root (CI does); euid is {euid}"
    );
    let env = TestEnv::new("rel-exposure");
    let (d, dirs) = start_daemon(&env, "");
    nobody_is_kept_out_of_the_socket(&env, &d, &dirs.socket);
    only_the_peer_port_listens(&d);
    unit_file_is_hardened();
}

/// The socket is 0660, owned by root; `nobody`, let through every directory above it, gets
/// `permission denied`. With the socket opened to everyone `nobody` may read, but the daemon
/// still refuses it `shutdown` (SO_PEERCRED).
fn nobody_is_kept_out_of_the_socket(env: &TestEnv, d: &Daemon, socket: &Path) {
    let meta = fs::metadata(socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o660, "socket mode");
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "socket owner");
    // Let `nobody` through every directory above the socket and to a copy of swarmctl, so that
    // only the socket's own mode stands in the way.
    let mut dir = socket.parent().unwrap().to_path_buf();
    while dir.starts_with(env.path()) {
        let mode = fs::metadata(&dir).unwrap().permissions().mode();
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode | 0o711)).unwrap();
        if !dir.pop() {
            break;
        }
    }
    fs::set_permissions(env.path(), fs::Permissions::from_mode(0o711)).unwrap();
    let bin_dir = env.subdir("bin");
    fs::set_permissions(&bin_dir, fs::Permissions::from_mode(0o755)).unwrap();
    let ctl_copy = bin_dir.join("swarmctl");
    fs::copy(swarmctl_bin(), &ctl_copy).unwrap();
    fs::set_permissions(&ctl_copy, fs::Permissions::from_mode(0o755)).unwrap();
    let (ctl_s, sock_s) = (ctl_copy.to_str().unwrap(), socket.to_str().unwrap());

    let out = as_nobody(&[ctl_s, "list", "--socket", sock_s]);
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("nobody, socket 0660: {} {err}", out.status);
    assert_eq!(
        out.status.code(),
        Some(5),
        "`nobody` must get `permission denied` (exit 5) on a 0660 socket: {err}"
    );
    assert!(err.to_lowercase().contains("permission denied"), "{err}");

    // Control: with the socket opened to everyone, `nobody` gets through; it may read, but the
    // daemon still refuses to let it change state (SO_PEERCRED).
    fs::set_permissions(socket, fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_nobody(&[ctl_s, "list", "--socket", sock_s]);
    assert!(
        out.status.success(),
        "control run: `nobody` could not use a 0666 socket, so the 0660 check proves nothing: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = as_nobody(&[ctl_s, "shutdown", "--socket", sock_s]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "`nobody` was not refused `shutdown`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::set_permissions(socket, fs::Permissions::from_mode(0o660)).unwrap();
    d.assert_alive("`nobody` knocking");
}

/// swarmd's listening TCP sockets are exactly its peer port.
fn only_the_peer_port_listens(d: &Daemon) {
    let port = d.port();
    let listeners = tcp_listeners(&socket_inodes(d.pid()));
    eprintln!("swarmd's listening TCP sockets: {listeners:?}");
    assert!(
        listeners.iter().all(|(_, p)| *p == port),
        "swarmd listens on TCP ports other than its peer port {port}: {listeners:?}"
    );
    assert!(
        listeners.iter().any(|(_, p)| *p == port),
        "the peer port {port} is not among swarmd's listening sockets: {listeners:?}"
    );
}

/// The `[Service]` keys of `config/swarmd.service`, each with its values in order.
fn service_keys() -> BTreeMap<String, Vec<String>> {
    let unit = fs::read_to_string(workspace_root().join("config/swarmd.service")).unwrap();
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = String::new();
    for l in unit.lines().map(str::trim) {
        if l.starts_with('#') || l.is_empty() {
            continue;
        }
        if l.starts_with('[') {
            section = l.to_string();
            continue;
        }
        if section == "[Service]" {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            keys.entry(k.trim().to_string())
                .or_default()
                .push(v.trim().to_string());
        }
    }
    keys
}

/// The unit runs as its own user, with every hardening key docs/operations.md promises.
fn unit_file_is_hardened() {
    let keys = service_keys();
    let one = |k: &str| -> String {
        keys.get(k)
            .and_then(|v| v.last().cloned())
            .unwrap_or_else(|| panic!("swarmd.service has no {k}="))
    };
    let user = one("User");
    assert!(
        !user.is_empty() && user != "root" && user != "0",
        "the unit must run as its own user, not {user:?}"
    );
    assert!(!one("Group").is_empty() && one("Group") != "root");
    for (k, v) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("UMask", "0027"),
    ] {
        assert_eq!(one(k), v, "swarmd.service: {k}=");
    }
    let families: Vec<String> = one("RestrictAddressFamilies")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(
        families,
        ["AF_UNIX", "AF_INET", "AF_INET6"],
        "RestrictAddressFamilies"
    );
    assert!(
        keys["SystemCallFilter"]
            .iter()
            .any(|v| v == "@system-service"),
        "SystemCallFilter"
    );
    for k in ["ReadWritePaths", "DynamicUser", "PermissionsStartOnly"] {
        assert!(!keys.contains_key(k), "swarmd.service sets {k}");
    }
    let exec = one("ExecStart");
    assert!(
        !exec.starts_with(['+', '!', '@']),
        "ExecStart runs with full privileges: {exec}"
    );
}
