//! # DiskPool — global service
//!
//! Owns: a few worker threads, the open-file LRU ([`FileCache`]) and a small read cache of whole
//! pieces for uploads. Takes jobs from any actor: verify-and-write a complete piece, read a block
//! to upload, check a piece of existing data, place skipped files (the parts file), delete a
//! torrent's files, move them to another directory one file at a time (`storage/moving.rs`).
//! Replies through a oneshot
//! channel that the asking actor awaits.
//!
//! Why threads of our own and not actix's `SyncArbiter`: a panicking `SyncArbiter` worker is never
//! replaced (ARCHITECTURE §7). Here every job runs under `catch_unwind`: a panic fails that job
//! (its reply channel is dropped, the asker sees "disk worker crashed") and the thread lives on.
//! Hashing and disk I/O never run on an event-loop thread; SHA-1 of a piece happens once, in
//! memory, before its positional writes (in parts of at most 32 KiB: `storage::WRITE_PART`).

use std::collections::HashMap;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use bytes::{Bytes, BytesMut};
use tokio::sync::oneshot;

use crate::file_cache::FileCache;
use crate::hash::piece_hash;
use crate::storage::moving::{MoveFailed, MoveStep};
use crate::storage::Storage;

/// What a move job does (see `storage/moving.rs`).
#[derive(Debug)]
pub enum MoveOrder {
    /// Plan a move to this directory (or go on with the one to it under way).
    Start(std::path::PathBuf),
    /// Move the next file, or finish.
    Step,
    /// Point the torrent at this directory without moving anything.
    Repoint(std::path::PathBuf),
}

/// Outcome of a verify-and-write job.
#[derive(Debug)]
pub enum WriteOutcome {
    /// Hash matched and the piece is on disk.
    Written,
    /// Hash mismatch: nothing was written.
    HashMismatch,
    /// Hash matched but the write failed (e.g. no space left on device).
    Failed(io::Error),
    /// The worker panicked on this job (its reply was dropped): the piece is lost, the pool
    /// lives on.
    Crashed,
}

enum Job {
    Write {
        storage: Arc<Storage>,
        index: u32,
        data: Vec<u8>,
        reply: oneshot::Sender<(WriteOutcome, Vec<u8>)>,
    },
    Read {
        storage: Arc<Storage>,
        index: u32,
        begin: u32,
        len: u32,
        reply: oneshot::Sender<io::Result<Bytes>>,
    },
    Check {
        storage: Arc<Storage>,
        index: u32,
        reply: oneshot::Sender<bool>,
    },
    Delete {
        storage: Arc<Storage>,
        reply: oneshot::Sender<io::Result<()>>,
    },
    SetSkipped {
        storage: Arc<Storage>,
        skipped: Vec<bool>,
        reply: oneshot::Sender<io::Result<()>>,
    },
    Move {
        storage: Arc<Storage>,
        order: MoveOrder,
        reply: oneshot::Sender<Result<Option<MoveStep>, MoveFailed>>,
    },
}

/// Handle to the pool; clone freely.
#[derive(Clone)]
pub struct DiskPool {
    tx: crossbeam_channel::Sender<Job>,
    shared: Arc<Shared>,
}

struct Shared {
    files: FileCache,
    cache: Mutex<ReadCache>,
    jobs_panicked: AtomicU64,
}

/// Whole pieces recently read for uploading, keyed by (storage id, piece). A peer asking for
/// block after block of a piece costs one read.
struct ReadCache {
    pieces: HashMap<(u64, u32), (Bytes, u64)>,
    bytes: usize,
    max_bytes: usize,
    clock: u64,
    /// Buffers of evicted pieces that no peer held any more, for the next reads: a new 256 KiB
    /// buffer is zeroed (and its pages faulted in) only for the read to overwrite it, which was
    /// a tenth of a seeder's disk-thread time.
    spare: Vec<BytesMut>,
}

/// Evicted piece buffers kept for reuse (a read and an eviction come in pairs while seeding).
const SPARE_READ_BUFFERS: usize = 2;

impl ReadCache {
    fn get(&mut self, key: (u64, u32)) -> Option<Bytes> {
        self.clock += 1;
        let now = self.clock;
        self.pieces.get_mut(&key).map(|(b, t)| {
            *t = now;
            b.clone()
        })
    }

    fn put(&mut self, key: (u64, u32), piece: Bytes) {
        if piece.len() > self.max_bytes {
            return;
        }
        while self.bytes + piece.len() > self.max_bytes {
            let Some(oldest) = self
                .pieces
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some((b, _)) = self.pieces.remove(&oldest) {
                self.bytes -= b.len();
                self.recycle(b);
            }
        }
        self.clock += 1;
        self.bytes += piece.len();
        if let Some((old, _)) = self.pieces.insert(key, (piece, self.clock)) {
            self.bytes -= old.len();
            self.recycle(old);
        }
    }

