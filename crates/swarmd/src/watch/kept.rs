//! For `on_added = "keep"`: the files already added, by name, size and mtime, kept in a small
//! JSON file in the state directory so a restart does not add them again. A file that is
//! replaced (new size or mtime) counts as new.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

/// What identifies one version of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stamp {
    pub len: u64,
    pub mtime_secs: i64,
    pub mtime_nanos: u32,
}

impl Stamp {
    pub fn of(meta: &std::fs::Metadata) -> Stamp {
        let (secs, nanos) = match meta.modified().map(|t| t.duration_since(UNIX_EPOCH)) {
            Ok(Ok(d)) => (d.as_secs() as i64, d.subsec_nanos()),
            // Before 1970 or no mtime at all: the size alone must do.
            _ => (0, 0),
        };
        Stamp {
            len: meta.len(),
            mtime_secs: secs,
            mtime_nanos: nanos,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct Entry {
    name: String,
    #[serde(flatten)]
    stamp: Stamp,
}

#[derive(Debug)]
pub struct Kept {
    file: PathBuf,
    entries: HashSet<Entry>,
}

impl Kept {
    /// Loads the list; a missing file is an empty list, a corrupt one is logged and reset.
    pub fn load(file: &Path) -> Kept {
        let entries = match std::fs::read(file) {
            Ok(bytes) => serde_json::from_slice::<Vec<Entry>>(&bytes).unwrap_or_else(|e| {
                tracing::warn!(file = %file.display(), error = %e, "ignoring a corrupt watch list");
                Vec::new()
            }),
            Err(_) => Vec::new(),
        };
        Kept {
            file: file.to_path_buf(),
            entries: entries.into_iter().collect(),
        }
    }

    pub fn contains(&self, name: &str, stamp: Stamp) -> bool {
        self.entries.contains(&Entry {
            name: name.to_owned(),
            stamp,
        })
    }

    pub fn insert(&mut self, name: &str, stamp: Stamp) {
        if self.entries.insert(Entry {
            name: name.to_owned(),
            stamp,
        }) {
            self.save();
        }
    }

    /// Forgets files that are gone, so the list does not grow forever.
    pub fn retain_names(&mut self, present: &HashSet<String>) {
        let before = self.entries.len();
        self.entries.retain(|e| present.contains(&e.name));
        if self.entries.len() != before {
            self.save();
        }
    }

    /// Written to a temporary file and renamed over the old one, so a crash leaves one or the other.
    fn save(&self) {
        let mut list: Vec<&Entry> = self.entries.iter().collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        let tmp = self.file.with_extension("json.tmp");
        let result = (|| -> std::io::Result<()> {
            if let Some(dir) = self.file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(&list).map_err(std::io::Error::other)?)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.file)
        })();
        if let Err(e) = result {
            tracing::warn!(file = %self.file.display(), error = %e, "cannot save the watch list");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists_and_prunes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state/watch-kept.json");
        let s = Stamp {
            len: 5,
            mtime_secs: 10,
            mtime_nanos: 3,
        };
        let mut k = Kept::load(&file);
        assert!(!k.contains("a.torrent", s));
        k.insert("a.torrent", s);
        k.insert("b.torrent", s);
        let mut k = Kept::load(&file);
        assert!(k.contains("a.torrent", s));
        assert!(!k.contains("a.torrent", Stamp { len: 6, ..s }));
        k.retain_names(&["b.torrent".to_owned()].into_iter().collect());
        let k = Kept::load(&file);
        assert!(!k.contains("a.torrent", s) && k.contains("b.torrent", s));
        std::fs::write(&file, b"{corrupt").unwrap();
        assert!(!Kept::load(&file).contains("b.torrent", s));
    }
}
