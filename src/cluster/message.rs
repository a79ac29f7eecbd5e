//! The messages the module's nodes exchange over the cluster bus, encoded and decoded without
//! a server. A payload comes from the network and may come from another module (every module
//! with a short name shares message module id 0), so decoding is bounded, checks a magic and a
//! version, and rejects anything truncated, oversized or followed by extra bytes.
//!
//! Layout (integers little-endian, byte strings as a u32 length then the bytes):
//! `MAGIC` (4) | version u8 | kind u8 (1 request, 2 reply) | request id u64 | body.
//! Request body: op u8 | flags u8 (bit 0 SOFT, bit 1 has user) | db i32 | [user] | op fields.
//! Reply body: op u8 | status u8 (0 ok, 1 error) | error text, or the op's result.

/// The cluster bus message type the module sends and receives.
pub const MESSAGE_TYPE: u8 = 0xCA;
pub const MAGIC: [u8; 4] = *b"RCCH";
pub const VERSION: u8 = 1;
/// No payload larger than this is built or accepted.
pub const MAX_MESSAGE: usize = 64 << 20;
/// The counters a STATS reply carries per scope: the 14 counters, entries, tags.
pub const STAT_WORDS: usize = 16;

const KIND_REQUEST: u8 = 1;
const KIND_REPLY: u8 = 2;
const FLAG_SOFT: u8 = 1;
const FLAG_USER: u8 = 2;