    fn recycle(&mut self, piece: Bytes) {
        if self.spare.len() < SPARE_READ_BUFFERS {
            if let Ok(buf) = piece.try_into_mut() {
                self.spare.push(buf);
            }
        }
    }

    /// A buffer of `len` bytes to read a piece into: a recycled one when there is one (its old
    /// contents are overwritten by the read), else a new, zeroed one.
    fn buffer(&mut self, len: usize) -> BytesMut {
        match self.spare.pop() {
            Some(mut buf) => {
                buf.resize(len, 0);
                buf
            }
            None => BytesMut::zeroed(len),
        }
    }

    fn forget(&mut self, storage_id: u64) {
        self.pieces.retain(|(id, _), _| *id != storage_id);
        self.bytes = self.pieces.values().map(|(b, _)| b.len()).sum();
    }
}

fn crashed() -> io::Error {
    io::Error::other("disk worker crashed")
}

impl DiskPool {
    /// Starts `threads` workers. `read_cache_bytes` bounds the upload read cache.
    pub fn start(threads: usize, max_open_files: usize, read_cache_bytes: usize) -> DiskPool {
        // Bounded: a producer that outruns the disk waits instead of piling up piece buffers.
        let (tx, rx) = crossbeam_channel::bounded::<Job>(256);
        let shared = Arc::new(Shared {
            files: FileCache::new(max_open_files),
            cache: Mutex::new(ReadCache {
                pieces: HashMap::new(),
                bytes: 0,
                max_bytes: read_cache_bytes,
                clock: 0,
                spare: Vec::new(),
            }),
            jobs_panicked: AtomicU64::new(0),
        });
        for n in 0..threads.max(1) {
            let rx = rx.clone();
            let shared = shared.clone();
            thread::Builder::new()
                .name(format!("swarmd-disk-{n}"))
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        if catch_unwind(AssertUnwindSafe(|| shared.run(job))).is_err() {
                            shared.jobs_panicked.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(
                                "disk job panicked; the job failed, the worker lives on"
                            );
                        }
                    }
                })
                .expect("spawning a disk thread");
        }
        DiskPool { tx, shared }
    }

    fn submit(&self, job: Job) {
        // The channel only closes when every worker is gone, which never happens while we hold
        // `tx`; if it ever did, the dropped reply tells the asker.
        let _ = self.tx.send(job);
    }

    /// Verifies `data` against the piece's hash and writes it. The buffer comes back with the
    /// outcome (to be reused: a fresh 256 KiB buffer per piece costs an mmap and page faults),
    /// unless the worker crashed.
    pub async fn write_piece(
        &self,
        storage: Arc<Storage>,
        index: u32,
        data: Vec<u8>,
    ) -> (WriteOutcome, Option<Vec<u8>>) {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Write {
            storage,
            index,
            data,
            reply,
        });
        match rx.await {
            Ok((outcome, buf)) => (outcome, Some(buf)),
            Err(_) => (WriteOutcome::Crashed, None),
        }
    }

    /// Reads one block for uploading.
    pub async fn read_block(
        &self,
        storage: Arc<Storage>,
        index: u32,
        begin: u32,
        len: u32,
    ) -> io::Result<Bytes> {
        if let Some(b) = self.cached_block(storage.id, index, begin, len) {
            return Ok(b);
        }
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Read {
            storage,
            index,
            begin,
            len,
            reply,
        });
        rx.await.unwrap_or_else(|_| Err(crashed()))
    }

    /// A block from the read cache, without a thread hop.
    pub fn cached_block(&self, storage_id: u64, index: u32, begin: u32, len: u32) -> Option<Bytes> {
        let piece = self
            .shared
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get((storage_id, index))?;
        let end = begin.checked_add(len)? as usize;
        (end <= piece.len()).then(|| piece.slice(begin as usize..end))
    }

    /// Hashes piece `index` from disk: true when present and correct.
    pub async fn check_piece(&self, storage: Arc<Storage>, index: u32) -> bool {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Check {
            storage,
            index,
            reply,
        });
        rx.await.unwrap_or(false)
    }

    pub async fn delete_files(&self, storage: Arc<Storage>) -> io::Result<()> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Delete { storage, reply });
        rx.await.unwrap_or_else(|_| Err(crashed()))
    }

    /// Tells the storage which files are skipped ([`Storage::set_skipped`]): bytes of files
    /// un-skipped move out of the parts file here, off the torrent's thread.
    pub async fn set_skipped(&self, storage: Arc<Storage>, skipped: Vec<bool>) -> io::Result<()> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::SetSkipped {
            storage,
            skipped,
            reply,
        });
        rx.await.unwrap_or_else(|_| Err(crashed()))
    }

    /// One order of a move of the torrent's data: `Some(step)` for [`MoveOrder::Step`].
    pub async fn relocate(
        &self,
        storage: Arc<Storage>,
        order: MoveOrder,
    ) -> Result<Option<MoveStep>, MoveFailed> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Move {
            storage,
            order,
            reply,
        });
        rx.await.unwrap_or_else(|_| Err(MoveFailed::Io(crashed())))
    }

    /// Drops cached handles and pieces of a torrent that goes away.
    pub fn forget(&self, storage_id: u64) {
        self.shared.files.forget(storage_id);
        self.shared
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget(storage_id);
    }

    /// Jobs waiting for a disk thread (read at a metrics scrape: the channel's length, no lock).
    pub fn queued(&self) -> usize {
        self.tx.len()
    }

    pub fn jobs_panicked(&self) -> u64 {
        self.shared.jobs_panicked.load(Ordering::Relaxed)
    }
}

