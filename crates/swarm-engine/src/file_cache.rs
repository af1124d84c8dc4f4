//! An LRU of open files shared by the disk-pool threads, so that a torrent with thousands of files
//! (or a thousand torrents) does not hold thousands of descriptors, and a hot file is not reopened
//! for every block.
//!
//! Keyed by `(storage id, file index)` and told how to open a file on a miss: it knows nothing
//! of torrents or paths, and the storage that asks it is the only one that knows how to open.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::sync::{Arc, Mutex};

struct Entry {
    file: Arc<File>,
    writable: bool,
    last_use: u64,
}

pub struct FileCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

struct Inner {
    files: HashMap<(u64, usize), Entry>,
    clock: u64,
}

impl FileCache {
    pub fn new(capacity: usize) -> Self {
        FileCache {
            inner: Mutex::new(Inner {
                files: HashMap::new(),
                clock: 0,
            }),
            capacity: capacity.max(1),
        }
    }

    /// The open handle of `key`, `(storage id, file index)`; on a miss (or a read-only handle
    /// when `write` is asked), `open` opens it.
    pub fn get(
        &self,
        key: (u64, usize),
        write: bool,
        open: impl FnOnce() -> io::Result<File>,
    ) -> io::Result<Arc<File>> {
        {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            inner.clock += 1;
            let now = inner.clock;
            if let Some(e) = inner.files.get_mut(&key) {
                if e.writable || !write {
                    e.last_use = now;
                    return Ok(e.file.clone());
                }
            }
        }
        // Open outside the lock: opening can be slow (network filesystems, directory creation).
        let file = Arc::new(open()?);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.clock += 1;
        let now = inner.clock;
        if inner.files.len() >= self.capacity && !inner.files.contains_key(&key) {
            if let Some(oldest) = inner
                .files
                .iter()
                .min_by_key(|(_, e)| e.last_use)
                .map(|(k, _)| *k)
            {
                inner.files.remove(&oldest);
            }
        }
        inner.files.insert(
            key,
            Entry {
                file: file.clone(),
                writable: write,
                last_use: now,
            },
        );
        Ok(file)
    }

    /// Closes every file of one torrent (before deleting or moving its data).
    pub fn forget(&self, storage_id: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.files.retain(|(id, _), _| *id != storage_id);
    }

    /// Closes one file (a move put it somewhere else).
    pub fn forget_file(&self, key: (u64, usize)) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.files.remove(&key);
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .files
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
