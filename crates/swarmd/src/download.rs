//! `swarmd download TORRENT -o DIR`: the one-shot mode, without daemon state. Checks what is in
//! DIR, downloads the rest, shows progress, exits 0 once every piece is verified on disk; with
//! `--seed` it keeps seeding until SIGINT/SIGTERM and announces `stopped` on the way out.
//! The same engine as the daemon, with one torrent and no control socket.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use swarm_control::TorrentState;
use swarm_engine::{AddOptions, EngineConfig, Session};
use swarm_wire::{Magnet, Metainfo};

#[derive(clap::Args, Debug)]
pub struct DownloadArgs {
    /// The .torrent file (or magnet link) to download.
    pub torrent: String,
    /// Directory to save into (the payload goes to DIR/<name>).
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: PathBuf,
    /// Address for incoming peer connections. Default: 0.0.0.0:6881, or another free port when
    /// 6881 is taken (by a running swarmd, say).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Keep seeding after the download until SIGINT/SIGTERM.
    #[arg(long)]
    pub seed: bool,
    /// Message Stream Encryption with peers: require, prefer, allow or disable (as the daemon's
    /// `[network] encryption`).
    #[arg(long, value_name = "POLICY", default_value = "prefer")]
    pub encryption: swarm_wire::mse::Policy,
    /// Join the DHT (BEP 5) to find peers; always on for a magnet link.
    #[arg(long)]
    pub dht: bool,
    /// DHT node to join through (host:port, repeatable); default: the well-known routers.
    #[arg(long = "dht-bootstrap", value_name = "HOST:PORT")]
    pub dht_bootstrap: Vec<String>,
    /// UDP port of the DHT node (default: the peer port).
    #[arg(long = "dht-port", value_name = "PORT")]
    pub dht_port: Option<u16>,
    /// Give up (exit 1) if not complete after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
}

pub fn run(args: DownloadArgs) -> anyhow::Result<()> {
    // Warnings and errors by default (progress has its own lines); RUST_LOG for more.
    let _log = swarmd::logging::init("warn")?;
    let source = if args.torrent.starts_with("magnet:") {
        let magnet = Magnet::parse(&args.torrent).context("invalid magnet link")?;
        Source::Magnet(magnet)
    } else {
        let bytes =
            std::fs::read(&args.torrent).with_context(|| format!("reading {}", args.torrent))?;
        let meta = Metainfo::from_bytes(&bytes)
            .with_context(|| format!("{} is not a valid torrent", args.torrent))?;
        Source::Torrent(meta)
    };
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let system = actix::System::new();
    let code = system.block_on(download(args, source))?;
    drop(system);
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

enum Source {
    Torrent(Metainfo),
    Magnet(Magnet),
}

/// The port a peer expects a BitTorrent client on, tried first when `--listen` is not given.
const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 6881);

/// `--listen` as given; else the default port when it is free, else a port the system picks: a
/// one-shot download next to a daemon that holds 6881 should just work, and peers learn the port
/// from the announce. The second value says why the default was not taken.
fn listen_addr(given: Option<SocketAddr>) -> (SocketAddr, Option<std::io::Error>) {
    if let Some(addr) = given {
        return (addr, None);
    }
    match std::net::TcpListener::bind(DEFAULT_LISTEN) {
        Ok(_) => (DEFAULT_LISTEN, None),
        Err(e) => (SocketAddr::new(DEFAULT_LISTEN.ip(), 0), Some(e)),
    }
}

