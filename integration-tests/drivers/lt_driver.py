#!/usr/bin/python3
"""libtorrent peer for swarmd's integration tests (Debian python3-libtorrent 2.0.x).

Runs ONE torrent as a seeder or a leecher, on 127.0.0.1 (or the --bind address of a lab
host), TCP only, with DHT,
LSD, UPnP and NAT-PMP off (PEX stays on unless --no-pex: tests observe it), until SIGTERM/SIGINT, an `exit` command, or until the
process that started it goes away.

With --dht, the DHT runs on UDP 127.0.0.1:PORT (the listen port) and joins ONLY through the
--dht-bootstrap routers / --dht-node nodes given (never the public routers; with neither it
stays alone until someone contacts it), with libtorrent's per-IP restrictions lifted so that
many nodes on 127.0.0.1 can share a routing table and a lookup (dht_restrict_routing_ips,
dht_restrict_search_ips, dht_enforce_node_id, dht_prefer_verified_node_ids,
dht_ignore_dark_internet off; the per-IP query block raised). status.json then also carries
`dht_nodes` (routing table size), `dht_announces_out` (announce_peer queries sent),
`dht_announces_in` (announce_peer queries received) and `dht_replies` (get_peers replies with
peers for our torrent); --dht-log FILE appends every DHT packet and log line to FILE. The Rust side (`swarm_integration_tests::libtorrent`)
starts it and talks to it through two files in `--state-dir`:

* `status.json` -- rewritten atomically (write a temp file, then rename) about every
  100 ms, so a reader never sees a torn file. Torrent-level fields (state, progress,
  finished, seeding, rates, trackers, ...) plus `peers`: one object per connected peer
  with its address, client, and the libtorrent `peer_info` flags that tests assert on
  (who chokes whom, interest, extension support, upload_only, seed, source, ...).
  `cmd_seq` is the sequence number of the last command executed.
* `commands/` -- the Rust side drops files named `cmd-<seq>` there (atomically, by
  rename); each holds one command line. They are executed in name order and deleted:

      connect IP:PORT        connect_peer() to IP:PORT
      pause | resume         pause/resume the torrent
      upload_limit N         per-torrent upload limit in bytes/s (0 = none)
      download_limit N       per-torrent download limit in bytes/s (0 = none)
      reannounce             force a tracker announce now
      recheck                force a full hash check
      exit                   shut down cleanly
      dht_announce           announce the torrent to the DHT now (--dht)
      dht_node IP:PORT       add_dht_node(): ping IP:PORT and add it to the table (--dht)

With `--peer-log FILE`, every libtorrent peer_log alert (one line per wire message
sent or received, e.g. `<== HAVE_ALL`, `==> ALLOWED_FAST`, `<== EXTENDED_HANDSHAKE`)
is appended to FILE as `IP:PORT <message>`, so tests can check what was on the wire.
"""
import argparse
import json
import os
import signal
import sys
import time

import libtorrent as lt

STOP = False


def on_signal(_sig, _frame):
    global STOP
    STOP = True


