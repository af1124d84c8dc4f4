//! Answers to incoming queries (ping, find_node, get_peers, announce_peer), as a pure
//! function of the query and the node's state: the socket task decides *whether* to answer
//! (rate limit, read-only mode) and sends what this returns.
//!
//! Answers are bounded whatever was asked: at most `k` nodes per family and at most
//! `max_values` peers, which keeps every response well inside one UDP datagram.

use std::net::SocketAddr;
use std::time::Instant;

use crate::krpc::{
    ErrorBody, Method, Query, Response, ERR_METHOD_UNKNOWN, ERR_PROTOCOL, ERR_SERVER,
};
use crate::node_id::{NodeId, NodeInfo};
use crate::peer_store::PeerStore;
use crate::routing::{RoutingTable, K};
use crate::token::TokenSecrets;

/// The state an answer reads or updates.
pub struct Responder<'a> {
    pub table: &'a RoutingTable,
    pub tokens: &'a mut TokenSecrets,
    pub store: &'a mut PeerStore,
    /// Most peers in one get_peers answer.
    pub max_values: usize,
}

impl Responder<'_> {
    pub fn answer(
        &mut self,
        q: &Query,
        from: SocketAddr,
        now: Instant,
    ) -> Result<Response, ErrorBody> {
        let own = Some(self.table.own_id());
        match &q.method {
            Method::Ping => Ok(Response {
                id: own,
                ..Default::default()
            }),
            Method::FindNode { target, want } => {
                let (nodes, nodes6) = self.closest(target, want_families(*want, from), now);
                Ok(Response {
                    id: own,
                    nodes,
                    nodes6,
                    ..Default::default()
                })
            }
            Method::GetPeers { info_hash, want } => {
                let values = self
                    .store
                    .get(info_hash, self.max_values, from.is_ipv6(), now);
                // Nodes are sent along with values: they let the querier's lookup converge.
                let (nodes, nodes6) =
                    self.closest(&NodeId::from(*info_hash), want_families(*want, from), now);
                Ok(Response {
                    id: own,
                    nodes,
                    nodes6,
                    values,
                    token: Some(self.tokens.issue(from.ip(), now)),
                })
            }
            Method::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
            } => {
                if !self.tokens.validate(token, from.ip(), now) {
                    return Err(error(ERR_PROTOCOL, "bad token"));
                }
                let port = if *implied_port { from.port() } else { *port };
                if port == 0 {
                    return Err(error(ERR_PROTOCOL, "port 0"));
                }
                if !self
                    .store
                    .announce(*info_hash, SocketAddr::new(from.ip(), port), now)
                {
                    return Err(error(ERR_SERVER, "peer store full"));
                }
                Ok(Response {
                    id: own,
                    ..Default::default()
                })
            }
            Method::Unknown(_) => Err(error(ERR_METHOD_UNKNOWN, "Method Unknown")),
        }
    }

    fn closest(
        &self,
        target: &NodeId,
        (v4, v6): (bool, bool),
        now: Instant,
    ) -> (Vec<NodeInfo>, Vec<NodeInfo>) {
        let family = |want: bool, is_v6: bool| {
            if want {
                self.table
                    .closest_where(target, K, now, |n| n.addr.is_ipv6() == is_v6)
            } else {
                Vec::new()
            }
        };
        (family(v4, false), family(v6, true))
    }
}

/// BEP 32: `want` names the families; without it, the family the query came over.
fn want_families(want: crate::krpc::Want, from: SocketAddr) -> (bool, bool) {
    if want.n4 || want.n6 {
        (want.n4, want.n6)
    } else {
        (from.is_ipv4(), from.is_ipv6())
    }
}

