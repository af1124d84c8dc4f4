//! The root's magnet links that have no metadata yet: adding one (a `MagnetFetch` child), the
//! control commands that apply to it before it becomes a torrent (show, peers, pause, resume,
//! reannounce), and its hand-over to a normal torrent when the metadata arrives.
//!
//! A magnet is listed like any torrent, so every command must find it: a user who adds a magnet
//! and types `swarmctl pause NAME` must not hear that it "does not exist". Its save directory
//! and pause state are kept in a resume record next to the `.magnet` file, so a restart brings
//! it back as it was (a paused magnet does not fetch).

use actix::prelude::*;
use std::path::PathBuf;
use swarm_model::{Event, TorrentState, TorrentSummary};
use swarm_supervisor::{ChildHandle, ExitReason, Restart};
use swarm_wire::InfoHash;

use super::torrents::{writable_save_dir, AddTorrent};
use super::{blank_summary, Root, RootChild};
use crate::magnet::{MagnetDial, MagnetEntry, MagnetFetch, MetadataFetched};
use crate::resume::{ResumeRecord, StatePaths};
use crate::torrent::messages::{PeerSource, PeersFound, SetFilePriorities};
use swarm_model::EngineError;

/// Add a magnet link: its metadata is fetched first (a `MagnetFetch` child), then it becomes a
/// normal torrent. A paused magnet waits for `resume` before it fetches anything.
#[derive(Message)]
#[rtype(result = "Result<(InfoHash, String), EngineError>")]
pub struct AddMagnet {
    pub magnet: swarm_wire::Magnet,
    pub save_dir: Option<PathBuf>,
    pub paused: bool,
    /// When it was first added (a restored magnet keeps its date); `None`: now.
    pub added_at: Option<i64>,
    pub labels: Vec<String>,
}

impl Handler<AddMagnet> for Root {
    type Result = Result<(InfoHash, String), EngineError>;

    fn handle(&mut self, msg: AddMagnet, ctx: &mut Context<Self>) -> Self::Result {
        let ih = msg.magnet.info_hash;
        self.check_new(ih)?;
        // As for a torrent: a directory we cannot write to is a new add's error, not a later
        // one (a restored magnet comes back whatever its directory; adding the torrent tells).
        let save_dir = msg.save_dir.as_ref().unwrap_or(&self.cfg.download_dir);
        if msg.added_at.is_none() {
            writable_save_dir(save_dir)?;
        }
        if let Some(d) = &self.torrents_dir {
            StatePaths::of(d, ih).save_magnet(&msg.magnet.to_uri())?;
        }
        let name = msg.magnet.name();
        let entry = MagnetEntry {
            magnet: msg.magnet,
            save_dir: msg.save_dir,
            paused: msg.paused,
            added_at: msg.added_at.unwrap_or_else(crate::now_unix),
            labels: msg.labels,
        };
        self.magnets.insert(ih, entry);
        self.save_magnet_record(ih);
        if !msg.paused {
            if let Err(e) = self.start_magnet_fetch(ih, ctx) {
                self.magnets.remove(&ih);
                return Err(e);
            }
        }
        let _ = self.services.events.send(Event::Added {
            info_hash: ih,
            name: name.clone(),
        });
        Ok((ih, name))
    }
}

impl Root {
    fn start_magnet_fetch(
        &mut self,
        ih: InfoHash,
        ctx: &mut Context<Self>,
    ) -> Result<(), EngineError> {
        let Some(entry) = self.magnets.get(&ih) else {
            return Err(EngineError::UnknownTorrent(ih));
        };
        let (magnet, peer_id) = (entry.magnet.clone(), self.peer_id);
        let dial = MagnetDial {
            listen_port: self.listen_port,
            transports: self.cfg.transports.clone().into(),
            udp: self.udp.clone(),
            encryption: self.encryption.clone(),
            blocklist: self.blocklist.clone(),
            connect_timeout: self.cfg.connect_timeout,
            handshake_timeout: self.cfg.handshake_timeout,
        };
        let (announcer, dht, done) = (
            self.services.announcer.clone(),
            self.dht.clone(),
            ctx.address().recipient(),
        );
        let start = move |link| {
            let f = MagnetFetch::new(
                magnet.clone(),
                peer_id,
                dial.clone(),
                announcer.clone(),
                dht.clone(),
                done.clone(),
                link,
            );
            Ok(ChildHandle::new(f.start()))
        };
        self.children
            .start(RootChild::Magnet(ih), Restart::Transient, start, ctx)
            .map_err(|e| EngineError::Internal(e.to_string()))
    }

