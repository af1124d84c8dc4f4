//! Settings changed at run time over the control socket (`swarmctl limits`), kept in
//! `STATE_DIR/runtime-settings.json` so that a restart keeps them.
//!
//! Never the user's config file: the daemon does not write it (it may be read-only, under
//! version control or shared between machines). Precedence, from strongest: a value set at run
//! time, then the config file, then the built-in default. A reload (SIGHUP) that finds `[limits]`
//! changed in the config file applies the file's rates and forgets the run-time ones: the newest
//! explicit change wins.
//!
//! Owned by the daemon (`daemon.rs` loads and hands it out); the control dispatcher records each
//! successful `session.set_limits` here. Writes are atomic (temp file, fsync, rename), so a crash
//! leaves the old or the new file, never half of one.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use swarm_control::Limits;

/// What the file holds. Fields absent from the file are not overridden.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSettings {
    /// Global rates set with `session.set_limits`; they replace `[limits]` rates of the config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// The alternative speed limits as last set at run time (`swarmctl alt-speed`, the HTTP
    /// RPC's `alt-speed-*`): they replace `[alt_speed]` of the config, their switch included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_speed: Option<swarm_control::AltSpeed>,
    /// The queue and the session's seeding limits as last set at run time (`swarmctl
    /// queue-settings`, the HTTP RPC's `download-queue-*`, `seedRatioLimit`…): they replace
    /// `[queue]` and `[seeding]` of the config. Set together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<swarm_control::QueueConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeding: Option<swarm_control::SeedingConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not valid (it is rewritten at the next `swarmctl limits`): {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("cannot save run-time settings to {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The file and what it holds now.
#[derive(Debug)]
pub struct SettingsFile {
    path: PathBuf,
    current: Mutex<RuntimeSettings>,
}

impl SettingsFile {
    pub const FILE_NAME: &'static str = "runtime-settings.json";

    /// Reads the file of `state_dir`. A missing file holds nothing; a file that cannot be read
    /// is reported and treated as empty (the config's values apply), so the daemon still starts.
    pub fn open(state_dir: &Path) -> (SettingsFile, Option<SettingsError>) {
        let path = state_dir.join(Self::FILE_NAME);
        let (settings, problem) = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(s) => (s, None),
                Err(e) => (
                    RuntimeSettings::default(),
                    Some(SettingsError::Invalid {
                        path: path.clone(),
                        reason: e.to_string(),
                    }),
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (RuntimeSettings::default(), None)
            }
            Err(source) => (
                RuntimeSettings::default(),
                Some(SettingsError::Read {
                    path: path.clone(),
                    source,
                }),
            ),
        };
        let file = SettingsFile {
            path,
            current: Mutex::new(settings),
        };
        (file, problem)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The rate limits set at run time, if any.
    pub fn limits(&self) -> Option<Limits> {
        self.lock().limits
    }

    /// Records run-time limits (`None`: forget them, the config's apply) and saves the file.
    pub fn set_limits(&self, limits: Option<Limits>) -> Result<(), SettingsError> {
        self.update(|s| s.limits = limits)
    }

    /// The alternative speed settings set at run time, if any.
    pub fn alt_speed(&self) -> Option<swarm_control::AltSpeed> {
        self.lock().alt_speed
    }

    /// Records run-time alternative speed settings (`None`: forget them) and saves the file.
    pub fn set_alt_speed(&self, alt: Option<swarm_control::AltSpeed>) -> Result<(), SettingsError> {
        self.update(|s| s.alt_speed = alt)
    }

    /// The queue and seeding settings set at run time, if any.
    pub fn queue(&self) -> Option<(swarm_control::QueueConfig, swarm_control::SeedingConfig)> {
        let s = self.lock();
        Some((s.queue?, s.seeding?))
    }

    /// Records run-time queue and seeding settings (`None`: forget them) and saves the file.
    pub fn set_queue(
        &self,
        queue: Option<(swarm_control::QueueConfig, swarm_control::SeedingConfig)>,
    ) -> Result<(), SettingsError> {
        self.update(|s| (s.queue, s.seeding) = (queue.map(|q| q.0), queue.map(|q| q.1)))
    }

    /// Changes what the file holds and saves it, if that changed anything.
    fn update(&self, change: impl FnOnce(&mut RuntimeSettings)) -> Result<(), SettingsError> {
        let mut current = self.lock();
        let before = current.clone();
        change(&mut current);
        if *current == before {
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(&*current).map_err(|e| SettingsError::Write {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        swarm_engine::resume::write_atomic(&self.path, &bytes).map_err(|source| {
            SettingsError::Write {
                path: self.path.clone(),
                source,
            }
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RuntimeSettings> {
        // The data is a plain value: a panic elsewhere cannot leave it half-changed.
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let (file, problem) = SettingsFile::open(dir.path());
        assert!(problem.is_none());
        assert_eq!(file.limits(), None);
        let l = Limits {
            download: Some(3 << 20),
            upload: None,
        };
        file.set_limits(Some(l)).unwrap();
        let (again, problem) = SettingsFile::open(dir.path());
        assert!(problem.is_none());
        assert_eq!(again.limits(), Some(l));
        // Each setting is kept beside the others.
        let alt = swarm_control::AltSpeed {
            enabled: true,
            download: Some(1 << 20),
            ..Default::default()
        };
        again.set_alt_speed(Some(alt)).unwrap();
        again.set_limits(None).unwrap();
        let (third, _) = SettingsFile::open(dir.path());
        assert_eq!((third.limits(), third.alt_speed()), (None, Some(alt)));

        std::fs::write(file.path(), b"{\"limits\": 5").unwrap();
        let (bad, problem) = SettingsFile::open(dir.path());
        assert_eq!(bad.limits(), None);
        let message = problem.unwrap().to_string();
        assert!(message.contains(SettingsFile::FILE_NAME), "{message}");
    }
}
