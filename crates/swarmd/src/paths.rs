//! Where the daemon keeps things: its config file, state, downloads, watch directory and socket,
//! decided from the mode (user or system, see [`swarm_control::paths`]) and the config's overrides.
//!
//! User mode follows the XDG base directory spec; system mode uses the directories systemd hands
//! over (`$STATE_DIRECTORY` …) or their usual places under `/etc`, `/var/lib` and `/run`. The
//! environment comes in as a lookup function so tests never touch the process environment.

use std::path::{Path, PathBuf};

use swarm_control::paths::{self as cpaths, non_empty, Env, Mode};

use crate::config::Config;

pub const CONFIG_FILE_NAME: &str = "swarmd.toml";

/// The effective locations of one daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    pub mode: Mode,
    pub state_dir: PathBuf,
    pub download_dir: PathBuf,
    pub watch_dir: PathBuf,
    pub socket: PathBuf,
}

/// The config file read when `--config` is not given.
pub fn default_config_file(mode: Mode, env: Env) -> PathBuf {
    match mode {
        Mode::System => non_empty(env, "CONFIGURATION_DIRECTORY")
            .unwrap_or_else(|| PathBuf::from("/etc/swarmd"))
            .join(CONFIG_FILE_NAME),
        Mode::User => xdg_dir(env, "XDG_CONFIG_HOME", ".config")
            .join("swarmd")
            .join(CONFIG_FILE_NAME),
    }
}

impl Paths {
    pub fn resolve(config: &Config, mode: Mode, env: Env) -> Paths {
        let state_dir = config
            .daemon
            .state_dir
            .clone()
            .unwrap_or_else(|| default_state_dir(mode, env));
        let download_dir = config
            .daemon
            .download_dir
            .clone()
            .unwrap_or_else(|| match mode {
                Mode::System => state_dir.join("downloads"),
                Mode::User => user_download_dir(env),
            });
        let watch_dir = config
            .watch
            .dir
            .clone()
            .unwrap_or_else(|| state_dir.join("watch"));
        let socket = config
            .control
            .socket
            .clone()
            .unwrap_or_else(|| cpaths::default_socket_path(mode, env));
        Paths {
            mode,
            state_dir,
            download_dir,
            watch_dir,
            socket,
        }
    }
}

/// `config` with every path key filled in, as `swarmd print-config` shows it.
pub fn with_resolved_paths(config: &Config, paths: &Paths) -> Config {
    let mut c = config.clone();
    c.daemon.state_dir = Some(paths.state_dir.clone());
    c.daemon.download_dir = Some(paths.download_dir.clone());
    c.watch.dir = Some(paths.watch_dir.clone());
    c.control.socket = Some(paths.socket.clone());
    c.dht.port = Some(c.dht.port.unwrap_or(c.network.listen.port()));
    c
}

fn default_state_dir(mode: Mode, env: Env) -> PathBuf {
    match mode {
        Mode::System => {
            non_empty(env, "STATE_DIRECTORY").unwrap_or_else(|| PathBuf::from("/var/lib/swarmd"))
        }
        Mode::User => xdg_dir(env, "XDG_STATE_HOME", ".local/state").join("swarmd"),
    }
}

/// `$VAR` when it is an absolute path (the spec says to ignore relative ones), else `~/fallback`.
fn xdg_dir(env: Env, var: &str, fallback: &str) -> PathBuf {
    match non_empty(env, var) {
        Some(p) if p.is_absolute() => p,
        _ => home(env).join(fallback),
    }
}

fn home(env: Env) -> PathBuf {
    home_dir(env).unwrap_or_else(|| PathBuf::from("/"))
}

/// The home directory of the user the daemon runs as: `$HOME`, else its passwd entry. Also what
/// `~` in the config's paths means.
pub fn home_dir(env: Env) -> Option<PathBuf> {
    non_empty(env, "HOME").or_else(crate::users::current_home)
}

/// `$XDG_DOWNLOAD_DIR`, else the `XDG_DOWNLOAD_DIR` line of `user-dirs.dirs` (what desktops
/// write), else `~/Downloads`.
fn user_download_dir(env: Env) -> PathBuf {
    let home = home(env);
    if let Some(p) = non_empty(env, "XDG_DOWNLOAD_DIR").filter(|p| p.is_absolute()) {
        return p;
    }
    let user_dirs = xdg_dir(env, "XDG_CONFIG_HOME", ".config").join("user-dirs.dirs");
    if let Some(p) = std::fs::read_to_string(user_dirs)
        .ok()
        .and_then(|t| parse_user_dirs(&t, &home))
    {
        return p;
    }
    home.join("Downloads")
}