/// What a node asks another to do, on behalf of a client of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Invalidate {
        pattern: Vec<u8>,
        soft: bool,
    },
    InvalidateTag {
        tag: Vec<u8>,
        soft: bool,
    },
    Stats(StatsScope),
    TagScan {
        tag: Vec<u8>,
        cursor: u64,
        count: u32,
        pattern: Option<Vec<u8>>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsScope {
    Totals,
    Namespace(Vec<u8>),
    Namespaces,
    Reset,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: u64,
    pub db: i32,
    /// The ACL user of the client that sent the original command.
    pub user: Option<Vec<u8>>,
    pub op: Op,
}

/// One node's counters: `STAT_WORDS` numbers in the order of `cluster::stats_words`.
pub type StatWords = [u64; STAT_WORDS];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Count(i64),
    Stats(StatWords),
    Namespaces(Vec<(Vec<u8>, StatWords)>),
    Reset,
    Scan { next: u64, keys: Vec<Vec<u8>> },
    Error(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub id: u64,
    pub answer: Answer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Reply(Reply),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Not ours (another module's message of the same type).
    NotOurs,
    /// Ours, but from a newer or older version this build does not read.
    Version(u8),
    /// Truncated, oversized, trailing bytes or an unknown code.
    Malformed,
}

const OP_INVALIDATE: u8 = 1;
const OP_INVALIDATETAG: u8 = 2;
const OP_STATS: u8 = 3;
const OP_TAGSCAN: u8 = 4;

const ANS_COUNT: u8 = 1;
const ANS_STATS: u8 = 2;
const ANS_NAMESPACES: u8 = 3;
const ANS_RESET: u8 = 4;
const ANS_SCAN: u8 = 5;
const ANS_ERROR: u8 = 6;

const SCOPE_TOTALS: u8 = 0;
const SCOPE_NAMESPACE: u8 = 1;
const SCOPE_NAMESPACES: u8 = 2;
const SCOPE_RESET: u8 = 3;

struct Writer(Vec<u8>);

impl Writer {
    fn header(kind: u8, id: u64) -> Writer {
        let mut w = Writer(Vec::with_capacity(64));
        w.0.extend_from_slice(&MAGIC);
        w.0.push(VERSION);
        w.0.push(kind);
        w.u64(id);
        w
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(b);
    }
    fn words(&mut self, w: &StatWords) {
        for v in w {
            self.u64(*v);
        }
    }
    /// None when the message would exceed MAX_MESSAGE (or a string u32::MAX).
    fn finish(self, longest: usize) -> Option<Vec<u8>> {
        (self.0.len() <= MAX_MESSAGE && longest < u32::MAX as usize).then_some(self.0)
    }
}

pub fn encode_request(r: &Request) -> Option<Vec<u8>> {
    let mut w = Writer::header(KIND_REQUEST, r.id);
    let (code, soft) = match &r.op {
        Op::Invalidate { soft, .. } => (OP_INVALIDATE, *soft),
        Op::InvalidateTag { soft, .. } => (OP_INVALIDATETAG, *soft),
        Op::Stats(_) => (OP_STATS, false),
        Op::TagScan { .. } => (OP_TAGSCAN, false),
    };
    w.u8(code);
    let mut flags = if soft { FLAG_SOFT } else { 0 };
    if r.user.is_some() {
        flags |= FLAG_USER;
    }
    w.u8(flags);
    w.0.extend_from_slice(&r.db.to_le_bytes());
    let mut longest = 0;
    if let Some(user) = &r.user {
        longest = user.len();
        w.bytes(user);
    }
    match &r.op {
        Op::Invalidate { pattern: p, .. } | Op::InvalidateTag { tag: p, .. } => {
            longest = longest.max(p.len());
            w.bytes(p);
        }
        Op::Stats(scope) => match scope {
            StatsScope::Totals => w.u8(SCOPE_TOTALS),
            StatsScope::Namespace(name) => {
                w.u8(SCOPE_NAMESPACE);
                longest = longest.max(name.len());
                w.bytes(name);
            }
            StatsScope::Namespaces => w.u8(SCOPE_NAMESPACES),
            StatsScope::Reset => w.u8(SCOPE_RESET),
        },
        Op::TagScan {
            tag,
            cursor,
            count,
            pattern,
        } => {
            longest = longest.max(tag.len());
            w.bytes(tag);
            w.u64(*cursor);
            w.u32(*count);
            match pattern {
                Some(p) => {
                    w.u8(1);
                    longest = longest.max(p.len());
                    w.bytes(p);
                }
                None => w.u8(0),
            }
        }
    }
    w.finish(longest)
}

pub fn encode_reply(r: &Reply) -> Option<Vec<u8>> {
    let mut w = Writer::header(KIND_REPLY, r.id);
    let mut longest = 0;
    match &r.answer {
        Answer::Count(n) => {
            w.u8(ANS_COUNT);
            w.0.extend_from_slice(&n.to_le_bytes());
        }
        Answer::Stats(words) => {
            w.u8(ANS_STATS);
            w.words(words);
        }
        Answer::Namespaces(all) => {
            w.u8(ANS_NAMESPACES);
            w.u32(u32::try_from(all.len()).ok()?);
            for (name, words) in all {
                longest = longest.max(name.len());
                w.bytes(name);
                w.words(words);
                if w.0.len() > MAX_MESSAGE {
                    return None;
                }
            }
        }
        Answer::Reset => w.u8(ANS_RESET),
        Answer::Scan { next, keys } => {
            w.u8(ANS_SCAN);
            w.u64(*next);
            w.u32(u32::try_from(keys.len()).ok()?);
            for k in keys {
                longest = longest.max(k.len());
                w.bytes(k);
                if w.0.len() > MAX_MESSAGE {
                    return None;
                }
            }
        }
        Answer::Error(text) => {
            w.u8(ANS_ERROR);
            longest = text.len();
            w.bytes(text.as_bytes());
        }
    }
    w.finish(longest)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.0.len() {
            return Err(DecodeError::Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    fn words(&mut self) -> Result<StatWords, DecodeError> {
        let mut w = [0u64; STAT_WORDS];
        for v in w.iter_mut() {
            *v = self.u64()?;
        }
        Ok(w)
    }
    /// A count of items, each at least `min` bytes: never more than the bytes left allow, so
    /// a forged count cannot size an allocation.
    fn count(&mut self, min: usize) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min) > self.0.len() {
            return Err(DecodeError::Malformed);
        }
        Ok(n)
    }
    fn end(&self) -> Result<(), DecodeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Malformed)
        }
    }
}

pub fn decode(payload: &[u8]) -> Result<Message, DecodeError> {
    if payload.len() < MAGIC.len() || payload[..MAGIC.len()] != MAGIC {
        return Err(DecodeError::NotOurs);
    }
    if payload.len() > MAX_MESSAGE {
        return Err(DecodeError::Malformed);
    }
    let mut r = Reader(&payload[MAGIC.len()..]);
    let version = r.u8()?;
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let kind = r.u8()?;
    let id = r.u64()?;
    let message = match kind {
        KIND_REQUEST => Message::Request(decode_request(&mut r, id)?),
        KIND_REPLY => Message::Reply(Reply {
            id,
            answer: decode_answer(&mut r)?,
        }),
        _ => return Err(DecodeError::Malformed),
    };
    r.end()?;
    Ok(message)
}

