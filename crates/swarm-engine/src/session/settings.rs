//! The session-wide settings through [`Session`]: global and alternative rate limits, the IP
//! blocklist, the encryption policy, the queue's and the seeding limits' settings. Each is the
//! root's (or the blocklist's, which the listener and every torrent share); this is the handle's
//! side of them.

use swarm_model::{BlocklistSources, BlocklistStatus, Limits, QueueConfig, SeedingConfig};

use super::{gone, Session};
use crate::blocklist::{LoadError, UpdateError};
use crate::root::QueueSettingsMsg;
use swarm_model::EngineError;

pub(super) fn blocklist_error(e: LoadError) -> EngineError {
    EngineError::Io {
        doing: "cannot read the blocklist",
        path: e.path,
        reason: e.reason,
    }
}

impl Session {
    /// The normal global limits (in force unless the alternative ones are on: `stats` shows
    /// the ones in force).
    pub async fn limits(&self) -> Result<Limits, EngineError> {
        self.root
            .send(crate::root::GlobalLimits(None))
            .await
            .map_err(gone)
    }

    /// Changes the global rate limits at run time (`None` or 0: unlimited).
    pub async fn set_limits(&self, limits: Limits) -> Result<Limits, EngineError> {
        self.root
            .send(crate::root::GlobalLimits(Some(limits)))
            .await
            .map_err(gone)
    }

    /// The alternative speed limits: rates, whether they are on, their schedule.
    pub async fn alt_speed(&self) -> Result<swarm_model::AltSpeed, EngineError> {
        self.root
            .send(crate::root::AltSpeedMsg(None))
            .await
            .map_err(gone)
    }

    /// Replaces the alternative speed settings; answers them as now in force (a schedule whose
    /// window is open turns them on at once).
    pub async fn set_alt_speed(
        &self,
        alt: swarm_model::AltSpeed,
    ) -> Result<swarm_model::AltSpeed, EngineError> {
        self.root
            .send(crate::root::AltSpeedMsg(Some(alt)))
            .await
            .map_err(gone)
    }

    /// The IP blocklist's rules in force, where they came from, and what it refused.
    pub fn blocklist(&self) -> BlocklistStatus {
        self.blocklist.status()
    }

    /// Reads the blocklist again, from `sources` if given (the config changed), else from
    /// those in use. A file that cannot be read fails it and the rules in force stay.
    pub async fn reload_blocklist(
        &self,
        sources: Option<BlocklistSources>,
    ) -> Result<BlocklistStatus, EngineError> {
        let list = self.blocklist.clone();
        tokio::task::spawn_blocking(move || list.load(sources).map_err(blocklist_error))
            .await
            .map_err(|e| EngineError::Internal(format!("blocklist load: {e}")))?
    }

    /// Fetches the blocklist's url (`[blocklist] url`) into its file, then reloads.
    pub async fn update_blocklist(&self) -> Result<BlocklistStatus, EngineError> {
        let list = self.blocklist.clone();
        tokio::task::spawn_blocking(move || {
            list.update().map_err(|e| match e {
                UpdateError::Load(e) => blocklist_error(e),
                UpdateError::Save { path, reason } => EngineError::Io {
                    doing: "cannot save the fetched blocklist to",
                    path,
                    reason,
                },
                other => EngineError::Invalid(other.to_string()),
            })
        })
        .await
        .map_err(|e| EngineError::Internal(format!("blocklist update: {e}")))?
    }

    /// The encryption (MSE/PE) policy in force.
    pub async fn encryption(&self) -> Result<swarm_wire::mse::Policy, EngineError> {
        self.root
            .send(crate::root::Encryption(None))
            .await
            .map_err(gone)
    }

    /// Changes the encryption policy at run time; connections made from now on follow it.
    pub async fn set_encryption(
        &self,
        policy: swarm_wire::mse::Policy,
    ) -> Result<swarm_wire::mse::Policy, EngineError> {
        self.root
            .send(crate::root::Encryption(Some(policy)))
            .await
            .map_err(gone)
    }

    /// The queue's and the seeding limits' settings in force.
    pub async fn queue_config(&self) -> Result<(QueueConfig, SeedingConfig), EngineError> {
        self.root.send(QueueSettingsMsg(None)).await.map_err(gone)
    }

    /// Changes the queue's and the seeding limits' settings at run time.
    pub async fn set_queue_config(
        &self,
        queue: QueueConfig,
        seeding: SeedingConfig,
    ) -> Result<(QueueConfig, SeedingConfig), EngineError> {
        self.root
            .send(QueueSettingsMsg(Some((queue, seeding))))
            .await
            .map_err(gone)
    }
}
