//! The control socket file: created with the configured mode and group, a stale file left by a
//! crashed daemon replaced, a live daemon's socket never touched, and removed again on shutdown
//! (only if it is still the file this daemon created).

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("another swarmd is listening on {}", path.display())]
    AlreadyRunning { path: PathBuf },
    #[error("{} exists and is not a socket; refusing to replace it", path.display())]
    NotASocket { path: PathBuf },
    #[error("cannot create the socket directory {}: {source}", dir.display())]
    Dir { dir: PathBuf, source: io::Error },
    #[error("the socket directory {} belongs to uid {owner}, not to this daemon (uid {uid})", dir.display())]
    DirOwner { dir: PathBuf, owner: u32, uid: u32 },
    #[error("cannot remove the stale socket {}: {source}", path.display())]
    RemoveStale { path: PathBuf, source: io::Error },
    #[error("cannot bind the control socket {}: {source}", path.display())]
    Bind { path: PathBuf, source: io::Error },
    #[error("cannot set mode {mode:04o} on {}: {source}", path.display())]
    Mode {
        path: PathBuf,
        mode: u32,
        source: io::Error,
    },
    #[error("cannot give {} to group {group}: {source}", path.display())]
    Group {
        path: PathBuf,
        group: u32,
        source: io::Error,
    },
}

/// A bound control socket. Dropping it removes the socket file if it is still ours.
pub struct BoundSocket {
    pub listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the file we created, to tell it from one a later daemon made.
    identity: (u64, u64),
}

impl BoundSocket {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for BoundSocket {
    fn drop(&mut self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.identity {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// Binds `path` with permissions `mode` and, when given, group `gid`.
///
/// A private directory we create ourselves (the `/tmp/swarmd-UID` fallback) is made 0700 and must
/// belong to us, so another user cannot plant a socket for our clients there.
pub fn bind(path: &Path, mode: u32, gid: Option<u32>) -> Result<BoundSocket, SocketError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        prepare_dir(dir)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => {
                return Err(SocketError::AlreadyRunning {
                    path: path.to_path_buf(),
                })
            }
            Err(_) => {
                tracing::info!(socket = %path.display(), "replacing a stale control socket");
                std::fs::remove_file(path).map_err(|source| SocketError::RemoveStale {
                    path: path.to_path_buf(),
                    source,
                })?;
            }
        },
        Ok(_) => {
            return Err(SocketError::NotASocket {
                path: path.to_path_buf(),
            })
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(path).map_err(|source| SocketError::Bind {
        path: path.to_path_buf(),
        source,
    })?;
    // From here on the guard removes the file if a later step fails.
    let meta = std::fs::symlink_metadata(path).map_err(|source| SocketError::Bind {
        path: path.to_path_buf(),
        source,
    })?;
    let bound = BoundSocket {
        listener,
        path: path.to_path_buf(),
        identity: (meta.dev(), meta.ino()),
    };
    if let Some(group) = gid {
        std::os::unix::fs::chown(path, None, Some(group)).map_err(|source| SocketError::Group {
            path: path.to_path_buf(),
            group,
            source,
        })?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        SocketError::Mode {
            path: path.to_path_buf(),
            mode,
            source,
        }
    })?;
    Ok(bound)
}

fn prepare_dir(dir: &Path) -> Result<(), SocketError> {
    let private = dir.starts_with("/tmp");
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(if private { 0o700 } else { 0o755 })
            .create(dir)
            .map_err(|source| SocketError::Dir {
                dir: dir.to_path_buf(),
                source,
            })?;
    }
    if private {
        let meta = std::fs::symlink_metadata(dir).map_err(|source| SocketError::Dir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let uid = swarm_control::paths::current_uid();
        if meta.uid() != uid || !meta.is_dir() {
            return Err(SocketError::DirOwner {
                dir: dir.to_path_buf(),
                owner: meta.uid(),
                uid,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_with_mode_and_removes_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/swarmd.sock");
        let bound = bind(&path, 0o660, None).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
        drop(bound);
        assert!(!path.exists());
    }

    #[test]
    fn live_socket_is_refused_and_stale_one_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let first = bind(&path, 0o600, None).unwrap();
        let err = bind(&path, 0o600, None).err().unwrap();
        assert_eq!(
            err.to_string(),
            format!("another swarmd is listening on {}", path.display())
        );
        drop(first);

        // A crashed daemon leaves the file behind with nobody listening.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let second = bind(&path, 0o600, None).unwrap();
        assert!(UnixStream::connect(&path).is_ok());
        drop(second);
        assert!(!path.exists());
    }

    #[test]
    fn a_newer_daemons_socket_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let old = bind(&path, 0o600, None).unwrap();
        std::fs::remove_file(&path).unwrap();
        let _newer = UnixListener::bind(&path).unwrap();
        drop(old);
        assert!(path.exists());
    }

    #[test]
    fn plain_file_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        std::fs::write(&path, b"precious").unwrap();
        assert!(matches!(
            bind(&path, 0o600, None),
            Err(SocketError::NotASocket { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    }

    #[test]
    fn group_is_applied() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        // Our own primary group is always allowed.
        let gid = unsafe { libc::getegid() };
        let _b = bind(&path, 0o660, Some(gid)).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().gid(), gid);
    }
}
