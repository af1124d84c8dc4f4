//! `~` in the config's paths, as a shell reads it: `~` and `~/…` are the home directory of the
//! user the daemon runs as (`$HOME`, else its passwd entry). Pure: the home comes in as an
//! argument. `~user/…` is left alone (whose home a system service should look into is no
//! question for a config file), so the absolute-path check refuses it with its key and line.

use std::path::{Path, PathBuf};

use super::Config;

/// `path` with a leading `~` replaced by `home`; any other path as it is.
pub fn expand(path: &Path, home: &Path) -> PathBuf {
    match path.strip_prefix("~") {
        Ok(rest) if rest.as_os_str().is_empty() => home.to_path_buf(),
        Ok(rest) => home.join(rest),
        Err(_) => path.to_path_buf(),
    }
}

/// Expands every path key of `config` (without a home, `~` stays and is refused as relative).
pub fn expand_paths(config: &mut Config, home: Option<&Path>) {
    let Some(home) = home else { return };
    for p in [
        &mut config.daemon.state_dir,
        &mut config.daemon.download_dir,
        &mut config.daemon.incomplete_dir,
        &mut config.watch.dir,
        &mut config.control.socket,
        &mut config.rpc.unix_socket,
        &mut config.rpc.web_root,
    ]
    .into_iter()
    .flatten()
    {
        *p = expand(p, home);
    }
    for p in &mut config.blocklist.paths {
        *p = expand(p, home);
    }
    for p in config
        .labels
        .values_mut()
        .filter_map(|l| l.save_dir.as_mut())
    {
        *p = expand(p, home);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilde_is_the_home() {
        let home = Path::new("/home/u");
        let e = |p: &str| expand(Path::new(p), home);
        assert_eq!(e("~"), PathBuf::from("/home/u"));
        assert_eq!(e("~/"), PathBuf::from("/home/u"));
        assert_eq!(e("~/Downloads/t"), PathBuf::from("/home/u/Downloads/t"));
        assert_eq!(e("/srv/~/x"), PathBuf::from("/srv/~/x"));
        assert_eq!(e("~bob/x"), PathBuf::from("~bob/x"));
        assert_eq!(e("rel/x"), PathBuf::from("rel/x"));
    }

    #[test]
    fn every_path_key() {
        let mut c = Config::default();
        c.daemon.state_dir = Some("~/.st".into());
        c.daemon.download_dir = Some("~/dl".into());
        c.watch.dir = Some("~/w".into());
        c.control.socket = Some("/run/x.sock".into());
        expand_paths(&mut c, Some(Path::new("/h")));
        assert_eq!(c.daemon.state_dir, Some(PathBuf::from("/h/.st")));
        assert_eq!(c.daemon.download_dir, Some(PathBuf::from("/h/dl")));
        assert_eq!(c.watch.dir, Some(PathBuf::from("/h/w")));
        assert_eq!(c.control.socket, Some(PathBuf::from("/run/x.sock")));
    }
}
