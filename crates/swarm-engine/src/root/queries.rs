//! The root's read side: what the control commands ask of the registry, answered without
//! changing anything — torrents' addresses, `list` (joined from the status each torrent
//! publishes, so a thousand torrents are one message, not a thousand), names for resolving an
//! info-hash prefix, the session's counters, and a torrent's trackers.

use std::time::Duration;

use actix::prelude::*;
use swarm_model::RestartCounts;
use swarm_wire::InfoHash;

use super::{Root, RootChild};
use crate::torrent::shared::{Published, StatusCell};
use crate::torrent::Torrent;

#[derive(Message)]
#[rtype(result = "Option<Addr<Torrent>>")]
pub struct GetTorrent(pub InfoHash);

impl Handler<GetTorrent> for Root {
    type Result = Option<Addr<Torrent>>;

    fn handle(&mut self, msg: GetTorrent, _: &mut Context<Self>) -> Self::Result {
        self.children.addr::<Torrent>(&RootChild::Torrent(msg.0))
    }
}

#[derive(Message)]
#[rtype(result = "Vec<(InfoHash, Addr<Torrent>)>")]
pub struct ListTorrents;

impl Handler<ListTorrents> for Root {
    type Result = MessageResult<ListTorrents>;

    fn handle(&mut self, _: ListTorrents, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.torrents
                .keys()
                .filter_map(|ih| {
                    Some((
                        *ih,
                        self.children.addr::<Torrent>(&RootChild::Torrent(*ih))?,
                    ))
                })
                .collect(),
        )
    }
}

impl Root {
    /// `f` on every torrent's published status (see [`StatusCell`]), magnets waiting for
    /// metadata included, in the order of their names.
    fn each_published(&self, mut f: impl FnMut(&Published)) {
        use std::borrow::Cow;
        enum Source<'a> {
            Torrent(&'a StatusCell),
            Magnet(Published),
        }
        let mut named: Vec<(Cow<str>, Source)> =
            Vec::with_capacity(self.torrents.len() + self.magnets.len());
        named.extend(self.torrents.values().map(|e| {
            let name = Cow::Borrowed(e.shared.storage.info.name.as_str());
            (name, Source::Torrent(&e.shared.status))
        }));
        for (ih, e) in &self.magnets {
            let summary = self.magnet_summary(*ih, e);
            named.push((
                Cow::Owned(summary.name.clone()),
                Source::Magnet(Published::new(&summary, Default::default())),
            ));
        }
        named.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (_, source) in &named {
            match source {
                Source::Torrent(cell) => cell.with(&mut f),
                Source::Magnet(p) => f(p),
            }
        }
    }
}

/// Every torrent's published status, by name: what `stats` adds up, without a message to each
/// torrent.
#[derive(Message)]
#[rtype(result = "Vec<Published>")]
pub struct ListPublished;

impl Handler<ListPublished> for Root {
    type Result = MessageResult<ListPublished>;

    fn handle(&mut self, _: ListPublished, _: &mut Context<Self>) -> Self::Result {
        let mut out = Vec::with_capacity(self.torrents.len() + self.magnets.len());
        self.each_published(|p| out.push(p.clone()));
        MessageResult(out)
    }
}

/// Every torrent's info-hash and name (a magnet's display name, or its info-hash in hex): what
/// resolving an info-hash prefix needs, without reading any summary.
#[derive(Message)]
#[rtype(result = "Vec<(InfoHash, String)>")]
pub struct ListNames;

impl Handler<ListNames> for Root {
    type Result = MessageResult<ListNames>;

    fn handle(&mut self, _: ListNames, _: &mut Context<Self>) -> Self::Result {
        let torrents = self
            .torrents
            .iter()
            .map(|(ih, e)| (*ih, e.shared.storage.info.name.clone()));
        let magnets = self.magnets.iter().map(|(ih, e)| (*ih, e.magnet.name()));
        MessageResult(torrents.chain(magnets).collect())
    }
}

/// `list`'s answer: every torrent's published summary, by name, as one JSON array joined from
/// the JSON the torrents keep (nothing is serialized here).
#[derive(Message)]
#[rtype(result = "String")]
pub struct ListJson;

impl Handler<ListJson> for Root {
    type Result = MessageResult<ListJson>;

    fn handle(&mut self, _: ListJson, _: &mut Context<Self>) -> Self::Result {
        // ~280 bytes a torrent; a little more is cheaper than growing the buffer.
        let mut out = String::with_capacity(300 * (self.torrents.len() + self.magnets.len()) + 2);
        out.push('[');
        self.each_published(|p| {
            if out.len() > 1 {
                out.push(',');
            }
            out.push_str(&p.json);
        });
        out.push(']');
        MessageResult(out)
    }
}

pub struct RootStats {
    pub restarts: RestartCounts,
    /// The DHT node, if it runs.
    pub dht: Option<swarm_dht::DhtHandle>,
    pub uptime: Duration,
    pub listen_port: u16,
    pub disk_jobs_panicked: u64,
    pub disk_queue: usize,
    pub announcer: Option<Addr<crate::services::announcer::Announcer>>,
}

#[derive(Message)]
#[rtype(result = "RootStats")]
pub struct GetRootStats;

impl Handler<GetRootStats> for Root {
    type Result = MessageResult<GetRootStats>;

    fn handle(&mut self, _: GetRootStats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(RootStats {
            restarts: self.restarts.clone(),
            dht: self.dht.get(),
            uptime: self.started_at.elapsed(),
            listen_port: self.listen_port,
            disk_jobs_panicked: self.disk.jobs_panicked(),
            disk_queue: self.disk.queued(),
            announcer: self.services.announcer.get(),
        })
    }
}

#[derive(Message)]
#[rtype(result = "Vec<swarm_model::TrackerInfo>")]
pub struct GetTrackers(pub InfoHash);

impl Handler<GetTrackers> for Root {
    type Result = ResponseFuture<Vec<swarm_model::TrackerInfo>>;

    fn handle(&mut self, msg: GetTrackers, _: &mut Context<Self>) -> Self::Result {
        let announcer = self.services.announcer.get();
        let torrent = self.children.addr::<Torrent>(&RootChild::Torrent(msg.0));
        Box::pin(async move {
            let tracked = match announcer {
                Some(a) => a
                    .send(crate::services::announcer::GetTrackers { info_hash: msg.0 })
                    .await
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            if !tracked.is_empty() {
                return tracked;
            }
            // Not in the announcer's list (paused, checking, failed): the torrent's own trackers,
            // not contacted.
            let tiers = match torrent {
                Some(t) => t
                    .send(crate::torrent::messages::GetTrackerTiers)
                    .await
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            tiers
                .into_iter()
                .enumerate()
                .flat_map(|(tier, urls)| {
                    urls.into_iter().map(move |url| swarm_model::TrackerInfo {
                        url,
                        tier: tier as u32,
                        status: "not_contacted".into(),
                        message: None,
                        seeders: None,
                        leechers: None,
                        peers_received: 0,
                        next_announce_secs: None,
                    })
                })
                .collect()
        })
    }
}
