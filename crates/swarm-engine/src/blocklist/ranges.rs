//! # RangeSet — the blocklist's rules as sorted, merged address ranges (pure: no I/O)
//!
//! A blocklist of a few hundred thousand ranges (an eMule `ipfilter.dat` has ~250 000) is asked
//! about every peer address the engine meets, so the set is two sorted arrays per family, starts
//! and inclusive ends, with no two ranges overlapping or touching: a lookup is one binary search
//! over the starts (`partition_point`) and one compare with the end before it. IPv4 costs 8 bytes
//! a range, IPv6 32; no tree nodes, no per-range allocation (measured in docs/benchmarks.md,
//! `cargo bench -p swarm-engine --bench blocklist`).
//!
//! An IPv4 address written as IPv6 (`::ffff:1.2.3.4`, as a dual-stack socket reports an IPv4
//! peer) is checked against the IPv4 ranges, and IPv6 ranges that lie inside `::ffff:0:0/96` are
//! stored as IPv4 ranges, so one rule covers both spellings.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Sorted, merged, non-overlapping inclusive ranges, IPv4 and IPv6 apart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeSet {
    v4: Ranges<u32>,
    v6: Ranges<u128>,
}

/// Struct of arrays: the binary search walks `starts` only, which keeps it in fewer cache lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Ranges<T> {
    starts: Vec<T>,
    ends: Vec<T>,
}

trait Address: Copy + Ord {
    /// `self + 1`, or `None` at the top of the family's space.
    fn next(self) -> Option<Self>;
}

impl Address for u32 {
    fn next(self) -> Option<Self> {
        self.checked_add(1)
    }
}

impl Address for u128 {
    fn next(self) -> Option<Self> {
        self.checked_add(1)
    }
}

impl<T: Address> Ranges<T> {
    /// Sorts and merges `(start, end)` pairs (each with `start <= end`): overlapping and
    /// adjacent ranges become one.
    fn build(mut pairs: Vec<(T, T)>) -> Self {
        pairs.sort_unstable();
        let mut out = Ranges {
            starts: Vec::with_capacity(pairs.len()),
            ends: Vec::with_capacity(pairs.len()),
        };
        for (start, end) in pairs {
            if let Some(last) = out.ends.last_mut() {
                // Touching (`last + 1 == start`) merges too; `None` means `last` is the top.
                if Address::next(*last).is_none_or(|after| start <= after) {
                    *last = (*last).max(end);
                    continue;
                }
            }
            out.starts.push(start);
            out.ends.push(end);
        }
        out.starts.shrink_to_fit();
        out.ends.shrink_to_fit();
        out
    }

    fn contains(&self, x: T) -> bool {
        let after = self.starts.partition_point(|&s| s <= x);
        after > 0 && self.ends[after - 1] >= x
    }

    fn len(&self) -> usize {
        self.starts.len()
    }

    fn bytes(&self) -> usize {
        (self.starts.capacity() + self.ends.capacity()) * std::mem::size_of::<T>()
    }
}

/// Collects ranges in any order; [`RangeSetBuilder::build`] sorts and merges them.
#[derive(Debug, Default)]
pub struct RangeSetBuilder {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

/// The range of IPv4-mapped IPv6 addresses, `::ffff:0:0/96`.
const MAPPED: (u128, u128) = (0xffff_0000_0000, 0xffff_ffff_ffff);

impl RangeSetBuilder {
    /// Adds the inclusive range `start..=end` of one family (the parser checks both, see
    /// `parse.rs`); a reversed range is taken the right way round.
    pub fn add_v4(&mut self, start: Ipv4Addr, end: Ipv4Addr) {
        let (a, b) = (u32::from(start), u32::from(end));
        self.v4.push((a.min(b), a.max(b)));
    }

    pub fn add_v6(&mut self, start: Ipv6Addr, end: Ipv6Addr) {
        let (a, b) = (u128::from(start), u128::from(end));
        let (a, b) = (a.min(b), a.max(b));
        if MAPPED.0 <= a && b <= MAPPED.1 {
            // Written as IPv6, meant as IPv4: stored where IPv4 lookups find it.
            self.v4.push((a as u32, b as u32));
        } else {
            self.v6.push((a, b));
        }
    }