impl Shared {
    fn run(&self, job: Job) {
        match job {
            Job::Write {
                storage,
                index,
                data,
                reply,
            } => {
                crate::fault::maybe_panic("disk.write");
                let expected = storage.info.pieces.get(index as usize).copied();
                let outcome = if expected != Some(piece_hash(&data)) {
                    WriteOutcome::HashMismatch
                } else {
                    match storage.write_piece(&self.files, index, &data) {
                        Ok(()) => WriteOutcome::Written,
                        Err(e) => WriteOutcome::Failed(e),
                    }
                };
                let _ = reply.send((outcome, data));
            }
            Job::Read {
                storage,
                index,
                begin,
                len,
                reply,
            } => {
                let _ = reply.send(self.read(&storage, index, begin, len));
            }
            Job::Check {
                storage,
                index,
                reply,
            } => {
                let ok = storage.piece_present(index) && {
                    let mut buf = vec![0u8; storage.info.piece_len(index) as usize];
                    storage.read(&self.files, index, 0, &mut buf).is_ok()
                        && storage.info.pieces.get(index as usize) == Some(&piece_hash(&buf))
                };
                let _ = reply.send(ok);
            }
            Job::Delete { storage, reply } => {
                self.files.forget(storage.id);
                let _ = reply.send(storage.delete_files());
            }
            Job::SetSkipped {
                storage,
                skipped,
                reply,
            } => {
                let _ = reply.send(storage.set_skipped(&skipped));
            }
            Job::Move {
                storage,
                order,
                reply,
            } => {
                let files = &self.files;
                let done = match order {
                    MoveOrder::Start(to) => storage.start_move(&to).map(|()| None),
                    MoveOrder::Step => storage.move_step(files).map(Some),
                    MoveOrder::Repoint(to) => storage.repoint(files, &to).map(|()| None),
                };
                let _ = reply.send(done);
            }
        }
    }

    fn read(&self, storage: &Storage, index: u32, begin: u32, len: u32) -> io::Result<Bytes> {
        let piece_len = storage.info.piece_len(index);
        let end = begin
            .checked_add(len)
            .filter(|&e| e <= piece_len && index < storage.info.num_pieces());
        let Some(end) = end else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "block outside the piece",
            ));
        };
        let key = (storage.id, index);
        if let Some(p) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
        {
            return Ok(p.slice(begin as usize..end as usize));
        }
        let mut buf = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .buffer(piece_len as usize);
        storage.read(&self.files, index, 0, &mut buf)?;
        let piece = buf.freeze();
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(key, piece.clone());
        Ok(piece.slice(begin as usize..end as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(max_bytes: usize) -> ReadCache {
        ReadCache {
            pieces: HashMap::new(),
            bytes: 0,
            max_bytes,
            clock: 0,
            spare: Vec::new(),
        }
    }

    /// An evicted piece that nobody holds any more lends its buffer to the next read; one that a
    /// peer still holds a block of is left alone.
    #[test]
    fn evicted_pieces_lend_their_buffers_to_the_next_reads() {
        let mut c = cache(2 * 100);
        let a = c.buffer(100).freeze();
        let a_ptr = a.as_ptr();
        c.put((1, 0), a);
        let b = c.buffer(100).freeze();
        let held = b.slice(10..20);
        c.put((1, 1), b);
        // Evicts piece 0 (least recently used), which nobody holds: its buffer becomes spare.
        let fresh = c.buffer(100).freeze();
        c.put((1, 2), fresh);
        assert_eq!(c.spare.len(), 1);
        let reused = c.buffer(60);
        assert_eq!(reused.as_ptr(), a_ptr, "the evicted buffer is reused");
        assert_eq!(reused.len(), 60);
        // Evicts piece 1, of which a block is still held: nothing to reuse, the block intact.
        c.put((1, 3), reused.freeze());
        assert!(c.spare.is_empty());
        assert!(c.get((1, 1)).is_none());
        assert_eq!(held.len(), 10);
        assert!(c.bytes <= 200);
    }
}
