//! Where the control socket is, decided the same way by the daemon and by its clients.
//!
//! swarmd runs in one of two modes. **System** mode is what systemd starts: it is recognised by
//! the variables systemd sets for `RuntimeDirectory=`/`StateDirectory=`/`ConfigurationDirectory=`
//! (or forced with `swarmd --system`), and puts the socket in `/run/swarmd`. **User** mode is
//! everything else and follows the XDG base directory spec: `$XDG_RUNTIME_DIR/swarmd`, or a
//! per-uid directory under `/tmp` when no runtime directory exists (e.g. over plain `su`).
//!
//! The environment is passed in as a lookup function so that tests never touch the process
//! environment (which is shared by all test threads).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// File name of the socket inside the runtime directory.
pub const SOCKET_NAME: &str = "swarmd.sock";

/// Clients read this variable first: it names the socket of a daemon started elsewhere.
pub const SOCKET_ENV: &str = "SWARMD_SOCKET";

/// Runtime directory of the system daemon when systemd does not say otherwise.
pub const SYSTEM_RUNTIME_DIR: &str = "/run/swarmd";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    User,
    System,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::User => "user",
            Mode::System => "system",
        }
    }
}

/// A way to read environment variables; `&std::env::var_os` is the real one.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// The process environment.
pub fn process_env(key: &str) -> Option<OsString> {
    std::env::var_os(key)
}

/// The variables systemd sets for a unit with `StateDirectory=` etc.
const SYSTEMD_DIR_VARS: [&str; 3] = [
    "STATE_DIRECTORY",
    "RUNTIME_DIRECTORY",
    "CONFIGURATION_DIRECTORY",
];

/// System mode when forced or when started by systemd with its directory settings.
pub fn detect_mode(force_system: bool, env: Env) -> Mode {
    if force_system || SYSTEMD_DIR_VARS.iter().any(|v| non_empty(env, v).is_some()) {
        Mode::System
    } else {
        Mode::User
    }
}

/// A variable's value when set and not empty. systemd separates several directories with `:`;
/// the first one is ours.
pub fn non_empty(env: Env, key: &str) -> Option<PathBuf> {
    let value = env(key)?;
    let first = value
        .to_str()
        .map(|s| s.split(':').next().unwrap_or("").to_owned());
    match first {
        Some(s) if s.is_empty() => None,
        Some(s) => Some(PathBuf::from(s)),
        // Not UTF-8: take it whole rather than guess where to split.
        None => Some(PathBuf::from(value)),
    }
}

/// The directory holding the socket (and nothing the daemon needs across reboots).
pub fn runtime_dir(mode: Mode, env: Env) -> PathBuf {
    match mode {
        Mode::System => {
            non_empty(env, "RUNTIME_DIRECTORY").unwrap_or_else(|| PathBuf::from(SYSTEM_RUNTIME_DIR))
        }
        Mode::User => match non_empty(env, "XDG_RUNTIME_DIR") {
            Some(dir) if dir.is_absolute() => dir.join("swarmd"),
            // The spec says to ignore a relative value.
            _ => no_xdg_runtime_dir(),
        },
    }
}

/// The runtime directory of a user daemon started without `$XDG_RUNTIME_DIR` (over plain `su`,
/// from cron). The uid in the name keeps users apart; the daemon creates the directory 0700 and
/// refuses one owned by somebody else.
pub fn no_xdg_runtime_dir() -> PathBuf {
    PathBuf::from(format!("/tmp/swarmd-{}", current_uid()))
}

/// Where a daemon in `mode` puts its socket unless `[control] socket` says otherwise.
pub fn default_socket_path(mode: Mode, env: Env) -> PathBuf {
    runtime_dir(mode, env).join(SOCKET_NAME)
}

