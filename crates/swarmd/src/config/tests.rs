use std::path::{Path, PathBuf};

use super::load::{key_at, line_col, locate_key};
use super::*;

const SHIPPED: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../config/swarmd.toml"
));

fn parse_str(text: &str) -> Result<Config, ConfigError> {
    parse(text, Path::new("/etc/swarmd/swarmd.toml"))
}

fn error_of(text: &str) -> String {
    parse_str(text).unwrap_err().to_string()
}

#[test]
fn shipped_file_equals_the_built_in_defaults() {
    assert_eq!(parse_str(SHIPPED).unwrap(), Config::default());
}

#[test]
fn empty_file_is_the_defaults() {
    assert_eq!(parse_str("").unwrap(), Config::default());
}

/// Every key of the schema appears in the shipped file, set or commented out, so the file stays
/// a complete reference. (Optional keys only serialize when set, so a fully set config is used.)
#[test]
fn shipped_file_documents_every_key() {
    let mut full = Config::default();
    full.daemon.state_dir = Some("/s".into());
    full.daemon.download_dir = Some("/d".into());
    full.watch.dir = Some("/w".into());
    full.control.socket = Some("/x.sock".into());
    full.control.group = Some("g".into());
    full.dht.port = Some(1);
    full.blocklist.url = Some("https://x/l.gz".into());
    let value = toml::Value::try_from(&full).unwrap();
    let mut missing = Vec::new();
    for (section, table) in value.as_table().unwrap() {
        assert!(
            SHIPPED.contains(&format!("\n[{section}]\n")),
            "section [{section}] not in swarmd.toml"
        );
        for key in table.as_table().unwrap().keys() {
            let set = locate_key(SHIPPED, section, key).is_some();
            let commented = SHIPPED.contains(&format!("# {key} = "));
            if !set && !commented {
                missing.push(format!("{section}.{key}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "keys missing from config/swarmd.toml: {missing:?}"
    );
}

#[test]
fn values_are_read() {
    let c = parse_str(
        r#"
[daemon]
state_dir = "/srv/swarmd"
log_level = "debug,swarm_engine=trace"
[network]
listen = "[::]:7000"
[limits]
download_kib_s = 100
[watch]
on_added = "keep"
[control]
mode = 0o640
group = "media"
allow = ["alice", "1002"]
"#,
    )
    .unwrap();
    assert_eq!(c.daemon.state_dir, Some(PathBuf::from("/srv/swarmd")));
    assert_eq!(c.network.listen.port(), 7000);
    assert_eq!(
        c.limits.rate_limits(),
        Limits {
            download: Some(102400),
            upload: None
        }
    );
    assert_eq!(c.watch.on_added, OnAdded::Keep);
    assert_eq!(c.control.mode, FileMode(0o640));
    assert_eq!(c.control.group.as_deref(), Some("media"));
    assert_eq!(c.control.allow, vec!["alice", "1002"]);
    assert_eq!(
        parse_str("[control]\nmode = \"0600\"")
            .unwrap()
            .control
            .mode,
        FileMode(0o600)
    );
}

#[test]
fn unknown_key_names_key_and_line() {
    let msg = error_of(
        "[daemon]\nlog_level = \"info\"\n\n[network]\nlisten = \"0.0.0.0:1\"\nmax_peer = 3\n",
    );
    assert!(msg.contains("line 6"), "{msg}");
    assert!(msg.contains("network.max_peer"), "{msg}");
    assert!(msg.contains("unknown field"), "{msg}");
    assert!(msg.contains("/etc/swarmd/swarmd.toml"), "{msg}");
}

#[test]
fn unknown_section_names_it() {
    let msg = error_of("[daemon]\n\n[netwrok]\nlisten = \"x\"\n");
    assert!(msg.contains("line 3"), "{msg}");
    assert!(msg.contains("netwrok"), "{msg}");
}

#[test]
fn wrong_type_names_key_and_line() {
    let msg = error_of("[network]\n\nmax_peers_global = \"lots\"\n");
    assert!(msg.contains("line 3"), "{msg}");
    assert!(msg.contains("network.max_peers_global"), "{msg}");
    let msg = error_of("[network]\nlisten = \"localhost\"\n");
    assert!(
        msg.contains("line 2") && msg.contains("network.listen"),
        "{msg}"
    );
    let msg = error_of("[watch]\non_added = \"shred\"\n");
    assert!(
        msg.contains("line 2") && msg.contains("watch.on_added"),
        "{msg}"
    );
    let msg = error_of("[watch]\nrescan_secs = 0\n");
    assert!(
        msg.contains("line 2") && msg.contains("watch.rescan_secs"),
        "{msg}"
    );
    let msg = error_of("[control]\n# a comment\nmode = \"0999\"\n");
    assert!(
        msg.contains("line 3") && msg.contains("control.mode"),
        "{msg}"
    );
    let msg = error_of("[control]\nmode = \"1777\"\n");
    assert!(msg.contains("beyond 0777"), "{msg}");
}

#[test]
fn error_inside_a_multi_line_array_names_the_array() {
    let msg = error_of("[dht]\nbootstrap = [\n  \"a:1\",\n  7,\n]\n");
    assert!(
        msg.contains("line 4") && msg.contains("dht.bootstrap"),
        "{msg}"
    );
}

#[test]
fn syntax_error_has_a_line() {
    let msg = error_of("[daemon]\nlog_level = \"info\n");
    assert!(msg.contains("line 2"), "{msg}");
}

#[test]
fn semantic_checks_name_key_and_line() {
    let msg = error_of("[daemon]\nlog_level = \"info\"\nstate_dir = \"relative/dir\"\n");
    assert!(
        msg.contains("line 3") && msg.contains("daemon.state_dir") && msg.contains("absolute"),
        "{msg}"
    );
    let msg = error_of("[daemon]\nlog_level = \"loud\"\n");
    assert!(
        msg.contains("line 2") && msg.contains("daemon.log_level"),
        "{msg}"
    );
    let msg = error_of("daemon.log_level = \"chatty\"\n");
    assert!(
        msg.contains("line 1") && msg.contains("daemon.log_level"),
        "{msg}"
    );
    let msg = error_of("[dht]\nbootstrap = [\"nohost\"]\n");
    assert!(
        msg.contains("line 2") && msg.contains("dht.bootstrap"),
        "{msg}"
    );
    let msg = error_of("[control]\nmax_request_bytes = 10\n");
    assert!(msg.contains("control.max_request_bytes"), "{msg}");
    let msg = error_of("[network]\nmax_peers_global = 0\n");
    assert!(msg.contains("network.max_peers_global"), "{msg}");
}

/// What the daemon would refuse (or run with to no purpose) is refused by the check too.
#[test]
fn values_the_daemon_cannot_use_are_refused() {
    let msg = error_of("[daemon]\nlog_level = \"info,swarmd[peer]=debug\"\n");
    assert!(
        msg.contains("daemon.log_level") && msg.contains("span"),
        "{msg}"
    );
    for key in ["upload_slots_per_torrent", "upload_slots_global"] {
        let msg = error_of(&format!("[limits]\n{key} = 0\n"));
        assert!(
            msg.contains(&format!("limits.{key}")) && msg.contains("at least 1"),
            "{msg}"
        );
    }
    let msg = error_of("[limits]\ndownload_kib_s = 18446744073709551615\n");
    assert!(msg.contains("limits.download_kib_s"), "{msg}");
    let msg = error_of("[control]\nidle_timeout_secs = 0\n");
    assert!(msg.contains("control.idle_timeout_secs"), "{msg}");
}

#[test]
fn users_and_groups_must_exist_when_loading() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        "[control]\nmode = \"0660\"\ngroup = \"no-such-group-swarmd\"\n",
    )
    .unwrap();
    let msg = load(Some(&file), &file).unwrap_err().to_string();
    assert!(
        msg.contains("line 3")
            && msg.contains("control.group")
            && msg.contains("no group named \"no-such-group-swarmd\""),
        "{msg}"
    );
    std::fs::write(
        &file,
        "[control]\nallow = [\"root\", \"no-such-user-swarmd\"]\n",
    )
    .unwrap();
    let msg = load(Some(&file), &file).unwrap_err().to_string();
    assert!(
        msg.contains("control.allow") && msg.contains("no user named \"no-such-user-swarmd\""),
        "{msg}"
    );
    std::fs::write(
        &file,
        "[control]\ngroup = \"root\"\nallow = [\"root\", \"1234\"]\n",
    )
    .unwrap();
    assert!(load(Some(&file), &file).is_ok());
}

#[test]
fn load_uses_defaults_only_without_explicit_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.toml");
    let (c, used) = load(None, &missing).unwrap();
    assert_eq!((c, used), (Config::default(), None));
    let err = load(Some(&missing), &missing).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("none.toml"));
    let file = dir.path().join("s.toml");
    std::fs::write(&file, "[limits]\nupload_kib_s = 5\n").unwrap();
    let (c, used) = load(None, &file).unwrap();
    assert_eq!(c.limits.upload_kib_s, 5);
    assert_eq!(used, Some(file));
}

