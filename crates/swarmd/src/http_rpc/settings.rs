//! A torrent's own settings as `torrent-add` and `torrent-set` carry them: its `labels` and
//! its limits (`downloadLimit`/`Limited`, `uploadLimit`/`Limited`, `peer-limit`), read and
//! checked here, then handed to the engine as the control socket's `torrent.set_labels` and
//! `torrent.set_limits` do. Pure: no engine, no I/O.

use serde_json::Value;
use swarm_control::TorrentLimits;

use super::rpc::{truthy, Args, Failure, SPEED_UNIT};

/// The `labels` of `torrent-add` and `torrent-set` (transmission 3.00+): a list of strings,
/// normalized as the control socket does; `None` when not given.
pub(super) fn labels_arg(method: &str, args: &Args) -> Result<Option<Vec<String>>, Failure> {
    let Some(v) = args.get("labels") else {
        return Ok(None);
    };
    let list: Option<Vec<&str>> = v
        .as_array()
        .and_then(|a| a.iter().map(Value::as_str).collect());
    let list = list
        .ok_or_else(|| Failure::new(format!("{method}: labels: {v} is not a list of strings")))?;
    swarm_model::normalize_labels(&list)
        .map(Some)
        .map_err(|e| Failure::new(format!("{method}: labels: {e}")))
}

/// A torrent's own limits as `torrent-set` changes them. Transmission keeps a speed and its
/// on/off switch apart; swarmd keeps the speed only while it is on: `downloadLimited: false`
/// lifts the limit, and a `downloadLimit` counts once the limit is on (in this request or
/// before).
#[derive(Default)]
pub(super) struct LimitChanges {
    /// (speed in bytes/s, on) for down and up.
    down: (Option<u64>, Option<bool>),
    up: (Option<u64>, Option<bool>),
    peers: Option<u32>,
    priority: Option<swarm_control::BandwidthPriority>,
}

impl LimitChanges {
    pub(super) const KEYS: [&'static str; 6] = [
        "downloadLimit",
        "downloadLimited",
        "uploadLimit",
        "uploadLimited",
        "peer-limit",
        "bandwidthPriority",
    ];

