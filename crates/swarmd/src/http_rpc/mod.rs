//! The transmission-compatible HTTP RPC (`docs/http-rpc.md`): `/transmission/rpc` as
//! transmission-daemon 4.0 speaks it, so that transmission-remote, Sonarr, Radarr and the other
//! tools written for transmission drive swarmd. One more face of the engine, beside the control
//! socket: every call goes through the [`Engine`], and nothing here models a torrent.
//!
//! - `access.rs`: the checks before a request is read (address, password, Host, session id).
//! - `methods.rs` / `torrents.rs`: the methods; `fields.rs`: `torrent-get`'s fields;
//!   `ids.rs`: transmission's small torrent ids; `password.rs`: the stored password hash.
//! - `jsonrpc.rs`: transmission 4.1's JSON-RPC 2.0 form, translated onto the methods.
//! - `web.rs`: transmission's web client at `/transmission/web/`; `metrics.rs`: Prometheus
//!   metrics at `/metrics`. Both pass the same checks as a call, but for the session id.
//!
//! The server is actix-web on a worker thread of its own (one worker: the engine does the work,
//! this only translates). A panicking handler takes that worker down and actix-server starts a
//! new one; the engine and the control socket do not notice. Started by `daemon.rs` when
//! `[rpc] enabled`, stopped before the engine on shutdown.

mod access;
mod alt_speed;
mod fields;
mod ids;
mod jsonrpc;
mod methods;
mod metrics;
pub mod password;
mod queue;
mod rpc;
mod settings;
mod torrents;
pub mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::http::header::{HeaderValue, CONTENT_TYPE};
use actix_web::web as route;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Map, Value};

use crate::config::RpcSection;
use crate::engine::Engine;
pub use access::{Credentials, Gate, IpRule, Knock};
use password::PasswordHash;
pub use rpc::{version, Rpc, SessionInfo, RPC_VERSION};

/// Where the RPC answers; transmission clients append nothing else.
pub const PATH: &str = "/transmission/rpc";
const SESSION_HEADER: &str = "X-Transmission-Session-Id";