#[test]
fn printed_config_parses_back() {
    let text = toml::to_string(&Config::default()).unwrap();
    assert_eq!(parse_str(&text).unwrap(), Config::default());
}

#[test]
fn position_helpers() {
    assert_eq!(line_col("ab\ncdé\nx", 7), (2, 4));
    assert_eq!(line_col("", 0), (1, 1));
    assert_eq!(key_at("[a]\nk = 1\n", 8).as_deref(), Some("a.k"));
    assert_eq!(key_at("top = 1\n", 6).as_deref(), Some("top"));
    assert_eq!(
        locate_key("[a]\n  k = 1\n[b]\nk=2\n", "b", "k"),
        Some((4, 1))
    );
    assert_eq!(locate_key("[a]\n  k = 1\n", "a", "k"), Some((2, 3)));
}

/// `~` in a path key is the home directory (here the test process's own).
#[test]
fn tilde_paths_are_expanded() {
    let c = parse_str("[daemon]\ndownload_dir = \"~/Downloads/t\"\n").unwrap();
    let home = crate::paths::home_dir(&swarm_control::paths::process_env).unwrap();
    assert_eq!(c.daemon.download_dir, Some(home.join("Downloads/t")));
    let msg = error_of("[watch]\ndir = \"~bob/w\"\n");
    assert!(
        msg.contains("watch.dir") && msg.contains("absolute"),
        "{msg}"
    );
}

#[test]
fn blocklist_paths_and_url_are_checked() {
    let c = parse_str("[blocklist]\nenabled = true\npaths = [\"/srv/lists\"]\n").unwrap();
    let sources = c.blocklist.sources(Path::new("/state"));
    assert_eq!(sources.paths, vec![PathBuf::from("/srv/lists")]);
    assert_eq!(sources.url_file, None, "no url, no downloaded file");
    let e = error_of("[blocklist]\npaths = [\"/a\", \"lists\"]\n");
    assert!(
        e.contains("blocklist.paths") && e.contains("lists is not an absolute path"),
        "{e}"
    );
    let e = error_of("[blocklist]\nurl = \"ftp://x/l\"\n");
    assert!(
        e.contains("blocklist.url") && e.contains("not an http"),
        "{e}"
    );
    let c = parse_str("[blocklist]\nurl = \"https://x/l.gz\"\n").unwrap();
    let sources = c.blocklist.sources(Path::new("/state"));
    assert_eq!(
        sources.url_file,
        Some(PathBuf::from("/state/blocklist-url"))
    );
}