async fn download(args: DownloadArgs, source: Source) -> anyhow::Result<i32> {
    let (listen, default_taken) = listen_addr(args.listen);
    // A magnet link without trackers or peers has only the DHT to go by.
    let use_dht = args.dht || matches!(source, Source::Magnet(_));
    let dht = use_dht.then(|| {
        let mut d = swarm_dht::DhtConfig {
            bind: SocketAddr::new(listen.ip(), args.dht_port.unwrap_or(listen.port())),
            ..swarm_dht::DhtConfig::default()
        };
        if !args.dht_bootstrap.is_empty() {
            d.bootstrap = args.dht_bootstrap.clone();
        }
        d
    });
    let cfg = EngineConfig {
        listen,
        download_dir: args.output.clone(),
        dht,
        encryption: args.encryption,
        ..EngineConfig::default()
    };
    let session = Session::start(cfg)?;
    if let Some(e) = default_taken {
        eprintln!(
            "swarmd: port {} is not available ({e}); listening on port {} instead",
            DEFAULT_LISTEN.port(),
            session.listen_addr().port()
        );
    }
    let (ih, name) = match source {
        Source::Torrent(meta) => {
            let name = meta.info.name.clone();
            (session.add(meta, AddOptions::default()).await?, name)
        }
        Source::Magnet(m) => session.add_magnet(m, AddOptions::default()).await?,
    };
    tracing::info!(torrent = %name, info_hash = %ih, listen = %session.listen_addr(), "downloading");

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let deadline = args
        .timeout
        .map(|s| Instant::now() + Duration::from_secs(s));
    let mut progress = Progress::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut complete = false;
    let code = loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => break if complete { 0 } else { 130 },
            _ = sigterm.recv() => break if complete { 0 } else { 143 },
            why = session.failed() => {
                eprintln!("swarmd: the engine failed: {why}");
                break 1;
            }
        }
        // A magnet is listed (fetching metadata) before it becomes a torrent.
        let Some(s) = session
            .list()
            .await?
            .into_iter()
            .find(|s| s.info_hash == ih)
        else {
            eprintln!("swarmd: {name}: fetching the metadata failed");
            break 1;
        };
        if s.state == TorrentState::Error {
            eprintln!("swarmd: {}: {}", name, s.error.unwrap_or_default());
            break 1;
        }
        progress.show(&s, false);
        if s.state == TorrentState::Seeding && !complete {
            complete = true;
            progress.show(&s, true);
            if !args.seed {
                break 0;
            }
            eprintln!("swarmd: {name} complete; seeding until interrupted");
        }
        if !complete && deadline.is_some_and(|d| Instant::now() > d) {
            eprintln!(
                "swarmd: {name}: not complete after {}s",
                args.timeout.unwrap_or(0)
            );
            break 1;
        }
    };
    // What each peer still connected gave and took, for the curious (and the tests).
    if let Ok(peers) = session.peers(ih).await {
        for p in peers {
            eprintln!(
                "swarmd: peers: {} client={} downloaded={} uploaded={}",
                p.addr, p.client, p.downloaded, p.uploaded
            );
        }
    }
    session.shutdown(Duration::from_secs(3)).await;
    actix::System::current().stop();
    Ok(code)
}

/// A progress bar on a terminal, a log line every few seconds otherwise.
struct Progress {
    tty: bool,
    last: Instant,
    started: Instant,
}

impl Progress {
    fn new() -> Self {
        let tty = std::io::stderr().is_terminal();
        Progress {
            tty,
            last: Instant::now(),
            started: Instant::now(),
        }
    }

    fn show(&mut self, s: &swarm_control::TorrentSummary, done: bool) {
        let every = if self.tty {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(5)
        };
        if !done && self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let pct = s.progress * 100.0;
        // The same units as swarmctl's (binary: MiB/s).
        let rate = swarm_control::human::rate(s.download_rate);
        let state = s.state;
        if self.tty {
            let width = 30;
            let filled = ((s.progress * width as f64) as usize).min(width);
            eprint!(
                "\r[{}{}] {pct:5.1}% {rate:>11}  {} peers  {state}   ",
                "#".repeat(filled),
                "-".repeat(width - filled),
                s.peers
            );
            if done {
                eprintln!();
            }
        } else {
            eprintln!(
                "{} {pct:.1}% of {} bytes, {rate}, {} peers, {state}, {:.1}s",
                s.name,
                s.total_bytes,
                s.peers,
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}
