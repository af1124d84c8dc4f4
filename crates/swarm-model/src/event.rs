//! What the engine tells its subscribers as it happens (the control protocol's `event`
//! notifications).

use serde::{Deserialize, Serialize};
use swarm_wire::InfoHash;

use crate::TorrentState;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Added {
        info_hash: InfoHash,
        name: String,
    },
    Completed {
        info_hash: InfoHash,
        name: String,
    },
    Error {
        info_hash: InfoHash,
        message: String,
    },
    Removed {
        info_hash: InfoHash,
    },
    Progress {
        info_hash: InfoHash,
        progress: f64,
        download_rate: u64,
        upload_rate: u64,
        state: TorrentState,
    },
    /// The torrent's state changed (paused, resumed, checking, seeding, error…), at once.
    State {
        info_hash: InfoHash,
        name: String,
        state: TorrentState,
    },
    /// The torrent's data is moving to `to`: after each file, and every 2 s while one copies;
    /// `progress` 1.0 when the move is done (`to` is the save directory from then on).
    Moving {
        info_hash: InfoHash,
        to: String,
        progress: f64,
    },
    /// An event of a newer daemon that this client does not know: skipped, never sent.
    #[serde(other)]
    Unknown,
}