    /// The magnet's save directory and pause state, beside its `.magnet` file.
    fn save_magnet_record(&self, ih: InfoHash) {
        let (Some(d), Some(entry)) = (&self.torrents_dir, self.magnets.get(&ih)) else {
            return;
        };
        let save_dir = entry
            .save_dir
            .clone()
            .unwrap_or_else(|| self.cfg.download_dir.clone());
        let rec = ResumeRecord {
            labels: entry.labels.clone(),
            moving: None,
            ..ResumeRecord::first(ih, save_dir, entry.paused, entry.added_at)
        };
        if let Err(e) = StatePaths::of(d, ih).save_record(&rec) {
            tracing::warn!(info_hash = %ih, "{e}");
        }
    }

    /// A magnet's fetch ended for good: a failure drops the magnet and says why. (A fetch
    /// that succeeded ended after [`MetadataFetched`] made it a torrent.)
    pub(super) fn magnet_ended(&mut self, ih: InfoHash, reason: &ExitReason) {
        if reason.is_abnormal() {
            self.magnets.remove(&ih);
            let _ = self.services.events.send(Event::Error {
                info_hash: ih,
                message: format!("fetching the magnet's metadata failed: {reason}"),
            });
        }
    }

    /// The summary `list` shows of a magnet.
    pub(super) fn magnet_summary(&self, ih: InfoHash, entry: &MagnetEntry) -> TorrentSummary {
        let state = if entry.paused {
            TorrentState::Paused
        } else {
            TorrentState::FetchingMetadata
        };
        TorrentSummary {
            labels: entry.labels.clone(),
            ..blank_summary(
                ih,
                entry.magnet.name(),
                state,
                0,
                entry.save_dir.as_ref().unwrap_or(&self.cfg.download_dir),
            )
        }
    }
}

/// What the control commands see of a magnet without metadata: its summary, when it was added,
/// and its fetch actor (none while paused), which knows its peers.
pub struct MagnetView {
    pub summary: TorrentSummary,
    pub added_at: i64,
    pub fetch: Option<Addr<MagnetFetch>>,
}

/// The magnet `0`, if there is one.
#[derive(Message)]
#[rtype(result = "Option<MagnetView>")]
pub struct GetMagnet(pub InfoHash);

impl Handler<GetMagnet> for Root {
    type Result = Option<MagnetView>;

    fn handle(&mut self, msg: GetMagnet, _: &mut Context<Self>) -> Self::Result {
        let entry = self.magnets.get(&msg.0)?;
        Some(MagnetView {
            summary: self.magnet_summary(msg.0, entry),
            added_at: entry.added_at,
            fetch: self.children.addr::<MagnetFetch>(&RootChild::Magnet(msg.0)),
        })
    }
}

