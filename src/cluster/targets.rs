//! Who a cluster-wide command asks: the primaries that own slots, as `CLUSTER SLOTS` shows
//! them (a failed primary replaced by its replica owns none and is not waited for), in the
//! order of their lowest slot, which is the order TAGSCAN walks them in. Pure.

use super::fanout::NodeId;

/// One slot range and the id of the primary serving it.
pub type SlotRange = (u16, u16, NodeId);

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Topology {
    /// Slot-owning primaries, by lowest slot.
    pub shards: Vec<NodeId>,
}

impl Topology {
    pub fn from_ranges(ranges: &[SlotRange]) -> Topology {
        let mut lowest: Vec<(u16, NodeId)> = Vec::new();
        for (start, end, id) in ranges {
            if start > end {
                continue;
            }
            match lowest.iter_mut().find(|(_, n)| n == id) {
                Some((low, _)) => *low = (*low).min(*start),
                None => lowest.push((*start, *id)),
            }
        }
        lowest.sort_unstable();
        Topology {
            shards: lowest.into_iter().map(|(_, id)| id).collect(),
        }
    }

    pub fn owns_slots(&self, me: &NodeId) -> bool {
        self.shards.contains(me)
    }

    /// Every slot owner but `me`.
    pub fn others(&self, me: &NodeId) -> Vec<NodeId> {
        self.shards.iter().filter(|n| *n != me).copied().collect()
    }
}

/// The cluster bus ports in `CLUSTER NODES` output (`ip:port@cport[,hostname]`), sorted.
pub fn bus_ports(nodes: &str) -> Vec<u16> {
    let mut ports: Vec<u16> = nodes
        .lines()
        .filter_map(|line| {
            let addr = line.split(' ').nth(1)?;
            let cport = addr.split('@').nth(1)?;
            cport.split(',').next()?.parse().ok()
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_ports_from_cluster_nodes() {
        let text = "a 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460\n\
                    b 127.0.0.1:7001@17001,host.example master - 0 0 2 connected\n\
                    c :0@0 master,noaddr - 0 0 3 disconnected\n\
                    garbage\n\
                    d 127.0.0.1:7002@x slave a 0 0 1 connected\n";
        assert_eq!(bus_ports(text), vec![0, 17000, 17001]);
        assert!(bus_ports("").is_empty());
    }

    fn id(n: u8) -> NodeId {
        [b'0' + n; 40]
    }

    #[test]
    fn shards_in_slot_order_without_duplicates() {
        let t = Topology::from_ranges(&[
            (10923, 16383, id(3)),
            (0, 5000, id(1)),
            (5461, 10922, id(2)),
            (5001, 5460, id(3)),
            (9, 1, id(4)),
        ]);
        assert_eq!(t.shards, vec![id(1), id(3), id(2)]);
        assert!(t.owns_slots(&id(2)));
        assert!(!t.owns_slots(&id(4)), "an empty range owns nothing");
        assert_eq!(t.others(&id(3)), vec![id(1), id(2)]);
        assert_eq!(t.others(&id(9)).len(), 3, "a replica asks every owner");
        assert!(Topology::from_ranges(&[]).shards.is_empty());
    }
}
