//! One control connection: read request lines (bounded), answer them in order, and, after
//! `events.subscribe`, interleave event notifications.
//!
//! Every connection is its own task; a client that stops reading only stalls its own task: its
//! event receiver falls behind the engine's bounded broadcast channel (the engine never waits),
//! it is told how many events it missed with a `lagged` notification, and a write that makes no
//! progress for `write_timeout` ends the connection.
//!
//! A connection with no subscription that sends no complete request for `idle_timeout` is told
//! so and closed: otherwise anyone who can open the socket could hold every slot.
//!
//! End of input is not the end of a subscriber: `echo '{…"events.subscribe"}' | socat …` shuts
//! down its write side after the request and keeps reading. A subscriber that half-closed keeps
//! its events until a write fails or the client hangs up for good (both ends closed).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use swarm_control::methods::{names, LaggedParams};
use swarm_control::rpc::{codes, Notification, Response, RpcError};
use swarm_control::Event;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::dispatch::{Action, Answer, Caller, Dispatcher, CANNOT_ENCODE};
use super::stop::StopRequest;
use crate::engine::Engine;

/// Per-connection limits.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    pub max_request_bytes: usize,
    /// A write (response or event) that cannot complete in this time ends the connection.
    pub write_timeout: Duration,
    /// A connection without subscription and without a complete request for this long is closed.
    pub idle_timeout: Duration,
}

/// Serves `stream` until the client hangs up, an I/O error, or `cancel`.
/// `stop_daemon` is requested after the answer to `daemon.shutdown` has been written (or, with
/// `wait`, the socket is handed over to be answered once the daemon has stopped).
pub async fn serve<E: Engine>(
    stream: UnixStream,
    caller: Caller,
    dispatcher: Arc<Dispatcher<E>>,
    limits: ConnectionLimits,
    cancel: CancellationToken,
    stop_daemon: StopRequest,
) {
    tokio::select! {
        _ = cancel.cancelled() => {}
        r = serve_inner(stream, &dispatcher, caller, limits, &stop_daemon) => {
            if let Err(e) = r {
                tracing::debug!(uid = ?caller.uid, error = %e, "control connection ended");
            }
        }
    }
}

async fn serve_inner<E: Engine>(
    stream: UnixStream,
    dispatcher: &Dispatcher<E>,
    caller: Caller,
    limits: ConnectionLimits,
    stop_daemon: &StopRequest,
) -> io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut reader = LineReader::new(rd, limits.max_request_bytes);
    let mut events: Option<broadcast::Receiver<Event>> = None;
    // Set once the client has half-closed while subscribed: watches for its full hang-up.
    let mut hangup: Option<AsyncFd<OwnedFd>> = None;
    let mut idle_deadline = Instant::now() + limits.idle_timeout;
    loop {
        let reading = hangup.is_none();
        let (out, action) = tokio::select! {
            line = reader.next_line(), if reading => match line? {
                ReadLine::Eof if events.is_some() => {
                    hangup = Some(watch_hangup(&wr)?);
                    continue;
                }
                ReadLine::Eof => return Ok(()),
                ReadLine::TooLong => (Some(too_long(limits.max_request_bytes)), Action::None),
                ReadLine::Line(l) if l.iter().all(u8::is_ascii_whitespace) => continue,
                ReadLine::Line(l) => {
                    let reply = dispatcher.handle_line(caller, &l).await;
                    if reply.action == Action::Subscribe && events.is_none() {
                        // Subscribed before the answer is written: the client sees every event
                        // that happens after it reads the answer.
                        events = Some(dispatcher.engine.subscribe());
                    }
                    (reply.response.as_ref().map(Answer::encode), reply.action)
                }
            },
            event = next_event(&mut events) => match notification(event) {
                Some(line) => (Some(line), Action::None),
                None if reading => {
                    events = None;
                    continue;
                }
                None => return Ok(()),
            },
            () = hung_up(&hangup) => return Ok(()),
            () = tokio::time::sleep_until(idle_deadline), if events.is_none() => {
                let _ = write(&mut wr, &idle_notice(limits.idle_timeout), limits.write_timeout).await;
                return Err(io::Error::new(io::ErrorKind::TimedOut, "idle"));
            }
        };
        if action == (Action::StopDaemon { wait: true }) {
            tracing::info!(uid = ?caller.uid, "shutdown requested over the control socket; the client waits for the stop");
            let stream = reader.into_inner().reunite(wr).map_err(io::Error::other)?;
            stop_daemon.request_and_wait(stream, out.unwrap_or_default());
            return Ok(());
        }
        if let Some(bytes) = out {
            write(&mut wr, &bytes, limits.write_timeout).await?;
        }
        if action == (Action::StopDaemon { wait: false }) {
            tracing::info!(uid = ?caller.uid, "shutdown requested over the control socket");
            stop_daemon.request();
        }
        // Idle time counts from the last answer: a slow call is not the client's idleness.
        idle_deadline = Instant::now() + limits.idle_timeout;
    }
}

/// Writes one line; a client that takes more than `timeout` to accept it is not reading.
async fn write(wr: &mut OwnedWriteHalf, bytes: &[u8], timeout: Duration) -> io::Result<()> {
    match tokio::time::timeout(timeout, wr.write_all(bytes)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "client does not read",
        )),
    }
}

fn too_long(max: usize) -> Vec<u8> {
    let e = RpcError::new(
        codes::REQUEST_TOO_LARGE,
        format!("request line longer than {max} bytes; it was skipped"),
    );
    encode(&Response::err(None, e))
}