def write_json_atomic(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


# peer_info flag attributes reported as booleans. Meaning (libtorrent's view, "we" = this
# driver): interesting = we are interested in the peer; choked = we choke the peer;
# remote_interested = the peer is interested in us; remote_choked = the peer chokes us.
PEER_FLAGS = [
    "interesting", "choked", "remote_interested", "remote_choked",
    "supports_extensions", "local_connection", "handshake", "connecting",
    "on_parole", "seed", "optimistic_unchoke", "snubbed", "upload_only",
    "endgame_mode", "rc4_encrypted", "plaintext_encrypted",
]
# peer_info source bits (how we learnt of the peer); the bindings have no "incoming" bit,
# use the local_connection flag (false = the peer dialled us) instead.
PEER_SOURCES = ["tracker", "dht", "pex", "lsd", "resume_data"]


def peer_json(p):
    flags = {name: bool(p.flags & getattr(lt.peer_info, name)) for name in PEER_FLAGS}
    sources = [name for name in PEER_SOURCES if p.source & getattr(lt.peer_info, name)]
    ip, port = p.ip
    return {
        "ip": ip,
        "port": port,
        "addr": "%s:%d" % (ip, port),
        "client": p.client.decode("utf-8", "replace") if isinstance(p.client, bytes) else str(p.client),
        "pid": bytes(p.pid.to_bytes()).hex() if hasattr(p.pid, "to_bytes") else str(p.pid),
        "flags": flags,
        "source": sources,
        "progress": p.progress,
        "num_pieces": p.num_pieces,
        "total_download": p.total_download,
        "total_upload": p.total_upload,
        "down_speed": p.down_speed,
        "up_speed": p.up_speed,
    }


def peer_log_line(al, ip, port):
    """The interesting tail of a peer alert: `==> HAVE_ALL [  ]`, `*** CONNECTION_CLOSED ...`."""
    m = al.message()
    marker = "[%s:%d] " % (ip, port)
    i = m.find(marker)
    if i >= 0:
        return m[i + len(marker):]  # peer_log_alert: "... [ip:port] <dir> <EVENT> [ details ]"
    i = m.find(" ] ")
    return m[i + 3:] if i >= 0 else m  # other peer alerts: "<torrent> peer [ ... ] <text>"


def tracker_json(t):
    msg = ""
    fails = 0
    # 2.0 keeps per-endpoint state; report the last message/fail count we can find.
    for ep in getattr(t, "endpoints", []) or []:
        for ih in getattr(ep, "info_hashes", []) or []:
            fails = max(fails, getattr(ih, "fails", 0))
            m = getattr(ih, "message", "")
            if m:
                msg = m
            err = getattr(ih, "last_error", None)
            if err is not None and getattr(err, "value", lambda: 0)():
                msg = err.message()
    return {"url": t.url, "fails": fails, "message": msg}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", choices=["seed", "leech"], required=True)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--torrent")
    src.add_argument("--magnet")
    ap.add_argument("--dir", required=True, help="save path (the payload is DIR/<name>)")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--state-dir", required=True, help="status.json and commands/ live here")
    ap.add_argument("--recheck", action="store_true",
                    help="seed role: hash-check the data instead of trusting it (seed_mode)")
    ap.add_argument("--upload-limit", type=int, default=0, help="bytes/s, 0 = unlimited")
    ap.add_argument("--download-limit", type=int, default=0, help="bytes/s, 0 = unlimited")
    ap.add_argument("--no-announce", action="store_true", help="drop the torrent's trackers")
    ap.add_argument("--no-pex", action="store_true",
                    help="disable ut_pex for this torrent (on by default, unlike DHT/LSD)")
    ap.add_argument("--on-finish", choices=["seed", "pause", "exit"], default="seed",
                    help="leech role: what to do once the download is complete")
    ap.add_argument("--peer-log", default=None, help="append peer_log alerts to this file")
    ap.add_argument("--encryption", choices=["disabled", "enabled", "forced"], default="disabled",
                    help="MSE/PE policy for both directions (default: plaintext only)")
    ap.add_argument("--super-seed", action="store_true",
                    help="seeders: super-seeding (BEP 16)")
    ap.add_argument("--paused", action="store_true",
                    help="add the torrent paused (nothing announced or dialled until `resume`)")
    ap.add_argument("--bind", default="127.0.0.1",
                    help="the address to listen and dial from (a lab host's; default 127.0.0.1)")
    ap.add_argument("--transport", choices=["tcp", "utp"], default="tcp",
                    help="the only transport for peer connections, both directions")
    ap.add_argument("--connect", action="append", default=[], help="IP:PORT to dial at start")
    ap.add_argument("--dht", action="store_true",
                    help="run the DHT on UDP 127.0.0.1:PORT (loopback-friendly settings)")
    ap.add_argument("--dht-bootstrap", action="append", default=[],
                    help="HOST:PORT DHT router to bootstrap from (never in the routing table)")
    ap.add_argument("--dht-node", action="append", default=[],
                    help="HOST:PORT DHT node to add to the routing table at start")
    ap.add_argument("--dht-log", default=None, help="append DHT packets and log lines to this file")
    a = ap.parse_args()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    parent = os.getppid()

    cmd_dir = os.path.join(a.state_dir, "commands")
    os.makedirs(cmd_dir, exist_ok=True)
    status_path = os.path.join(a.state_dir, "status.json")

    mask = lt.alert_category.status | lt.alert_category.error | lt.alert_category.tracker
    if a.peer_log:
        mask |= lt.alert_category.peer_log | lt.alert_category.connect
    if a.dht:
        # dht_log carries dht_pkt_alert, from which outgoing announce_peer queries are counted.
        mask |= lt.alert_category.dht | lt.alert_category.dht_log | lt.alert_category.dht_operation
    sp = lt.high_performance_seed() if a.role == "seed" else lt.default_settings()
    sp.update({
        "listen_interfaces": "%s:%d" % (a.bind, a.port),
        "outgoing_interfaces": a.bind,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        # One transport only (TCP unless told): the tests observe which one a connection uses.
        "enable_outgoing_utp": a.transport == "utp",
        "enable_incoming_utp": a.transport == "utp",
        "enable_outgoing_tcp": a.transport == "tcp",
        "enable_incoming_tcp": a.transport == "tcp",
        # Every peer in a loopback swarm has the same IP.
        "allow_multiple_connections_per_ip": True,
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
        # Plaintext by default: with "enabled", libtorrent dials encrypted first and only
        # retries in plaintext after the peer hangs up, which costs a reconnect per peer.
        "out_enc_policy": int(getattr(lt.enc_policy, "pe_" + a.encryption)),
        "in_enc_policy": int(getattr(lt.enc_policy, "pe_" + a.encryption)),
        # Forced means RC4 too: with "both", a forced libtorrent may still agree on plaintext
        # inside the encrypted handshake.
        "allowed_enc_level": int(lt.enc_level.rc4 if a.encryption == "forced" else lt.enc_level.both),
        "alert_mask": mask,
        "user_agent": "swarm-it-lt/" + lt.__version__,
    })
    if a.dht:
        sp.update({
            "enable_dht": True,
            # Only the loopback nodes we are given; never dht.libtorrent.org (the default).
            "dht_bootstrap_nodes": ",".join(a.dht_bootstrap),
            # Every node is 127.0.0.1: lift the one-node-per-IP rules and BEP 42 checks.
            "dht_restrict_routing_ips": False,
            "dht_restrict_search_ips": False,
            "dht_enforce_node_id": False,
            "dht_prefer_verified_node_ids": False,
            "dht_ignore_dark_internet": False,
            "dht_extended_routing_table": True,
            "dht_aggressive_lookups": True,
            "dht_privacy_lookups": False,
            "dht_read_only": False,
            # All queries come from one IP: don't block it for sending more than 5/s.
            "dht_block_ratelimit": 10000,
            "dht_upload_rate_limit": 10 * 1024 * 1024,
        })
    ses = lt.session(sp)

    def dht_node(addr):
        host, port = addr.rsplit(":", 1)
        ses.add_dht_node((host, int(port)))

    for addr in a.dht_node:
        dht_node(addr)

    if a.torrent:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(a.torrent)
    else:
        atp = lt.parse_magnet_uri(a.magnet)
    atp.save_path = a.dir
    if a.role == "seed" and not a.recheck and a.torrent:
        atp.flags |= lt.torrent_flags.seed_mode
    if a.no_pex:
        atp.flags |= lt.torrent_flags.disable_pex
    if a.super_seed:
        atp.flags |= lt.torrent_flags.super_seeding
    if a.paused:
        # Held until a `resume` command: a lab starts every leecher of a flash crowd at once.
        atp.flags |= lt.torrent_flags.paused
        atp.flags &= ~lt.torrent_flags.auto_managed
    h = ses.add_torrent(atp)
    if a.no_announce:
        h.replace_trackers([])
    if a.upload_limit:
        h.set_upload_limit(a.upload_limit)
    if a.download_limit:
        h.set_download_limit(a.download_limit)

    def connect(addr):
        host, port = addr.rsplit(":", 1)
        h.connect_peer((host, int(port)))

    for addr in a.connect:
        connect(addr)

    peer_log = open(a.peer_log, "a", buffering=1) if a.peer_log else None
    dht_log = open(a.dht_log, "a", buffering=1) if a.dht_log else None
    dht = {"dht_nodes": 0, "dht_announces_out": 0, "dht_announces_in": 0, "dht_replies": 0}
    errors = []
    cmd_seq = 0
    t_finished = None
    finish_handled = False
    last_write = 0.0
    last_dht_stats = 0.0

    while not STOP:
        if os.getppid() != parent:
            break  # the test process died without killing us: don't linger

        for al in ses.pop_alerts():
            if isinstance(al, lt.torrent_finished_alert) and t_finished is None:
                t_finished = time.time()
            if peer_log is not None and isinstance(al, lt.peer_alert):
                try:
                    ip, port = al.ip
                    peer_log.write("%s:%d %s\n" % (ip, port, peer_log_line(al, ip, port)))
                except Exception as e:  # never let logging kill the peer
                    peer_log.write("? %s (%s)\n" % (al.message(), e))
            if a.dht:
                if isinstance(al, lt.dht_pkt_alert):
                    m = al.message()
                    if m.startswith("==>") and "'q': 'announce_peer'" in m:
                        dht["dht_announces_out"] += 1
                elif isinstance(al, lt.dht_announce_alert):
                    dht["dht_announces_in"] += 1
                elif isinstance(al, lt.dht_reply_alert):
                    dht["dht_replies"] += 1
                elif isinstance(al, lt.dht_stats_alert):
                    dht["dht_nodes"] = sum(b["num_nodes"] for b in al.routing_table)
                if dht_log is not None and al.category() & (
                        lt.alert_category.dht | lt.alert_category.dht_log
                        | lt.alert_category.dht_operation):
                    dht_log.write("%.3f %s: %s\n" % (time.time(), type(al).__name__, al.message()))
            if al.category() & lt.alert_category.error:
                errors.append(al.message())
                del errors[:-20]
                sys.stderr.write("lt error: %s\n" % al.message())

        try:
            names = sorted(n for n in os.listdir(cmd_dir) if n.startswith("cmd-"))
        except OSError:
            names = []
        for name in names:
            path = os.path.join(cmd_dir, name)
            try:
                with open(path) as f:
                    line = f.read().strip()
                os.remove(path)
            except OSError:
                continue
            seq = int(name[4:])
            words = line.split()
            try:
                if not words:
                    pass
                elif words[0] == "connect":
                    connect(words[1])
                elif words[0] == "pause":
                    h.unset_flags(lt.torrent_flags.auto_managed)
                    h.pause()
                elif words[0] == "resume":
                    h.resume()
                elif words[0] == "upload_limit":
                    h.set_upload_limit(int(words[1]))
                elif words[0] == "download_limit":
                    h.set_download_limit(int(words[1]))
                elif words[0] == "reannounce":
                    h.force_reannounce()
                elif words[0] == "recheck":
                    h.force_recheck()
                elif words[0] == "dht_announce":
                    h.force_dht_announce()
                elif words[0] == "dht_node":
                    dht_node(words[1])
                elif words[0] == "exit":
                    on_signal(None, None)
                else:
                    errors.append("unknown command: %r" % line)
            except Exception as e:
                errors.append("command %r failed: %s" % (line, e))
                sys.stderr.write("command %r failed: %s\n" % (line, e))
            sys.stderr.write("command %d: %s\n" % (seq, line))
            cmd_seq = max(cmd_seq, seq)
            last_write = 0.0  # acknowledge promptly

        s = h.status()
        now = time.time()
        if s.is_finished and t_finished is None:
            t_finished = now
        if a.role == "leech" and s.is_finished and not finish_handled:
            finish_handled = True
            if a.on_finish == "pause":
                h.unset_flags(lt.torrent_flags.auto_managed)
                h.pause()
            elif a.on_finish == "exit":
                on_signal(None, None)

        if a.dht and now - last_dht_stats >= 0.5:
            ses.post_dht_stats()
            last_dht_stats = now
        if now - last_write >= 0.1 or STOP:
            peers = []
            try:
                peers = [peer_json(p) for p in h.get_peer_info()]
            except Exception as e:
                errors.append("get_peer_info: %s" % e)
            trackers = []
            try:
                trackers = [tracker_json(t) for t in h.trackers()]
            except Exception:
                pass
            extra = dict(dht) if a.dht else {}
            write_json_atomic(status_path, dict(extra, **{
                "pid": os.getpid(),
                "listen_port": ses.listen_port(),
                "role": a.role,
                "state": str(s.state).rsplit(".", 1)[-1],
                "has_metadata": bool(s.has_metadata),
                "progress": s.progress,
                "finished": bool(s.is_finished),
                "seeding": bool(s.is_seeding),
                "paused": bool(s.flags & lt.torrent_flags.paused),
                "t_finished": t_finished,
                "num_peers": s.num_peers,
                "num_seeds": s.num_seeds,
                "num_pieces": s.num_pieces,
                "total_done": s.total_done,
                "total_download": s.total_download,
                "total_upload": s.total_upload,
                "total_payload_download": s.total_payload_download,
                "total_payload_upload": s.total_payload_upload,
                "total_failed_bytes": s.total_failed_bytes,
                "download_rate": s.download_rate,
                "upload_rate": s.upload_rate,
                "error": str(s.errc.message()) if s.errc.value() else "",
                "errors": errors,
                "cmd_seq": cmd_seq,
                "peers": peers,
                "trackers": trackers,
                "stopping": STOP,
            }))
            last_write = now
        ses.wait_for_alert(50)

    if peer_log is not None:
        peer_log.close()
    if dht_log is not None:
        dht_log.close()
    h.pause()
    del ses


if __name__ == "__main__":
    main()