/// Reads `XDG_DOWNLOAD_DIR="$HOME/Downloads"` from the text of a `user-dirs.dirs` file.
fn parse_user_dirs(text: &str, home: &Path) -> Option<PathBuf> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("XDG_DOWNLOAD_DIR="))?;
    let value = line["XDG_DOWNLOAD_DIR=".len()..].trim().trim_matches('"');
    let path = match value.strip_prefix("$HOME") {
        Some(rest) => home.join(rest.trim_start_matches('/')),
        None => PathBuf::from(value),
    };
    // `$HOME/` alone means "the home directory", which is no place to drop downloads into.
    (path.is_absolute() && path != home).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.into()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn user_mode_follows_xdg() {
        let env = env_of(&[
            ("HOME", "/home/u"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ("XDG_STATE_HOME", "/home/u/.st"),
            ("XDG_CONFIG_HOME", "/nonexistent/cfg"),
        ]);
        let p = Paths::resolve(&Config::default(), Mode::User, &env);
        assert_eq!(p.state_dir, PathBuf::from("/home/u/.st/swarmd"));
        assert_eq!(p.watch_dir, PathBuf::from("/home/u/.st/swarmd/watch"));
        assert_eq!(p.download_dir, PathBuf::from("/home/u/Downloads"));
        assert_eq!(p.socket, PathBuf::from("/run/user/1000/swarmd/swarmd.sock"));
        assert_eq!(
            default_config_file(Mode::User, &env),
            PathBuf::from("/nonexistent/cfg/swarmd/swarmd.toml")
        );

        let bare = env_of(&[("HOME", "/home/u")]);
        assert_eq!(
            default_config_file(Mode::User, &bare),
            PathBuf::from("/home/u/.config/swarmd/swarmd.toml")
        );
        let p = Paths::resolve(&Config::default(), Mode::User, &bare);
        assert_eq!(p.state_dir, PathBuf::from("/home/u/.local/state/swarmd"));
        let dl = env_of(&[("HOME", "/home/u"), ("XDG_DOWNLOAD_DIR", "/media/dl")]);
        assert_eq!(
            Paths::resolve(&Config::default(), Mode::User, &dl).download_dir,
            PathBuf::from("/media/dl")
        );
    }

    #[test]
    fn system_mode_uses_systemd_dirs() {
        let env = env_of(&[
            ("STATE_DIRECTORY", "/var/lib/swarmd"),
            ("RUNTIME_DIRECTORY", "/run/swarmd"),
            ("CONFIGURATION_DIRECTORY", "/etc/swarmd"),
        ]);
        let p = Paths::resolve(&Config::default(), Mode::System, &env);
        assert_eq!(p.state_dir, PathBuf::from("/var/lib/swarmd"));
        assert_eq!(p.download_dir, PathBuf::from("/var/lib/swarmd/downloads"));
        assert_eq!(p.socket, PathBuf::from("/run/swarmd/swarmd.sock"));
        assert_eq!(
            default_config_file(Mode::System, &env),
            PathBuf::from("/etc/swarmd/swarmd.toml")
        );
        let none = env_of(&[]);
        let p = Paths::resolve(&Config::default(), Mode::System, &none);
        assert_eq!(p.state_dir, PathBuf::from("/var/lib/swarmd"));
    }

    #[test]
    fn config_overrides_win() {
        let mut c = Config::default();
        c.daemon.state_dir = Some("/srv/s".into());
        c.watch.dir = Some("/srv/w".into());
        c.control.socket = Some("/srv/x.sock".into());
        let p = Paths::resolve(&c, Mode::System, &env_of(&[]));
        assert_eq!(
            (p.watch_dir.as_path(), p.socket.as_path()),
            (Path::new("/srv/w"), Path::new("/srv/x.sock"))
        );
        assert_eq!(p.download_dir, PathBuf::from("/srv/s/downloads"));
        let full = with_resolved_paths(&c, &p);
        assert_eq!(
            full.daemon.download_dir,
            Some(PathBuf::from("/srv/s/downloads"))
        );
        assert_eq!(full.dht.port, Some(6881));
    }

    #[test]
    fn user_dirs_file() {
        let home = Path::new("/home/u");
        let text = "# comment\nXDG_DESKTOP_DIR=\"$HOME/Desktop\"\nXDG_DOWNLOAD_DIR=\"$HOME/Téléchargements\"\n";
        assert_eq!(
            parse_user_dirs(text, home),
            Some(PathBuf::from("/home/u/Téléchargements"))
        );
        assert_eq!(
            parse_user_dirs("XDG_DOWNLOAD_DIR=\"/data/dl\"", home),
            Some(PathBuf::from("/data/dl"))
        );
        assert_eq!(parse_user_dirs("XDG_DOWNLOAD_DIR=\"$HOME/\"", home), None);
        assert_eq!(parse_user_dirs("", home), None);
    }
}