    /// The keys `torrent-add` takes (transmission's: no rates on add).
    pub(super) const ADD_KEYS: [&'static str; 2] = ["peer-limit", "bandwidthPriority"];

    /// `torrent-set`'s limit keys.
    pub(super) fn from_args(args: &Args) -> Result<Self, Failure> {
        Self::read("torrent-set", args, &Self::KEYS)
    }

    /// `torrent-add`'s: the peer limit and the bandwidth priority, to hold from the start.
    pub(super) fn from_add_args(args: &Args) -> Result<Self, Failure> {
        Self::read("torrent-add", args, &Self::ADD_KEYS)
    }

    /// The changes `args` asks for among `keys`; errors name `method`.
    fn read(method: &str, args: &Args, keys: &[&str]) -> Result<Self, Failure> {
        let get = |key: &str| keys.contains(&key).then(|| args.get(key)).flatten();
        let number = |key: &str| -> Result<Option<u64>, Failure> {
            match get(key) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| Failure::new(format!("{method}: {key}: {v} is not a number"))),
            }
        };
        let speed = |key: &str| -> Result<Option<u64>, Failure> {
            let Some(kb) = number(key)? else {
                return Ok(None);
            };
            let bytes = kb.saturating_mul(SPEED_UNIT);
            swarm_control::check_rate_limit(key, bytes)
                .map_err(|e| Failure::new(format!("{method}: {e}")))?;
            Ok(Some(bytes))
        };
        let peers = match number("peer-limit")? {
            Some(n) if n == 0 || n > u64::from(swarm_control::MAX_TORRENT_PEERS) => {
                return Err(Failure::new(format!(
                    "{method}: peer-limit {n} is not between 1 and {}",
                    swarm_control::MAX_TORRENT_PEERS
                )))
            }
            n => n.map(|n| n as u32),
        };
        let priority = match get("bandwidthPriority") {
            None => None,
            Some(v) => Some(
                v.as_i64()
                    .and_then(swarm_control::BandwidthPriority::from_transmission)
                    .ok_or_else(|| {
                        Failure::new(format!(
                            "{method}: bandwidthPriority {v} is not -1 (low), 0 (normal) or 1 (high)"
                        ))
                    })?,
            ),
        };
        Ok(LimitChanges {
            priority,
            down: (speed("downloadLimit")?, get("downloadLimited").map(truthy)),
            up: (speed("uploadLimit")?, get("uploadLimited").map(truthy)),
            peers,
        })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.down == (None, None)
            && self.up == (None, None)
            && self.peers.is_none()
            && self.priority.is_none()
    }

    pub(super) fn apply_to(&self, current: TorrentLimits) -> Result<TorrentLimits, Failure> {
        let one = |key: &str, (speed, on): (Option<u64>, Option<bool>), now: Option<u64>| {
            match (on.unwrap_or(now.is_some()), speed.or(now)) {
                (false, _) => Ok(None),
                // A speed of 0 is transmission's "nothing passes"; swarmd has no such limit.
                (true, Some(s)) if s > 0 => Ok(Some(s)),
                (true, _) => Err(Failure::new(format!(
                    "{key}Limited is on without a {key}Limit above 0: give both"
                ))),
            }
        };
        Ok(TorrentLimits {
            download: one("download", self.down, current.download)?,
            upload: one("upload", self.up, current.upload)?,
            max_peers: self.peers.or(current.max_peers),
            upload_slots: current.upload_slots,
            priority: self.priority.unwrap_or(current.priority),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Args {
        serde_json::from_value(v).unwrap()
    }

    fn changes(v: Value) -> LimitChanges {
        LimitChanges::from_args(&args(v)).unwrap_or_else(|f| panic!("{}", f.message))
    }

    #[test]
    fn speeds_count_while_their_limit_is_on() {
        let none = TorrentLimits::default();
        let on = changes(json!({"uploadLimit": 1000, "uploadLimited": true, "peer-limit": 30}))
            .apply_to(none)
            .unwrap();
        assert_eq!(on.upload, Some(1_000_000));
        assert_eq!(on.max_peers, Some(30));
        assert_eq!(on.download, None);
        // A new speed for a limit that is on; then off, which forgets it.
        let faster = changes(json!({"uploadLimit": 2000})).apply_to(on).unwrap();
        assert_eq!(faster.upload, Some(2_000_000));
        let off = changes(json!({"uploadLimited": false}))
            .apply_to(faster)
            .unwrap();
        assert_eq!(off.upload, None);
        assert_eq!(off.max_peers, Some(30), "untouched");
        // A speed alone for a limit that is off stays off, as in transmission.
        let alone = changes(json!({"downloadLimit": 50}))
            .apply_to(none)
            .unwrap();
        assert_eq!(alone.download, None);
        let err = changes(json!({"downloadLimited": true}))
            .apply_to(none)
            .unwrap_err();
        assert!(err.message.contains("downloadLimit"), "{}", err.message);
        let high = changes(json!({"bandwidthPriority": 1}))
            .apply_to(off)
            .unwrap();
        assert_eq!(high.priority, swarm_control::BandwidthPriority::High);
        assert_eq!(high.max_peers, Some(30), "untouched");
    }

    /// torrent-add takes the peer limit and the priority, as transmission's, and no rates.
    #[test]
    fn torrent_add_takes_its_two_keys() {
        let add = |v: Value| LimitChanges::from_add_args(&args(v));
        let ok = add(json!({"peer-limit": 9, "bandwidthPriority": -1, "uploadLimit": 5}))
            .unwrap_or_else(|f| panic!("{}", f.message));
        let limits = ok.apply_to(TorrentLimits::default()).unwrap();
        assert_eq!(limits.max_peers, Some(9));
        assert_eq!(limits.priority, swarm_control::BandwidthPriority::Low);
        assert_eq!(limits.upload, None, "not a torrent-add key");
        assert!(add(json!({"uploadLimit": 5, "uploadLimited": true}))
            .unwrap()
            .is_empty());
        let err = add(json!({"peer-limit": 0})).err().unwrap().message;
        assert!(err.starts_with("torrent-add: peer-limit 0"), "{err}");
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        for (v, says) in [
            (json!({"peer-limit": 0}), "peer-limit 0"),
            (json!({"uploadLimit": "fast"}), "uploadLimit"),
            (json!({"downloadLimit": 2_000_000_000_000u64}), "download"),
            (json!({"bandwidthPriority": 2}), "bandwidthPriority 2"),
        ] {
            let err = match LimitChanges::from_args(&args(v.clone())) {
                Err(f) => f.message,
                Ok(_) => panic!("{v} accepted"),
            };
            assert!(err.contains(says), "{v}: {err}");
        }
        let labels = |v: Value| labels_arg("torrent-set", &args(json!({ "labels": v })));
        assert_eq!(
            labels(json!(["tv", " tv", "hd"])).unwrap(),
            Some(vec!["tv".into(), "hd".into()])
        );
        assert!(labels(json!("tv"))
            .unwrap_err()
            .message
            .contains("not a list"));
        assert!(labels(json!(["a,b"]))
            .unwrap_err()
            .message
            .contains("comma"));
    }
}