/// An order to a magnet without metadata. `NotFound` if there is no such magnet.
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub struct MagnetOrder {
    pub info_hash: InfoHash,
    pub order: MagnetCommand,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MagnetCommand {
    /// Stop fetching (and keep the magnet, paused, across restarts).
    Pause,
    Resume,
    /// Ask its trackers for peers now.
    Reannounce,
    /// The user's labels, kept in its record and handed to the torrent it becomes.
    SetLabels(Vec<String>),
}

impl Handler<MagnetOrder> for Root {
    type Result = Result<(), EngineError>;

    fn handle(&mut self, msg: MagnetOrder, ctx: &mut Context<Self>) -> Self::Result {
        let ih = msg.info_hash;
        let Some(entry) = self.magnets.get_mut(&ih) else {
            return Err(EngineError::UnknownTorrent(ih));
        };
        match msg.order {
            MagnetCommand::Pause if !entry.paused => {
                entry.paused = true;
                let _ = self.children.terminate(&RootChild::Magnet(ih), ctx);
                self.save_magnet_record(ih);
            }
            MagnetCommand::Resume if entry.paused => {
                entry.paused = false;
                self.save_magnet_record(ih);
                self.start_magnet_fetch(ih, ctx)?;
            }
            MagnetCommand::Pause | MagnetCommand::Resume => {}
            MagnetCommand::SetLabels(labels) => {
                entry.labels = labels;
                self.save_magnet_record(ih);
            }
            MagnetCommand::Reannounce => {
                self.services
                    .announcer
                    .do_send(crate::services::announcer::Reannounce { info_hash: ih });
            }
        }
        Ok(())
    }
}

impl Handler<MetadataFetched> for Root {
    type Result = ();

    fn handle(&mut self, msg: MetadataFetched, ctx: &mut Context<Self>) {
        let ih = msg.meta.info_hash;
        let Some(entry) = self.magnets.remove(&ih) else {
            return;
        };
        let skip = select_only(&entry.magnet.select_only, msg.meta.info.files.len(), ih);
        let add = AddTorrent {
            meta: msg.meta,
            save_dir: entry.save_dir,
            paused: entry.paused,
            known_have: None,
            record: None,
            labels: entry.labels,
        };
        match self.add_torrent(add, false, ctx) {
            Ok(_) => {
                if let Some(d) = &self.torrents_dir {
                    StatePaths::of(d, ih).remove_magnet();
                }
                if let Some(t) = self
                    .children
                    .addr::<crate::torrent::Torrent>(&RootChild::Torrent(ih))
                {
                    // Before any peer: the torrent is still checking what is on disk, so no
                    // piece of a file left out is ever requested.
                    if !skip.is_empty() {
                        t.do_send(SetFilePriorities(skip));
                    }
                    t.do_send(PeersFound {
                        addrs: msg.peers,
                        source: PeerSource::Magnet,
                    });
                }
            }
            Err(e) => tracing::error!(info_hash = %ih, "adding the fetched torrent: {e}"),
        }
    }
}

/// BEP 53: the files a magnet's `so` leaves out, as priority changes (`skip`) for a torrent of
/// `files` files. Indices past the last file are ignored, as the BEP asks; a list that selects
/// no file of the torrent selects nothing out (the whole torrent downloads, with a warning).
fn select_only(so: &[u32], files: usize, ih: InfoHash) -> Vec<(u32, swarm_model::FilePriority)> {
    if so.is_empty() {
        return Vec::new();
    }
    if !so.iter().any(|&i| (i as usize) < files) {
        tracing::warn!(info_hash = %ih, files, "the magnet's `so` names no file of the torrent: all are downloaded");
        return Vec::new();
    }
    (0..files as u32)
        .filter(|i| so.binary_search(i).is_err())
        .map(|i| (i, swarm_model::FilePriority::Skip))
        .collect()
}

#[cfg(test)]
mod select_only_tests {
    use super::*;

    #[test]
    fn so_leaves_the_other_files_out() {
        let ih = InfoHash([7; 20]);
        let skip = |so: &[u32], n| {
            select_only(so, n, ih)
                .into_iter()
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        };
        assert_eq!(skip(&[], 4), Vec::<u32>::new(), "no `so`: everything");
        assert_eq!(skip(&[1, 3], 4), vec![0, 2]);
        assert_eq!(
            skip(&[0, 9], 3),
            vec![1, 2],
            "indices past the end are ignored"
        );
        assert_eq!(
            skip(&[5, 6], 3),
            Vec::<u32>::new(),
            "nothing valid: everything"
        );
    }
}
