//! `daemon.shutdown` on its way from a control connection to the daemon.
//!
//! A plain shutdown is answered at once and the daemon starts stopping. `{"wait": true}` is
//! answered only when the daemon has stopped: the connection hands its socket over here, and
//! `daemon.rs` writes the answer after the engine has stopped (peer port closed, resume state
//! saved) and the state directory's lock is released. The socket is then kept open until the
//! process exits, so a client reading to its end knows the process is gone: `swarmctl shutdown
//! --wait; swarmd` never meets "Address already in use" or "another swarmd uses STATE_DIR".

use std::os::fd::IntoRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio_util::sync::CancellationToken;

/// Shared by the control server (which requests) and the daemon (which waits and answers).
#[derive(Clone, Debug, Default)]
pub struct StopRequest {
    token: CancellationToken,
    waiting: Arc<Mutex<Vec<Waiting>>>,
}

#[derive(Debug)]
struct Waiting {
    stream: UnixStream,
    /// The response line, written once the daemon has stopped.
    answer: Vec<u8>,
}

/// How long the final answer may take to write: the client is waiting for it, so a client that
/// does not read is gone.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

impl StopRequest {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the daemon to stop.
    pub fn request(&self) {
        self.token.cancel();
    }

    /// Asks the daemon to stop and to write `answer` on `stream` once it has.
    pub(crate) fn request_and_wait(&self, stream: UnixStream, answer: Vec<u8>) {
        self.lock().push(Waiting { stream, answer });
        self.token.cancel();
    }

    pub fn is_requested(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes when a stop has been requested.
    pub async fn requested(&self) {
        self.token.cancelled().await
    }

    /// Called by the daemon when everything has stopped: answers the clients that asked to wait
    /// and leaves their sockets open for the kernel to close when the process exits.
    pub async fn answer_waiting(&self) {
        let waiting = std::mem::take(&mut *self.lock());
        for Waiting { mut stream, answer } in waiting {
            let _ = tokio::time::timeout(ANSWER_TIMEOUT, stream.write_all(&answer)).await;
            if let Ok(std_stream) = stream.into_std() {
                // Deliberately never closed: its end is the client's sign that we are gone.
                let _ = std_stream.into_raw_fd();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}
