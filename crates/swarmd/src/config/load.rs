//! Reading a config file and turning every mistake in it into an error that names the file, the
//! line and the key.
//!
//! toml's errors carry a byte span; the key is recovered from the text around it (the nearest
//! `key =` and `[section]` above the span), because serde's messages ("invalid type: string,
//! expected u32") do not say which key they are about. Checks serde cannot express (absolute
//! paths, a valid log filter …) run afterwards and find their key's line the same way.
//!
//! `swarmd check-config`, the daemon's start and its reload all go through [`load`], so a file
//! `check-config` calls OK is one the daemon starts with: the users and groups of `[control]`
//! are looked up here too ([`parse`] alone checks the text, not the machine).

use std::path::{Path, PathBuf};

use super::Config;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {}, {}{message}", path.display(), Position::describe(*line, *column, key.as_deref()))]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        key: Option<String>,
        message: String,
    },
}

struct Position;

impl Position {
    fn describe(line: usize, column: usize, key: Option<&str>) -> String {
        match key {
            Some(k) => format!("line {line}, column {column}, key `{k}`: "),
            None => format!("line {line}, column {column}: "),
        }
    }
}

/// Loads the config: `explicit` must exist when given; otherwise `default_file` is read when it
/// exists and the built-in defaults are used when it does not. Returns the file actually read.
pub fn load(
    explicit: Option<&Path>,
    default_file: &Path,
) -> Result<(Config, Option<PathBuf>), ConfigError> {
    match explicit {
        Some(path) => load_file(path).map(|c| (c, Some(path.to_path_buf()))),
        None if default_file.exists() => {
            load_file(default_file).map(|c| (c, Some(default_file.to_path_buf())))
        }
        None => Ok((Config::default(), None)),
    }
}

pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let config = parse(&text, path)?;
    check_accounts(&config, &text, path)?;
    Ok(config)
}

/// The `[control]` group and users exist on this machine (the daemon needs their ids).
fn check_accounts(c: &Config, text: &str, path: &Path) -> Result<(), ConfigError> {
    if let Some(group) = c.control.group.as_deref() {
        if crate::users::resolve_group(group).is_none() {
            return Err(invalid_at(
                text,
                path,
                ("control", "group"),
                format!("no group named {group:?} on this system"),
            ));
        }
    }
    if let Some(user) = c
        .control
        .allow
        .iter()
        .find(|u| crate::users::resolve_user(u).is_none())
    {
        return Err(invalid_at(
            text,
            path,
            ("control", "allow"),
            format!("no user named {user:?} on this system"),
        ));
    }
    Ok(())
}

/// An error about `section.key`, at the line that sets it.
fn invalid_at(
    text: &str,
    path: &Path,
    (section, key): (&str, &str),
    message: String,
) -> ConfigError {
    let (line, column) = locate_key(text, section, key).unwrap_or((1, 1));
    ConfigError::Invalid {
        path: path.to_path_buf(),
        line,
        column,
        key: Some(format!("{section}.{key}")),
        message,
    }
}

/// Parses and validates config text; `path` is only used in messages.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let mut config: Config = toml::from_str(text).map_err(|e| {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        let (line, column) = line_col(text, offset);
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            column,
            key: key_at(text, offset),
            message: e.message().trim().to_owned(),
        }
    })?;
    let home = crate::paths::home_dir(&swarm_control::paths::process_env);
    super::home::expand_paths(&mut config, home.as_deref());
    validate(&config, text, path)?;
    Ok(config)
}