#[derive(Debug, thiserror::Error)]
pub enum RpcServerError {
    #[error("[rpc] listen: cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("[rpc] unix_socket: cannot listen on {}: {source}", path.display())]
    Unix {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The checks of `[rpc]` that serde cannot make: `Err((key, message))`.
pub fn check_config(c: &RpcSection) -> Result<(), (&'static str, String)> {
    if let Some(h) = &c.password_hash {
        PasswordHash::parse(h).map_err(|e| ("password_hash", e))?;
        if c.username.is_empty() {
            return Err(("username", "a password_hash needs a username".into()));
        }
    }
    for ip in &c.ip_whitelist {
        IpRule::parse(ip).map_err(|e| ("ip_whitelist", e))?;
    }
    if let Some(bad) = c
        .host_whitelist
        .iter()
        .find(|h| h.trim().is_empty() || h.contains([':', '/', ' ']))
    {
        return Err((
            "host_whitelist",
            format!("{bad:?} is not a host name pattern such as \"*.example.org\""),
        ));
    }
    if c.max_body_bytes < 64 * 1024 {
        return Err(("max_body_bytes", "must be at least 65536".into()));
    }
    if let Some(root) = &c.web_root {
        if !root.join("index.html").is_file() {
            return Err((
                "web_root",
                format!(
                    "{} has no index.html: it is not a web client's directory (Debian's \
                     transmission-common installs one in /usr/share/transmission)",
                    root.display()
                ),
            ));
        }
    }
    Ok(())
}

/// The gate `[rpc]` describes, with a fresh session id.
pub fn gate(c: &RpcSection) -> Gate {
    let session_id: String = {
        use rand::distributions::{Alphanumeric, DistString};
        Alphanumeric.sample_string(&mut rand::thread_rng(), 48)
    };
    Gate {
        session_id,
        credentials: c.password_hash.as_deref().and_then(|h| {
            Some(Credentials {
                username: c.username.clone(),
                password: PasswordHash::parse(h).ok()?,
            })
        }),
        host_whitelist: c
            .host_whitelist
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        ip_whitelist: c
            .ip_whitelist
            .iter()
            .filter_map(|r| IpRule::parse(r).ok())
            .collect(),
    }
}

struct Shared<E> {
    gate: Gate,
    rpc: Rpc<E>,
    /// `None`: no web client to serve (`web.rs` says so to a browser).
    web_root: Option<PathBuf>,
    metrics_torrents: usize,
}

/// A running RPC server.
pub struct RpcServer {
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    unix_socket: Option<PathBuf>,
}

impl RpcServer {
    /// Binds now (a taken port fails the daemon's start with a message naming `[rpc] listen`)
    /// and serves until [`RpcServer::stop`].
    pub fn start<E: Engine>(
        c: &RpcSection,
        info: SessionInfo,
        engine: E,
        stop_daemon: crate::control::StopRequest,
    ) -> Result<Self, RpcServerError> {
        let gate = gate(c);
        let rpc = Rpc::new(engine, info, gate.session_id.clone(), stop_daemon);
        let web_root = web::web_root(c.web_root.as_deref());
        match &web_root {
            Some(root) => {
                tracing::info!(web_root = %root.display(), "web client at {}", web::PREFIX)
            }
            None => tracing::info!(
                "no web client to serve: none of {:?} exists and [rpc] web_root is not set",
                web::DEFAULT_ROOTS
            ),
        }
        let shared = actix_web::web::Data::from(Arc::new(Shared {
            gate,
            rpc,
            web_root,
            metrics_torrents: c.metrics_torrents,
        }));
        let max_body = c.max_body_bytes;
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .app_data(route::PayloadConfig::new(max_body))
                .route(PATH, route::to(endpoint::<E>))
                .route("/transmission/rpc/", route::to(endpoint::<E>))
                .route(metrics::PATH, route::get().to(metrics_page::<E>))
                .route("/", route::get().to(web_page::<E>))
                .route("/transmission/web", route::get().to(web_page::<E>))
                .route(
                    "/transmission/web/{tail:.*}",
                    route::get().to(web_page::<E>),
                )
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(2)
        .bind(c.listen)
        .map_err(|source| RpcServerError::Listen {
            addr: c.listen,
            source,
        })?;
        if let Some(path) = &c.unix_socket {
            remove_stale_socket(path);
            server = server
                .bind_uds(path)
                .map_err(|source| RpcServerError::Unix {
                    path: path.clone(),
                    source,
                })?;
        }
        let server = server.run();
        let handle = server.handle();
        tracing::info!(listen = %c.listen, unix_socket = ?c.unix_socket, "HTTP RPC ready at {PATH}");
        Ok(RpcServer {
            handle,
            task: tokio::spawn(server),
            unix_socket: c.unix_socket.clone(),
        })
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.task.await;
        if let Some(p) = &self.unix_socket {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A socket file left by a daemon that died; anything else at that path is left alone (the bind
/// then fails and says so).
fn remove_stale_socket(path: &std::path::Path) {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
}

/// What a request presents to the gate.
fn knock(req: &HttpRequest) -> Knock<'_> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    Knock {
        peer: req.peer_addr().map(|a| a.ip()),
        host: header("host"),
        authorization: header("authorization"),
        session_id: header(SESSION_HEADER),
    }
}

async fn web_page<E: Engine>(req: HttpRequest, shared: route::Data<Shared<E>>) -> HttpResponse {
    let knock = knock(&req);
    if let Err(refusal) = shared.gate.check_page(&knock) {
        return refused(&shared.gate, &knock, &refusal);
    }
    web::serve(shared.web_root.as_deref(), req.path()).await
}

async fn metrics_page<E: Engine>(req: HttpRequest, shared: route::Data<Shared<E>>) -> HttpResponse {
    let knock = knock(&req);
    if let Err(refusal) = shared.gate.check_page(&knock) {
        return refused(&shared.gate, &knock, &refusal);
    }
    match metrics::scrape(&shared.rpc.engine, shared.metrics_torrents).await {
        Ok(text) => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, metrics::CONTENT_TYPE))
            .body(text),
        Err(e) => HttpResponse::ServiceUnavailable()
            .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
            .body(format!("503: the engine did not answer: {e}")),
    }
}

fn refused(gate: &Gate, knock: &Knock, refusal: &access::Refusal) -> HttpResponse {
    tracing::debug!(peer = ?knock.peer, status = refusal.status(), "HTTP request refused");
    let status = actix_web::http::StatusCode::from_u16(refusal.status())
        .unwrap_or(actix_web::http::StatusCode::FORBIDDEN);
    let mut r = HttpResponse::build(status);
    r.insert_header((SESSION_HEADER, gate.session_id.as_str()));
    if status == actix_web::http::StatusCode::CONFLICT {
        r.insert_header(jsonrpc::VERSION_HEADER);
    }
    if status == actix_web::http::StatusCode::UNAUTHORIZED {
        r.insert_header(("WWW-Authenticate", "Basic realm=\"Transmission\""));
    }
    r.content_type("text/html; charset=UTF-8")
        .body(format!("<h1>{}</h1>", refusal.message()))
}

async fn endpoint<E: Engine>(
    req: HttpRequest,
    body: route::Bytes,
    shared: route::Data<Shared<E>>,
) -> HttpResponse {
    let knock = knock(&req);
    if let Err(refusal) = shared.gate.check(&knock) {
        return refused(&shared.gate, &knock, &refusal);
    }
    let Some(reply) = answer(&shared.rpc, &body).await else {
        // JSON-RPC notifications only: nothing to answer.
        return HttpResponse::NoContent()
            .insert_header((SESSION_HEADER, shared.gate.session_id.as_str()))
            .finish();
    };
    let mut r = HttpResponse::Ok();
    r.insert_header((
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    ));
    r.insert_header((SESSION_HEADER, shared.gate.session_id.as_str()));
    r.body(reply.to_string())
}

/// The response body for one request body, in the request's own form: legacy
/// (`method`/`arguments`/`tag`, `result`) or, when it says `"jsonrpc": "2.0"` or is a batch,
/// transmission 4.1's JSON-RPC (`jsonrpc.rs`). `None`: JSON-RPC notifications, no answer.
async fn answer<E: Engine>(rpc: &Rpc<E>, body: &[u8]) -> Option<Value> {
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        // Unparsable, so the form is a guess: a body that mentions "jsonrpc" gets that form's
        // parse error.
        Err(e) if contains_bytes(body, b"\"jsonrpc\"") => return Some(jsonrpc::parse_error(&e)),
        Err(e) => {
            return Some(
                json!({"arguments": {}, "result": format!("the request is not JSON: {e}")}),
            )
        }
    };
    if jsonrpc::is_jsonrpc(&request) {
        return jsonrpc::answer(rpc, request).await;
    }
    Some(legacy_answer(rpc, request).await)
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn legacy_answer<E: Engine>(rpc: &Rpc<E>, request: Value) -> Value {
    let Value::Object(mut request) = request else {
        return json!({"arguments": {}, "result": "the request is not a JSON object"});
    };
    let tag = request.remove("tag");
    let arguments = request.remove("arguments");
    let outcome = match (request.get("method"), arguments) {
        (Some(Value::String(method)), None) => rpc.call(method, &Map::new()).await,
        (Some(Value::String(method)), Some(Value::Object(args))) => rpc.call(method, &args).await,
        (Some(Value::String(method)), Some(other)) => Err(rpc::Failure::new(format!(
            "{method}: arguments must be an object, not {other}"
        ))),
        _ => Err(rpc::Failure::new("no method name")),
    };
    let mut out = Map::new();
    match outcome {
        Ok(args) => {
            out.insert("arguments".into(), Value::Object(args));
            out.insert("result".into(), json!("success"));
        }
        Err(f) => {
            tracing::debug!(error = %f.message, "HTTP RPC call failed");
            out.insert("arguments".into(), json!({}));
            out.insert("result".into(), json!(f.message));
        }
    }
    if let Some(tag) = tag {
        out.insert("tag".into(), tag);
    }
    Value::Object(out)
}
