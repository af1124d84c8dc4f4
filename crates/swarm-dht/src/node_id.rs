//! 160-bit node ids, the XOR metric, and the (id, address) pair that KRPC calls "node info".
//!
//! Pure: no I/O. Node ids and info-hashes live in the same keyspace, so a lookup for an
//! info-hash is a lookup for the node id with the same bytes.

use std::fmt;
use std::net::SocketAddr;

use rand::Rng;
use swarm_wire::InfoHash;

/// Length of a node id in bytes.
pub const ID_LEN: usize = 20;
/// Length of a node id in bits; also the most buckets a routing table can have.
pub const ID_BITS: usize = ID_LEN * 8;

/// A DHT node id (or an info-hash seen as a point in the keyspace).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub [u8; ID_LEN]);

/// `a XOR b`, compared as a 160-bit big-endian unsigned number (smaller = closer).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Distance(pub [u8; ID_LEN]);

impl NodeId {
    /// A uniformly random id (BEP 42 id restrictions are not applied).
    pub fn random() -> Self {
        NodeId(rand::thread_rng().gen())
    }

    /// `None` unless `bytes` is exactly 20 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; ID_LEN] = bytes.try_into().ok()?;
        Some(NodeId(arr))
    }

    pub fn as_bytes(&self) -> &[u8; ID_LEN] {
        &self.0
    }

    pub fn distance(&self, other: &NodeId) -> Distance {
        let mut d = [0u8; ID_LEN];
        for (i, out) in d.iter_mut().enumerate() {
            *out = self.0[i] ^ other.0[i];
        }
        Distance(d)
    }

    /// How many leading bits `self` and `other` share (160 when equal).
    pub fn common_prefix_len(&self, other: &NodeId) -> usize {
        self.distance(other).leading_zeros()
    }

    /// A random id that shares exactly `prefix_len` leading bits with `self` (the next bit
    /// differs). Used to refresh the bucket that covers that slice of the keyspace.
    /// `prefix_len >= 160` returns `self`.
    pub fn random_with_common_prefix(&self, prefix_len: usize) -> NodeId {
        if prefix_len >= ID_BITS {
            return *self;
        }
        let mut out: [u8; ID_LEN] = rand::thread_rng().gen();
        for bit in 0..=prefix_len {
            let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
            let own = self.0[byte] & mask;
            // Copy the shared prefix, then flip the first bit after it.
            let want = if bit == prefix_len { own ^ mask } else { own };
            out[byte] = (out[byte] & !mask) | want;
        }
        NodeId(out)
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 40 hex digits; `None` on anything else.
    pub fn from_hex(s: &str) -> Option<Self> {
        InfoHash::from_hex(s).map(NodeId::from)
    }
}

impl Distance {
    pub fn leading_zeros(&self) -> usize {
        let mut n = 0;
        for b in self.0 {
            if b == 0 {
                n += 8;
            } else {
                return n + b.leading_zeros() as usize;
            }
        }
        n
    }
}

impl From<InfoHash> for NodeId {
    fn from(h: InfoHash) -> Self {
        NodeId(h.0)
    }
}

impl From<NodeId> for InfoHash {
    fn from(id: NodeId) -> Self {
        InfoHash(id.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.to_hex())
    }
}

/// A contact: a node's id and the UDP address it answers on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct NodeInfo {
    pub id: NodeId,
    pub addr: SocketAddr,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_is_xor_and_ordered() {
        let a = NodeId([0u8; 20]);
        let mut b = [0u8; 20];
        b[19] = 1;
        let b = NodeId(b);
        let mut c = [0u8; 20];
        c[0] = 0x80;
        let c = NodeId(c);
        assert!(a.distance(&b) < a.distance(&c));
        assert_eq!(a.distance(&b), b.distance(&a));
        assert_eq!(a.distance(&a).leading_zeros(), 160);
        assert_eq!(a.common_prefix_len(&b), 159);
        assert_eq!(a.common_prefix_len(&c), 0);
    }

    #[test]
    fn random_with_prefix_shares_exactly_that_prefix() {
        let own = NodeId::random();
        for p in [0, 1, 7, 8, 9, 63, 158, 159] {
            for _ in 0..20 {
                assert_eq!(own.common_prefix_len(&own.random_with_common_prefix(p)), p);
            }
        }
        assert_eq!(own.random_with_common_prefix(160), own);
    }

    #[test]
    fn hex_round_trip() {
        let id = NodeId::random();
        assert_eq!(NodeId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(NodeId::from_bytes(&[1, 2, 3]), None);
    }
}