/// The checks serde cannot express. Each failure is reported at its key's line.
fn validate(c: &Config, text: &str, path: &Path) -> Result<(), ConfigError> {
    let fail = |section: &str, key: &str, message: String| {
        Err(invalid_at(text, path, (section, key), message))
    };
    let paths = [
        ("daemon", "state_dir", &c.daemon.state_dir),
        ("daemon", "download_dir", &c.daemon.download_dir),
        ("daemon", "incomplete_dir", &c.daemon.incomplete_dir),
        ("watch", "dir", &c.watch.dir),
        ("control", "socket", &c.control.socket),
        ("rpc", "unix_socket", &c.rpc.unix_socket),
        ("rpc", "web_root", &c.rpc.web_root),
    ];
    for (section, key, value) in paths {
        if let Some(p) = value {
            if !p.is_absolute() {
                return fail(
                    section,
                    key,
                    format!("{} is not an absolute path", p.display()),
                );
            }
        }
    }
    {
        use swarm_control::alt_speed::{parse_clock, parse_days};
        let a = &c.alt_speed;
        for (key, clock) in [("begin", &a.begin), ("end", &a.end)] {
            if let Err(e) = parse_clock(clock) {
                return fail("alt_speed", key, e);
            }
        }
        if let Err(e) = parse_days(&a.days) {
            return fail("alt_speed", "days", e);
        }
        for (key, kib) in [
            ("download_kib_s", a.download_kib_s),
            ("upload_kib_s", a.upload_kib_s),
        ] {
            if let Err(e) = swarm_control::check_rate_limit(key, kib.saturating_mul(1024)) {
                return fail("alt_speed", key, e);
            }
        }
    }
    if let Some(p) = c.blocklist.paths.iter().find(|p| !p.is_absolute()) {
        return fail(
            "blocklist",
            "paths",
            format!("{} is not an absolute path", p.display()),
        );
    }
    if let Some(url) = &c.blocklist.url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return fail(
                "blocklist",
                "url",
                format!("{url:?} is not an http:// or https:// URL"),
            );
        }
    }
    if let Some(r) = c.seeding.ratio_limit {
        if !r.is_finite() || r < 0.0 {
            return fail(
                "seeding",
                "ratio_limit",
                format!("{r} is not a ratio: give 0 or more, or leave the key out for no limit"),
            );
        }
    }
    for (name, label) in &c.labels {
        let section = format!("labels.{name}");
        if let Err(e) = swarm_model::normalize_labels(&[name]) {
            return fail(&section, "save_dir", e);
        }
        if let Some(p) = label.save_dir.as_ref().filter(|p| !p.is_absolute()) {
            return fail(
                &section,
                "save_dir",
                format!("{} is not an absolute path", p.display()),
            );
        }
    }
    if let Err(reason) = check_log_filter(&c.daemon.log_level) {
        return fail(
            "daemon",
            "log_level",
            format!("{:?} is not a log filter: {reason}", c.daemon.log_level),
        );
    }
    if c.network.max_peers_per_torrent == 0 || c.network.max_peers_global == 0 {
        let key = if c.network.max_peers_global == 0 {
            "max_peers_global"
        } else {
            "max_peers_per_torrent"
        };
        return fail("network", key, "must be at least 1".into());
    }
    let transports = &c.network.transports;
    if transports.is_empty() {
        return fail(
            "network",
            "transports",
            "names no transport: list \"tcp\", \"utp\" or both".into(),
        );
    }
    if transports
        .iter()
        .enumerate()
        .any(|(i, t)| transports[..i].contains(t))
    {
        return fail("network", "transports", "names a transport twice".into());
    }
    if c.queue.max_active_checks == 0 {
        return fail(
            "queue",
            "max_active_checks",
            "must be at least 1 (0 would never check anything)".into(),
        );
    }
    if c.network.max_half_open == 0 {
        return fail("network", "max_half_open", "must be at least 1".into());
    }
    // Zero slots would upload to nobody: a seeder that never seeds.
    for (key, slots) in [
        (
            "upload_slots_per_torrent",
            c.limits.upload_slots_per_torrent,
        ),
        ("upload_slots_global", c.limits.upload_slots_global),
    ] {
        if slots == 0 {
            return fail("limits", key, "must be at least 1".into());
        }
    }
    for (key, kib) in [
        ("download_kib_s", c.limits.download_kib_s),
        ("upload_kib_s", c.limits.upload_kib_s),
    ] {
        let max = swarm_control::MAX_RATE_LIMIT / 1024;
        if kib > max {
            return fail(
                "limits",
                key,
                format!(
                    "{kib} KiB/s is more than any link ({max} KiB/s at most); 0 means unlimited"
                ),
            );
        }
    }
    if c.control.max_clients == 0 {
        return fail("control", "max_clients", "must be at least 1".into());
    }
    if c.control.max_request_bytes < 64 * 1024 {
        return fail(
            "control",
            "max_request_bytes",
            "must be at least 65536".into(),
        );
    }
    if let Some(bad) = c.control.allow.iter().find(|u| u.trim().is_empty()) {
        return fail(
            "control",
            "allow",
            format!("{bad:?} is not a user name or uid"),
        );
    }
    if let Some(bad) = c.dht.bootstrap.iter().find(|a| !is_host_port(a)) {
        return fail("dht", "bootstrap", format!("{bad:?} is not host:port"));
    }
    if let Err((key, message)) = crate::http_rpc::check_config(&c.rpc) {
        return fail("rpc", key, message);
    }
    Ok(())
}