    /// Ranges added so far (before merging).
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn build(self) -> RangeSet {
        RangeSet {
            v4: Ranges::build(self.v4),
            v6: Ranges::build(self.v6),
        }
    }
}

impl RangeSet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self.v4.contains(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                // A v6 range may still cover the mapped space as a whole (`::/0`).
                Some(v4) => self.v4.contains(u32::from(v4)) || self.v6.contains(u128::from(v6)),
                None => self.v6.contains(u128::from(v6)),
            },
        }
    }

    /// Merged ranges: IPv4, IPv6.
    pub fn counts(&self) -> (usize, usize) {
        (self.v4.len(), self.v6.len())
    }

    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes the ranges take.
    pub fn heap_bytes(&self) -> usize {
        self.v4.bytes() + self.v6.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn set4(ranges: &[(&str, &str)]) -> RangeSet {
        let mut b = RangeSetBuilder::default();
        for (a, z) in ranges {
            b.add_v4(v4(a), v4(z));
        }
        b.build()
    }

    fn has(set: &RangeSet, ip: &str) -> bool {
        set.contains(ip.parse().unwrap())
    }

    #[test]
    fn edges_are_inclusive() {
        let set = set4(&[("10.0.0.5", "10.0.0.9")]);
        assert!(!has(&set, "10.0.0.4"));
        assert!(has(&set, "10.0.0.5"));
        assert!(has(&set, "10.0.0.9"));
        assert!(!has(&set, "10.0.0.10"));
        assert!(!has(&RangeSet::default(), "10.0.0.5"), "empty set");
    }

    #[test]
    fn overlapping_and_nested_ranges_merge() {
        let set = set4(&[
            ("10.0.0.20", "10.0.0.40"),
            ("10.0.0.10", "10.0.0.30"),
            ("10.0.0.15", "10.0.0.16"),
            ("10.0.0.50", "10.0.0.60"),
        ]);
        assert_eq!(set.counts(), (2, 0));
        assert!(has(&set, "10.0.0.10") && has(&set, "10.0.0.40"));
        assert!(!has(&set, "10.0.0.41") && !has(&set, "10.0.0.49"));
        assert!(has(&set, "10.0.0.55"));
    }

    #[test]
    fn adjacent_ranges_merge_but_a_gap_of_one_stays() {
        let touching = set4(&[("1.0.0.0", "1.0.0.255"), ("1.0.1.0", "1.0.1.255")]);
        assert_eq!(touching.counts(), (1, 0));
        let gap = set4(&[("1.0.0.0", "1.0.0.254"), ("1.0.1.0", "1.0.1.255")]);
        assert_eq!(gap.counts(), (2, 0));
        assert!(!has(&gap, "1.0.0.255"));
    }

    #[test]
    fn the_ends_of_the_address_space() {
        let set = set4(&[
            ("0.0.0.0", "0.0.0.0"),
            ("255.255.255.0", "255.255.255.255"),
            ("255.255.255.255", "255.255.255.255"),
        ]);
        assert_eq!(set.counts(), (2, 0));
        assert!(has(&set, "0.0.0.0") && !has(&set, "0.0.0.1"));
        assert!(has(&set, "255.255.255.255") && !has(&set, "255.255.254.255"));
        let all = set4(&[("0.0.0.0", "255.255.255.255"), ("1.2.3.4", "1.2.3.4")]);
        assert_eq!(all.counts(), (1, 0));
        let mut b = RangeSetBuilder::default();
        b.add_v6(Ipv6Addr::UNSPECIFIED, Ipv6Addr::from(u128::MAX));
        b.add_v6("::1".parse().unwrap(), "::2".parse().unwrap());
        assert_eq!(b.build().counts(), (0, 1));
    }

    #[test]
    fn ipv6_ranges_apart_from_ipv4() {
        let mut b = RangeSetBuilder::default();
        b.add_v6(
            "2001:db8::".parse().unwrap(),
            "2001:db8::ffff".parse().unwrap(),
        );
        b.add_v4(v4("10.0.0.0"), v4("10.255.255.255"));
        let set = b.build();
        assert_eq!(set.counts(), (1, 1));
        assert!(has(&set, "2001:db8::1234"));
        assert!(!has(&set, "2001:db8::1:0"));
        assert!(
            !has(&set, "::a00:1"),
            "an IPv4-compatible (not mapped) address is IPv6"
        );
    }

    #[test]
    fn mapped_ipv6_addresses_are_checked_against_ipv4_ranges() {
        let set = set4(&[("127.0.0.2", "127.0.0.2")]);
        assert!(has(&set, "::ffff:127.0.0.2"));
        assert!(!has(&set, "::ffff:127.0.0.3"));
        // A rule written in the mapped form blocks the IPv4 spelling too.
        let mut b = RangeSetBuilder::default();
        b.add_v6(
            "::ffff:192.168.0.0".parse().unwrap(),
            "::ffff:192.168.255.255".parse().unwrap(),
        );
        let set = b.build();
        assert_eq!(set.counts(), (1, 0));
        assert!(has(&set, "192.168.7.7") && has(&set, "::ffff:192.168.7.7"));
        // A v6 range over the whole mapped space (and more) still covers a mapped address.
        let mut b = RangeSetBuilder::default();
        b.add_v6(Ipv6Addr::UNSPECIFIED, "::1:0:0:0".parse().unwrap());
        let set = b.build();
        assert!(has(&set, "::ffff:8.8.8.8"));
        assert!(
            !has(&set, "8.8.8.8"),
            "an IPv4 peer is checked against IPv4 ranges only"
        );
    }

    #[test]
    fn reversed_ranges_are_turned_round() {
        let set = set4(&[("10.0.0.9", "10.0.0.5")]);
        assert!(has(&set, "10.0.0.7"));
    }

    #[test]
    fn lookups_agree_with_a_linear_scan() {
        // Pseudo-random ranges (xorshift), checked against the unmerged list.
        let mut x = 0x2545_f491_u32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let pairs: Vec<(u32, u32)> = (0..2000)
            .map(|_| {
                let a = next();
                (a, a.saturating_add(next() % 5000))
            })
            .collect();
        let mut b = RangeSetBuilder::default();
        for &(a, z) in &pairs {
            b.add_v4(a.into(), z.into());
        }
        let set = b.build();
        for _ in 0..20_000 {
            let probe = next();
            let linear = pairs.iter().any(|&(a, z)| a <= probe && probe <= z);
            assert_eq!(
                set.contains(Ipv4Addr::from(probe).into()),
                linear,
                "{probe}"
            );
        }
    }
}
