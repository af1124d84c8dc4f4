//! The pages of swarmd's HTTP face besides the RPC (docs/http-rpc.md): transmission's own web
//! client (Debian's transmission-common) served at `/transmission/web/` and driven in headless
//! Chromium through Selenium while swarmd downloads from a libtorrent seeder; and `/metrics`
//! scraped by a real Prometheus on loopback, whose query API must return swarmd's series.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use swarm_integration_tests::http;
use swarm_integration_tests::http_rpc::{basic, rpc_section, venv_python, PASSWORD, USER};
use swarm_integration_tests::libtorrent::{require_python_libtorrent, seeded};
use swarm_integration_tests::prelude::*;
use swarm_integration_tests::swarmd::workspace_root;

/// Loads the web client, waits for the torrent's row, watches its progress move, takes a
/// screenshot, clicks the row's pause button and waits for the row to say so.
const WEB_UI_SCRIPT: &str = r##"
import re, sys, time
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
url, name, shots = sys.argv[1:4]
opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
          "--window-size=1280,800", "--no-first-run", "--no-proxy-server"]:
    opts.add_argument(a)
d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
d.set_page_load_timeout(30)

def row():
    for r in d.find_elements(By.CSS_SELECTOR, "#torrent_list li.torrent"):
        if name in r.find_element(By.CSS_SELECTOR, ".torrent_name").text:
            return r
    return None

def wait(what, ok, seconds):
    end = time.time() + seconds
    while time.time() < end:
        try:
            v = ok()
            if v:
                return v
        except Exception as e:  # the list is redrawn under us: try again
            last = e
        time.sleep(0.2)
    d.save_screenshot(shots + "-failed.png")
    sys.exit("timed out waiting for " + what + "\n" + d.find_element(By.TAG_NAME, "body").text)

try:
    d.get(url)
    # The client polls every 5 s by default; its preferences live in cookies.
    d.add_cookie({"name": "refresh_rate", "value": "1"})
    d.get(url)
    wait("the torrent's row", row, 30)
    seen = []
    def moved():
        text = row().find_element(By.CSS_SELECTOR, ".torrent_progress_details").text
        m = re.search(r"\(([0-9.]+)%\)", text)
        if m and (not seen or float(m.group(1)) != seen[-1]):
            seen.append(float(m.group(1)))
        return len(seen) >= 2 and seen[-1] > seen[0] and seen[-1] < 100
    wait("the progress to move", moved, 40)
    peers = row().find_element(By.CSS_SELECTOR, ".torrent_peer_details").text
    assert "Downloading" in peers, peers
    d.save_screenshot(shots + "-downloading.png")
    button = row().find_element(By.CSS_SELECTOR, ".torrent_pause")
    button.click()
    wait("the row to say Paused",
         lambda: "Paused" in row().find_element(By.CSS_SELECTOR, ".torrent_peer_details").text, 20)
    d.save_screenshot(shots + "-paused.png")
    print("ok", seen)
finally:
    d.quit()
"##;

#[test]
fn transmission_web_client_runs_on_swarmd() {
    require_python_libtorrent();
    require_tool("chromium");
    require_tool("chromedriver");
    let python = venv_python();
    let env = TestEnv::new("http-web-ui");
    let tracker = Opentracker::start(&env, &[]);
    // Slow enough to watch: 4 MiB at 256 KiB/s; paused long before it is done.
    let payload = Payload::single(&env.subdir("seed"), "web-ui.iso", 4 * MIB, 61);
    let seed = LtOptions {
        upload_limit: Some(256 * KIB),
        ..LtOptions::seed()
    };
    let (_payload, torrent, _seeder) = seeded(&env, &tracker, payload, 15, seed);
    let port = free_tcp_port();
    // No password: the browser's page and its calls pass the address and Host checks.
    let extra = format!("[rpc]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n");
    let dirs = DaemonConfig {
        extra: &extra,
        ..DaemonConfig::new("http_pages web ui")
    }
    .write(&env, free_tcp_port());
    let d = Daemon::start(&env, &dirs, "daemon");
    let hash = d.add(&torrent.path, None);

    // While it downloads, /metrics counts its one peer, by direction and for the torrent.
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let mut text = String::new();
    wait_until(
        "/metrics to count the seeder",
        Duration::from_secs(20),
        Duration::from_millis(200),
        || {
            text = http::get(&metrics, Duration::from_secs(5)).map_or(String::new(), |r| r.text());
            let peers: f64 = samples(&text, "swarmd_peers{").iter().sum();
            peers == 1.0 && samples(&text, "swarmd_torrent_peers{").first() == Some(&1.0)
        },
    )
    .unwrap_or_else(|e| panic!("{e}:\n{text}"));

    let artifacts = workspace_root().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shots = artifacts.join("http_pages-web-ui");
    let script = env.path().join("web_ui.py");
    std::fs::write(&script, WEB_UI_SCRIPT).unwrap();
    let out = Command::new(python)
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}/transmission/web/"))
        .arg(&torrent.name)
        .arg(&shots)
        // Selenium must use the Debian driver, never download one.
        .env("SE_OFFLINE", "true")
        .output()
        .unwrap();
    let text = output_text(&out);
    assert!(
        out.status.success(),
        "the web client script failed:\n{text}\n{}",
        d.log_tail()
    );
    // Paused from the browser: swarmd's control socket says so.
    d.wait_torrent(
        &hash,
        "paused from the web client",
        Duration::from_secs(10),
        |v| v["state"] == "paused",
    );
    for shot in ["downloading", "paused"] {
        let png = artifacts.join(format!("http_pages-web-ui-{shot}.png"));
        let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        assert!(
            bytes.starts_with(b"\x89PNG"),
            "{} is not a PNG",
            png.display()
        );
    }

    // The same server refuses paths out of the web root and names a missing file.
    let get = |path: &str| {
        http::get(
            &format!("http://127.0.0.1:{port}{path}"),
            Duration::from_secs(10),
        )
        .unwrap()
    };
    assert_eq!(get("/transmission/web/%2e%2e/rpc").status, 403);
    assert_eq!(
        get("/transmission/web/..%2f..%2f..%2fetc%2fpasswd").status,
        403
    );
    let missing = get("/transmission/web/no-such.js");
    assert_eq!(missing.status, 404);
    assert!(missing.text().contains("no-such.js"), "{}", missing.text());
    let redirect = get("/transmission/web");
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.header("Location"), Some("/transmission/web/"));
    d.assert_alive("the web client session");
}