/// Stricter than tracing-subscriber's parser, which takes a bare word such as `verbose` as a
/// target name and logs everything from that (non-existent) target: here a bare word must be a
/// level.
pub fn check_log_filter(filter: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        // tracing-subscriber's `Targets` would take `swarmd[peer]` as a target name and match
        // nothing, so such a filter would silently log less than asked.
        if directive.contains(['[', ']', '{', '}']) {
            return Err(format!(
                "{directive:?}: span and field filters ([span], {{field}}) are not supported; \
                 use a level or target=level"
            ));
        }
        let level = directive
            .rsplit_once('=')
            .map(|(_, l)| l)
            .unwrap_or(directive);
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(format!("{directive:?} is not a level (off, error, warn, info, debug, trace) or target=level"));
        }
    }
    filter
        .trim()
        .parse::<tracing_subscriber::filter::Targets>()
        .map(drop)
        .map_err(|e| e.to_string())
}

fn is_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The dotted key a byte offset belongs to: the nearest `key =` at or above it, prefixed with the
/// nearest `[section]` above that. An offset on a section header names the section.
pub(super) fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_end = text[offset..]
        .find('\n')
        .map(|i| offset + i)
        .unwrap_or(text.len());
    let mut key: Option<String> = None;
    for line in text[..line_end].lines().rev() {
        let trimmed = line.trim_start();
        if let Some(section) = header_name(trimmed) {
            return Some(match key {
                Some(k) => format!("{section}.{k}"),
                None => section,
            });
        }
        if key.is_none() {
            key = key_name(trimmed);
        }
    }
    key
}

/// Where `section.key` is set (1-based line and column), in either `[section]` + `key = …` form or
/// as a dotted `section.key = …` at the top.
pub(super) fn locate_key(text: &str, section: &str, key: &str) -> Option<(usize, usize)> {
    let dotted = format!("{section}.{key}");
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(h) = header_name(trimmed) {
            current = h;
            continue;
        }
        let Some(k) = key_name(trimmed) else { continue };
        let full = if current.is_empty() {
            k
        } else {
            format!("{current}.{k}")
        };
        if full == dotted {
            return Some((i + 1, line.len() - trimmed.len() + 1));
        }
    }
    None
}

/// `[name]` → `name` (spaces and quotes around parts removed). Arrays of tables are not used by
/// swarmd's schema, so `[[x]]` is treated like `[x]`.
fn header_name(line: &str) -> Option<String> {
    let inner = line.strip_prefix('[')?;
    let inner = inner.trim_start_matches('[');
    let end = inner.find(']')?;
    Some(
        inner[..end]
            .split('.')
            .map(|p| p.trim().trim_matches('"'))
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// `key = value` → `key` (dotted keys kept, quotes removed); comments and values give `None`.
fn key_name(line: &str) -> Option<String> {
    if line.starts_with('#') {
        return None;
    }
    let (left, _) = line.split_once('=')?;
    let left = left.trim();
    let ok = !left.is_empty()
        && left
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '"' | ' '));
    ok.then(|| {
        left.split('.')
            .map(|p| p.trim().trim_matches('"'))
            .collect::<Vec<_>>()
            .join(".")
    })
}