fn idle_notice(idle: Duration) -> Vec<u8> {
    let e = RpcError::new(
        codes::IDLE,
        format!(
            "closing this connection: no request for {} s ([control] idle_timeout_secs)",
            idle.as_secs()
        ),
    );
    encode(&Response::err(None, e))
}

/// The line for what the event channel gave; `None` when the channel is closed.
fn notification(event: Result<Event, RecvError>) -> Option<Vec<u8>> {
    let n = match event {
        Ok(e) => Notification::new(names::NOTIFY_EVENT, to_value(&e)),
        Err(RecvError::Lagged(missed)) => {
            Notification::new(names::NOTIFY_LAGGED, to_value(&LaggedParams { missed }))
        }
        Err(RecvError::Closed) => return None,
    };
    Some(encode(&n))
}

/// A second handle on the socket, registered for no readiness but the ones epoll always reports
/// (hang-up, error): unlike the stream's own registration, which is readable for good once the
/// client has half-closed, it wakes only when the client has closed both directions.
fn watch_hangup(wr: &OwnedWriteHalf) -> io::Result<AsyncFd<OwnedFd>> {
    let stream: &UnixStream = wr.as_ref();
    let fd = stream.as_fd().try_clone_to_owned()?;
    // SAFETY: the `OwnedFd` moves into the `AsyncFd` and is closed only when it is dropped, so
    // the descriptor stays open and names the same socket for the registration's whole life.
    unsafe { AsyncFd::register_with_interest(fd, Interest::PRIORITY) }.map_err(io::Error::from)
}

async fn hung_up(watch: &Option<AsyncFd<OwnedFd>>) {
    match watch {
        Some(fd) => {
            let _ = fd.ready(Interest::PRIORITY).await;
        }
        None => std::future::pending().await,
    }
}

async fn next_event(events: &mut Option<broadcast::Receiver<Event>>) -> Result<Event, RecvError> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn to_value<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(v).unwrap_or_else(|_| CANNOT_ENCODE.to_vec());
    bytes.push(b'\n');
    bytes
}

#[derive(Debug, PartialEq, Eq)]
pub enum ReadLine {
    Line(Vec<u8>),
    /// A line longer than the limit; its bytes up to the next newline are discarded.
    TooLong,
    Eof,
}

/// Reads `\n`-terminated lines holding at most `max + one read` bytes in memory, however long the
/// line. Cancel-safe: all state lives in the struct, so `next_line` may lose a `select!`.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// `buf[..scanned]` holds no newline.
    scanned: usize,
    max: usize,
    /// Inside an over-long line: drop bytes until its newline.
    discarding: bool,
}

const READ_CHUNK: usize = 16 * 1024;

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(inner: R, max: usize) -> Self {
        LineReader {
            inner,
            buf: Vec::new(),
            scanned: 0,
            max,
            discarding: false,
        }
    }

    /// The reader back (bytes read but not yet returned as a line are dropped).
    pub fn into_inner(self) -> R {
        self.inner
    }

    pub async fn next_line(&mut self) -> io::Result<ReadLine> {
        loop {
            if let Some(pos) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                let end = self.scanned + pos;
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                self.scanned = 0;
                line.pop();
                if std::mem::take(&mut self.discarding) {
                    continue;
                }
                if line.len() > self.max {
                    return Ok(ReadLine::TooLong);
                }
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(ReadLine::Line(line));
            }
            self.scanned = self.buf.len();
            if self.discarding {
                self.buf.clear();
                self.scanned = 0;
            } else if self.buf.len() > self.max {
                self.buf = Vec::new();
                self.scanned = 0;
                self.discarding = true;
                return Ok(ReadLine::TooLong);
            }
            let mut chunk = [0u8; READ_CHUNK];
            let n = self.inner.read(&mut chunk).await?;
            if n == 0 {
                // A last request without its newline still counts (`printf '...' | socat`).
                return Ok(if self.discarding || self.buf.is_empty() {
                    ReadLine::Eof
                } else {
                    self.scanned = 0;
                    ReadLine::Line(std::mem::take(&mut self.buf))
                });
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines_of(input: &[u8], max: usize) -> Vec<ReadLine> {
        let mut r = LineReader::new(input, max);
        let mut out = Vec::new();
        loop {
            let l = r.next_line().await.unwrap();
            let eof = l == ReadLine::Eof;
            out.push(l);
            if eof {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn splits_lines_and_strips_cr() {
        let got = lines_of(b"a\r\nbc\n\nlast", 10).await;
        let line = |s: &str| ReadLine::Line(s.as_bytes().to_vec());
        assert_eq!(
            got,
            vec![line("a"), line("bc"), line(""), line("last"), ReadLine::Eof]
        );
    }

    #[tokio::test]
    async fn long_lines_are_skipped_whole() {
        let mut input = vec![b'x'; 100_000];
        input.extend_from_slice(b"\nok\n");
        input.extend_from_slice(&[b'y'; 11]);
        input.extend_from_slice(b"\nfine\n");
        let got = lines_of(&input, 10).await;
        let line = |s: &str| ReadLine::Line(s.as_bytes().to_vec());
        assert_eq!(
            got,
            vec![
                ReadLine::TooLong,
                line("ok"),
                ReadLine::TooLong,
                line("fine"),
                ReadLine::Eof
            ]
        );
    }
}