/// The values of the samples whose line starts with `prefix` (a name and, to select, `{`).
fn samples(text: &str, prefix: &str) -> Vec<f64> {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}

#[test]
fn a_missing_web_root_is_a_clear_config_error() {
    let env = TestEnv::new("http-web-root-missing");
    let missing = env.path().join("no-web-client");
    let extra = format!(
        "[rpc]\nenabled = true\nlisten = \"127.0.0.1:{}\"\nweb_root = \"{}\"\n",
        free_tcp_port(),
        missing.display()
    );
    let dirs = DaemonConfig {
        extra: &extra,
        ..DaemonConfig::new("http_pages web_root missing")
    }
    .write(&env, free_tcp_port());
    let out = Command::new(swarmd_bin())
        .arg("check-config")
        .arg("--config")
        .arg(&dirs.config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("web_root") && err.contains(&missing.display().to_string()),
        "{err}"
    );
}

/// `/metrics` scraped by a real Prometheus (Debian's `prometheus`, on loopback, scraping every
/// second with the RPC's password): its query API returns swarmd's session and torrent series.
#[test]
fn prometheus_scrapes_swarmd() {
    let prometheus = require_tool("prometheus");
    let env = TestEnv::new("http-metrics");
    let port = free_tcp_port();
    let extra = rpc_section(port, "");
    let dirs = DaemonConfig {
        extra: &extra,
        make_dirs: true,
        ..DaemonConfig::new("http_pages metrics")
    }
    .write(&env, free_tcp_port());
    // Data already in the download directory: the torrent is seeding after its check.
    let payload = Payload::single(&dirs.downloads, "metrics.bin", 3 * 32 * KIB, 5);
    let torrent = payload.make_torrent(&env.path().join("metrics.torrent"), 15, &[]);
    let d = Daemon::start(&env, &dirs, "daemon");
    let hash = d.add(&torrent.path, None);
    d.wait_torrent(&hash, "seeding", Duration::from_secs(20), |v| {
        v["state"] == "seeding"
    });

    // Without the password: 401, like the RPC.
    let url = format!("http://127.0.0.1:{port}/metrics");
    assert_eq!(
        http::get(&url, Duration::from_secs(10)).unwrap().status,
        401
    );
    let auth = basic();
    let page = http::request(
        "GET",
        &url,
        &[("Authorization", &auth)],
        &[],
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(
        page.header("Content-Type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        page.headers
    );

    let prom_port = free_tcp_port();
    let config = env.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: swarmd\n    scrape_interval: 1s\n    \
             scrape_timeout: 1s\n    basic_auth:\n      username: \"{USER}\"\n      \
             password: \"{PASSWORD}\"\n    static_configs:\n      - targets: \
             [\"127.0.0.1:{port}\"]\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new(prometheus);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            env.subdir("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"));
    let prom = ChildGuard::spawn(&env, "prometheus", cmd);

    let query = |q: &str| -> Vec<Value> {
        let encoded: String = q
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let r = http::get(
            &format!("http://127.0.0.1:{prom_port}/api/v1/query?query={encoded}"),
            Duration::from_secs(5),
        );
        let Ok(r) = r else { return Vec::new() };
        let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    };
    let value = |sample: &Value| sample["value"][1].as_str().unwrap_or("").to_owned();
    let mut seen = Vec::new();
    wait_until(
        "Prometheus to have scraped swarmd",
        Duration::from_secs(30),
        Duration::from_millis(300),
        || {
            seen = query("up{job=\"swarmd\"}");
            seen.first().is_some_and(|s| value(s) == "1")
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {seen:?}\n{}", prom.log_tail(40)));
    let seeding = query("swarmd_torrents{state=\"seeding\"}");
    assert_eq!(
        seeding.first().map(value).as_deref(),
        Some("1"),
        "{seeding:?}"
    );
    let progress = query(&format!(
        "swarmd_torrent_progress_ratio{{info_hash=\"{hash}\"}}"
    ));
    assert_eq!(
        progress.first().map(value).as_deref(),
        Some("1"),
        "{progress:?}"
    );
    assert_eq!(progress[0]["metric"]["name"], "metrics.bin", "{progress:?}");
    let restarts = query("swarmd_supervisor_restarts_total");
    let levels: Vec<&str> = restarts
        .iter()
        .filter_map(|s| s["metric"]["level"].as_str())
        .collect();
    assert_eq!(levels.len(), 3, "{restarts:?}");
    for family in [
        "swarmd_peers",
        "swarmd_disk_queue_jobs",
        "swarmd_tracker_announce_failures_total",
        "swarmd_uploaded_bytes_total",
    ] {
        assert!(!query(family).is_empty(), "Prometheus has no {family}");
    }
    d.assert_alive("the scrapes");
}