/// Where a client looks for the daemon, in order: `$SWARMD_SOCKET` (alone, when set); the user
/// daemon's socket; the socket of a user daemon started without `$XDG_RUNTIME_DIR` (the client
/// may have one when the daemon had none, e.g. a daemon started over `su` or from cron); the
/// system daemon's socket.
pub fn client_socket_candidates(env: Env) -> Vec<PathBuf> {
    if let Some(p) = non_empty(env, SOCKET_ENV) {
        return vec![p];
    }
    let mut out = Vec::new();
    for p in [
        default_socket_path(Mode::User, env),
        no_xdg_runtime_dir().join(SOCKET_NAME),
        default_socket_path(Mode::System, env),
    ] {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// What a client can tell about a socket path before connecting to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    Present,
    Missing,
    /// A directory on the way cannot be searched: the socket may well be there (the system
    /// daemon's `/run/swarmd` is open to group swarmd only).
    Denied,
}

impl Probe {
    /// Looks at `path` without following a final symlink's target's permissions.
    pub fn of(path: &Path) -> Probe {
        match std::fs::symlink_metadata(path) {
            Ok(_) => Probe::Present,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Probe::Denied,
            Err(_) => Probe::Missing,
        }
    }
}

/// The socket a client should use, from the candidates in order: the first one present; else the
/// first one it may not look at (connecting to it then says "permission denied", not "not
/// running"); else none.
pub fn choose_socket(candidates: &[PathBuf], probe: impl Fn(&Path) -> Probe) -> Option<PathBuf> {
    let probed: Vec<(Probe, &PathBuf)> = candidates.iter().map(|p| (probe(p), p)).collect();
    [Probe::Present, Probe::Denied]
        .iter()
        .find_map(|want| probed.iter().find(|(got, _)| got == want))
        .map(|(_, p)| (*p).clone())
}

/// The group that gives access to the socket at `path`: the socket's own group, else that of
/// the nearest directory above it that can be looked at (`/run/swarmd`: group swarmd).
pub fn access_group(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let gid = path
        .ancestors()
        .find_map(|p| std::fs::metadata(p).ok())?
        .gid();
    crate::nss::group_name(gid).or_else(|| Some(gid.to_string()))
}

/// The effective uid of this process.
pub fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn mode_detection() {
        let none = env_of(&[]);
        assert_eq!(detect_mode(false, &none), Mode::User);
        assert_eq!(detect_mode(true, &none), Mode::System);
        let sd = env_of(&[("STATE_DIRECTORY", "/var/lib/swarmd")]);
        assert_eq!(detect_mode(false, &sd), Mode::System);
        let empty = env_of(&[("RUNTIME_DIRECTORY", "")]);
        assert_eq!(detect_mode(false, &empty), Mode::User);
    }

    #[test]
    fn socket_paths() {
        let env = env_of(&[("XDG_RUNTIME_DIR", "/run/user/1000")]);
        assert_eq!(
            default_socket_path(Mode::User, &env),
            PathBuf::from("/run/user/1000/swarmd/swarmd.sock")
        );
        assert_eq!(
            default_socket_path(Mode::System, &env),
            PathBuf::from("/run/swarmd/swarmd.sock")
        );
        let sd = env_of(&[("RUNTIME_DIRECTORY", "/run/swarmd-x:/run/other")]);
        assert_eq!(
            default_socket_path(Mode::System, &sd),
            PathBuf::from("/run/swarmd-x/swarmd.sock")
        );
        let bare = env_of(&[("XDG_RUNTIME_DIR", "relative")]);
        let p = default_socket_path(Mode::User, &bare);
        assert_eq!(
            p,
            PathBuf::from(format!("/tmp/swarmd-{}/swarmd.sock", current_uid()))
        );
    }

    #[test]
    fn client_candidates_and_choice() {
        let env = env_of(&[("XDG_RUNTIME_DIR", "/run/user/7")]);
        let c = client_socket_candidates(&env);
        let no_xdg = no_xdg_runtime_dir().join(SOCKET_NAME);
        assert_eq!(
            c,
            vec![
                PathBuf::from("/run/user/7/swarmd/swarmd.sock"),
                no_xdg.clone(),
                PathBuf::from("/run/swarmd/swarmd.sock")
            ]
        );
        // Without XDG_RUNTIME_DIR the user daemon's socket is the /tmp one: listed once.
        assert_eq!(
            client_socket_candidates(&env_of(&[])),
            vec![no_xdg, PathBuf::from("/run/swarmd/swarmd.sock")]
        );
        let only = |present: &'static str, denied: &'static str| {
            move |p: &Path| {
                if p.starts_with(present) {
                    Probe::Present
                } else if p.starts_with(denied) {
                    Probe::Denied
                } else {
                    Probe::Missing
                }
            }
        };
        assert_eq!(
            choose_socket(&c, only("/run/swarmd", "/x")),
            Some(c[2].clone())
        );
        // A present socket wins over an earlier one nobody may look at; a denied one wins over
        // none at all.
        assert_eq!(
            choose_socket(&c, only("/tmp", "/run/user")),
            Some(c[1].clone())
        );
        assert_eq!(
            choose_socket(&c, only("/x", "/run/swarmd")),
            Some(c[2].clone())
        );
        assert_eq!(choose_socket(&c, |_| Probe::Missing), None);
        let forced = env_of(&[
            ("SWARMD_SOCKET", "/x.sock"),
            ("XDG_RUNTIME_DIR", "/run/user/7"),
        ]);
        assert_eq!(
            client_socket_candidates(&forced),
            vec![PathBuf::from("/x.sock")]
        );
    }

    #[test]
    fn probes_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Probe::of(dir.path()), Probe::Present);
        assert_eq!(Probe::of(&dir.path().join("nope.sock")), Probe::Missing);
        // A missing socket's group is its directory's.
        use std::os::unix::fs::MetadataExt;
        let gid = std::fs::metadata(dir.path()).unwrap().gid();
        let expected = crate::nss::group_name(gid).unwrap_or(gid.to_string());
        assert_eq!(access_group(&dir.path().join("nope.sock")), Some(expected));
    }
}
