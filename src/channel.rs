//! The invalidation channel `__cache@<db>__:invalidate`: one message per invalidation command,
//! whatever the number of entries, so near caches drop their copies at command time.

use crate::server::keys::publish;
use redis_module::{Context, ContextFlags};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Tag,
    Pattern,
}

/// The channel name for database `db`.
pub fn channel(db: i32) -> Vec<u8> {
    format!("__cache@{db}__:invalidate").into_bytes()
}

/// The payload: `tag|softtag|pattern|softpattern <argument as given>`.
pub fn message(kind: Kind, soft: bool, argument: &[u8]) -> Vec<u8> {
    let word: &[u8] = match (kind, soft) {
        (Kind::Tag, false) => b"tag ",
        (Kind::Tag, true) => b"softtag ",
        (Kind::Pattern, false) => b"pattern ",
        (Kind::Pattern, true) => b"softpattern ",
    };
    [word, argument].concat()
}

/// Whether this node tells its own subscribers. Outside a cluster every node does, replicas
/// when they apply the replicated command (a primary's publication never reaches them). In a
/// cluster the server itself carries a publication to every node, so only the node the client
/// called publishes, once.
fn publishes_here(flags: ContextFlags) -> bool {
    if flags.contains(ContextFlags::LOADING) {
        return false;
    }
    !flags.contains(ContextFlags::CLUSTER) || !flags.contains(ContextFlags::REPLICATED)
}

/// Publishes the message for one invalidation command in database `db`.
pub fn announce(ctx: &Context, db: i32, kind: Kind, soft: bool, argument: &[u8]) {
    if publishes_here(ctx.get_flags()) {
        publish(ctx, &channel(db), &message(kind, soft, argument));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_kind_and_argument_verbatim() {
        assert_eq!(message(Kind::Tag, false, b"user:42"), b"tag user:42");
        assert_eq!(message(Kind::Tag, true, b"a b"), b"softtag a b");
        assert_eq!(message(Kind::Pattern, false, b"p*"), b"pattern p*");
        assert_eq!(message(Kind::Pattern, true, b"\0x"), b"softpattern \0x");
        assert_eq!(channel(3), b"__cache@3__:invalidate");
    }

    #[test]
    fn one_publication_per_command() {
        assert!(publishes_here(ContextFlags::empty()));
        assert!(publishes_here(
            ContextFlags::REPLICATED | ContextFlags::SLAVE
        ));
        assert!(publishes_here(ContextFlags::CLUSTER));
        assert!(!publishes_here(
            ContextFlags::CLUSTER | ContextFlags::REPLICATED
        ));
        assert!(!publishes_here(ContextFlags::LOADING));
    }
}