fn error(code: i64, message: &str) -> ErrorBody {
    ErrorBody {
        code,
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krpc::Want;
    use crate::peer_store::PeerStoreLimits;
    use swarm_wire::InfoHash;

    struct World {
        table: RoutingTable,
        tokens: TokenSecrets,
        store: PeerStore,
    }

    impl World {
        fn new(nodes: usize) -> Self {
            let now = Instant::now();
            let mut table = RoutingTable::new(NodeId::random(), now);
            for i in 0..nodes {
                let addr = SocketAddr::from(([10, 0, 0, 1], 1000 + i as u16));
                table.record_response(
                    NodeInfo {
                        id: NodeId::random(),
                        addr,
                    },
                    now,
                );
            }
            World {
                table,
                tokens: TokenSecrets::new(now),
                store: PeerStore::new(PeerStoreLimits::default()),
            }
        }

        fn ask(&mut self, method: Method, from: SocketAddr) -> Result<Response, ErrorBody> {
            let mut r = Responder {
                table: &self.table,
                tokens: &mut self.tokens,
                store: &mut self.store,
                max_values: 50,
            };
            r.answer(
                &Query {
                    id: NodeId::random(),
                    method,
                },
                from,
                Instant::now(),
            )
        }
    }

    fn from(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 168, 1, 1], port))
    }

    #[test]
    fn find_node_returns_at_most_k() {
        let mut w = World::new(300);
        let r = w
            .ask(
                Method::FindNode {
                    target: NodeId::random(),
                    want: Want::default(),
                },
                from(1),
            )
            .unwrap();
        assert_eq!(r.nodes.len(), K);
        assert!(r.nodes6.is_empty());
        assert_eq!(r.id, Some(w.table.own_id()));
    }

    #[test]
    fn announce_needs_our_token_from_the_same_ip() {
        let mut w = World::new(20);
        let ih = InfoHash([7; 20]);
        let r = w
            .ask(
                Method::GetPeers {
                    info_hash: ih,
                    want: Want::default(),
                },
                from(1),
            )
            .unwrap();
        assert!(r.values.is_empty());
        assert_eq!(r.nodes.len(), K);
        let token = r.token.unwrap();
        let announce = |token: Vec<u8>, implied_port| Method::AnnouncePeer {
            info_hash: ih,
            port: 6881,
            implied_port,
            token,
        };
        // From another IP: refused with 203.
        let other = SocketAddr::from(([192, 168, 1, 2], 1));
        assert_eq!(
            w.ask(announce(token.clone(), false), other)
                .unwrap_err()
                .code,
            ERR_PROTOCOL
        );
        assert_eq!(
            w.ask(announce(b"forged".to_vec(), false), from(1))
                .unwrap_err()
                .code,
            ERR_PROTOCOL
        );
        w.ask(announce(token.clone(), false), from(1)).unwrap();
        // implied_port: the source port counts, not the port argument.
        w.ask(announce(token, true), from(4242)).unwrap();
        let r = w
            .ask(
                Method::GetPeers {
                    info_hash: ih,
                    want: Want::default(),
                },
                from(9),
            )
            .unwrap();
        let mut values = r.values;
        values.sort();
        assert_eq!(
            values,
            vec![
                SocketAddr::from(([192, 168, 1, 1], 4242)),
                SocketAddr::from(([192, 168, 1, 1], 6881))
            ]
        );
    }

    #[test]
    fn values_are_bounded() {
        let mut w = World::new(0);
        let ih = InfoHash([7; 20]);
        let now = Instant::now();
        for p in 1..=500u16 {
            w.store
                .announce(ih, SocketAddr::from(([10, 1, 1, 1], p)), now);
        }
        let r = w
            .ask(
                Method::GetPeers {
                    info_hash: ih,
                    want: Want::default(),
                },
                from(1),
            )
            .unwrap();
        assert_eq!(r.values.len(), 50);
    }

    #[test]
    fn unknown_methods_get_204() {
        let mut w = World::new(0);
        assert_eq!(
            w.ask(Method::Unknown("vote".into()), from(1))
                .unwrap_err()
                .code,
            ERR_METHOD_UNKNOWN
        );
    }
}