fn decode_request(r: &mut Reader, id: u64) -> Result<Request, DecodeError> {
    let code = r.u8()?;
    let flags = r.u8()?;
    if flags & !(FLAG_SOFT | FLAG_USER) != 0 {
        return Err(DecodeError::Malformed);
    }
    let soft = flags & FLAG_SOFT != 0;
    let d = r.take(4)?;
    let db = i32::from_le_bytes([d[0], d[1], d[2], d[3]]);
    let user = if flags & FLAG_USER != 0 {
        Some(r.bytes()?)
    } else {
        None
    };
    let op = match code {
        OP_INVALIDATE => Op::Invalidate {
            pattern: r.bytes()?,
            soft,
        },
        OP_INVALIDATETAG => Op::InvalidateTag {
            tag: r.bytes()?,
            soft,
        },
        OP_STATS if !soft => Op::Stats(match r.u8()? {
            SCOPE_TOTALS => StatsScope::Totals,
            SCOPE_NAMESPACE => StatsScope::Namespace(r.bytes()?),
            SCOPE_NAMESPACES => StatsScope::Namespaces,
            SCOPE_RESET => StatsScope::Reset,
            _ => return Err(DecodeError::Malformed),
        }),
        OP_TAGSCAN if !soft => {
            let tag = r.bytes()?;
            let cursor = r.u64()?;
            let count = r.u32()?;
            let pattern = match r.u8()? {
                0 => None,
                1 => Some(r.bytes()?),
                _ => return Err(DecodeError::Malformed),
            };
            Op::TagScan {
                tag,
                cursor,
                count,
                pattern,
            }
        }
        _ => return Err(DecodeError::Malformed),
    };
    if db < 0 {
        return Err(DecodeError::Malformed);
    }
    Ok(Request { id, db, user, op })
}

fn decode_answer(r: &mut Reader) -> Result<Answer, DecodeError> {
    Ok(match r.u8()? {
        ANS_COUNT => {
            let b = r.take(8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Answer::Count(i64::from_le_bytes(a))
        }
        ANS_STATS => Answer::Stats(r.words()?),
        ANS_NAMESPACES => {
            let n = r.count(4 + 8 * STAT_WORDS)?;
            let mut all = Vec::with_capacity(n);
            for _ in 0..n {
                let name = r.bytes()?;
                all.push((name, r.words()?));
            }
            Answer::Namespaces(all)
        }
        ANS_RESET => Answer::Reset,
        ANS_SCAN => {
            let next = r.u64()?;
            let n = r.count(4)?;
            let mut keys = Vec::with_capacity(n);
            for _ in 0..n {
                keys.push(r.bytes()?);
            }
            Answer::Scan { next, keys }
        }
        ANS_ERROR => Answer::Error(String::from_utf8_lossy(&r.bytes()?).into_owned()),
        _ => return Err(DecodeError::Malformed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests() -> Vec<Request> {
        let ops = vec![
            Op::Invalidate {
                pattern: b"user:*".to_vec(),
                soft: true,
            },
            Op::InvalidateTag {
                tag: b"a\0b".to_vec(),
                soft: false,
            },
            Op::Stats(StatsScope::Totals),
            Op::Stats(StatsScope::Namespace(b"ns".to_vec())),
            Op::Stats(StatsScope::Namespaces),
            Op::Stats(StatsScope::Reset),
            Op::TagScan {
                tag: b"t".to_vec(),
                cursor: 77,
                count: 10,
                pattern: Some(b"k*".to_vec()),
            },
            Op::TagScan {
                tag: Vec::new(),
                cursor: 0,
                count: 1,
                pattern: None,
            },
        ];
        ops.into_iter()
            .enumerate()
            .map(|(i, op)| Request {
                id: i as u64 * 0x0101_0101_0101,
                db: i as i32,
                user: (i % 2 == 0).then(|| b"tenant\xff".to_vec()),
                op,
            })
            .collect()
    }

    fn replies() -> Vec<Reply> {
        let mut w = [0u64; STAT_WORDS];
        for (i, v) in w.iter_mut().enumerate() {
            *v = (i as u64) << 40 | 3;
        }
        [
            Answer::Count(-1),
            Answer::Count(i64::MAX),
            Answer::Stats(w),
            Answer::Namespaces(vec![(b"a".to_vec(), w), (Vec::new(), [0; STAT_WORDS])]),
            Answer::Namespaces(Vec::new()),
            Answer::Reset,
            Answer::Scan {
                next: 5,
                keys: vec![b"k1".to_vec(), Vec::new()],
            },
            Answer::Error("ERR nope".to_string()),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, answer)| Reply {
            id: u64::MAX - i as u64,
            answer,
        })
        .collect()
    }

    fn all_encoded() -> Vec<(Vec<u8>, Message)> {
        let mut out = Vec::new();
        for r in requests() {
            out.push((encode_request(&r).unwrap(), Message::Request(r)));
        }
        for r in replies() {
            out.push((encode_reply(&r).unwrap(), Message::Reply(r)));
        }
        out
    }

    #[test]
    fn round_trip() {
        for (bytes, msg) in all_encoded() {
            assert_eq!(decode(&bytes), Ok(msg));
        }
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        for (bytes, _) in all_encoded() {
            for cut in 0..bytes.len() {
                let got = decode(&bytes[..cut]);
                assert!(got.is_err(), "truncated at {cut}: {got:?}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(decode(&longer), Err(DecodeError::Malformed));
        }
    }

    #[test]
    fn foreign_and_other_versions() {
        assert_eq!(decode(b""), Err(DecodeError::NotOurs));
        assert_eq!(decode(b"hello world"), Err(DecodeError::NotOurs));
        let (mut bytes, _) = all_encoded().remove(0);
        bytes[4] = 2;
        assert_eq!(decode(&bytes), Err(DecodeError::Version(2)));
        bytes[4] = VERSION;
        bytes[5] = 9;
        assert_eq!(decode(&bytes), Err(DecodeError::Malformed));
    }

    #[test]
    fn forged_counts_and_codes() {
        // A reply claiming 4 billion keys in a few bytes.
        let mut bytes = Writer::header(KIND_REPLY, 1);
        bytes.u8(ANS_SCAN);
        bytes.u64(0);
        bytes.u32(u32::MAX);
        assert_eq!(decode(&bytes.0), Err(DecodeError::Malformed));
        let mut bytes = Writer::header(KIND_REPLY, 1);
        bytes.u8(ANS_NAMESPACES);
        bytes.u32(1_000_000);
        assert_eq!(decode(&bytes.0), Err(DecodeError::Malformed));
        // A string longer than the payload.
        let mut bytes = Writer::header(KIND_REQUEST, 1);
        bytes.u8(OP_INVALIDATETAG);
        bytes.u8(0);
        bytes.0.extend_from_slice(&0i32.to_le_bytes());
        bytes.u32(1000);
        bytes.0.extend_from_slice(b"abc");
        assert_eq!(decode(&bytes.0), Err(DecodeError::Malformed));
        // Unknown op, unknown flag, negative db, SOFT on STATS.
        for (op, flags, db) in [(9u8, 0u8, 0i32), (1, 0x80, 0), (1, 0, -1), (3, 1, 0)] {
            let mut w = Writer::header(KIND_REQUEST, 1);
            w.u8(op);
            w.u8(flags);
            w.0.extend_from_slice(&db.to_le_bytes());
            w.bytes(b"x");
            w.u8(0);
            assert!(decode(&w.0).is_err(), "{op} {flags} {db}");
        }
    }

    #[test]
    fn pseudo_random_garbage_never_panics() {
        let mut x: u64 = 0x1234_5678;
        let base: Vec<Vec<u8>> = all_encoded().into_iter().map(|(b, _)| b).collect();
        for i in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut b = base[i % base.len()].clone();
            let at = (x as usize) % b.len();
            b[at] = (x >> 32) as u8;
            if i % 3 == 0 {
                b.truncate(at.max(4));
            }
            let _ = decode(&b);
        }
    }

    #[test]
    fn oversized_replies_are_not_built() {
        let keys = vec![vec![0u8; 1 << 20]; 65];
        assert!(encode_reply(&Reply {
            id: 1,
            answer: Answer::Scan { next: 0, keys }
        })
        .is_none());
    }
}
