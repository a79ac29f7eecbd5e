//! Every error text the module replies with, in one place, in Redis's own words.

use redis_module::RedisError;

pub fn syntax() -> RedisError {
    RedisError::Str("ERR syntax error")
}

pub fn not_an_integer() -> RedisError {
    RedisError::Str("ERR value is not an integer or out of range")
}

pub fn invalid_expire() -> RedisError {
    RedisError::Str("ERR invalid expire time in 'cache.settagged' command")
}

pub fn too_many_tags(max: i64) -> RedisError {
    RedisError::String(format!("ERR too many tags (max {max})"))
}

pub fn invalid_lease() -> RedisError {
    RedisError::Str("ERR invalid lease time")
}

pub fn invalid_wait() -> RedisError {
    RedisError::Str("ERR invalid wait time")
}

pub fn invalid_cursor() -> RedisError {
    RedisError::Str("ERR invalid cursor")
}

pub fn wrong_type() -> RedisError {
    RedisError::WrongType
}

pub fn could_not_store() -> RedisError {
    RedisError::Str("ERR could not store the entry")
}

pub fn bad_delimiter() -> RedisError {
    RedisError::Str("the delimiter must be exactly one byte")
}

pub fn bad_early_beta() -> RedisError {
    RedisError::Str("early-beta must be a number from 0 to 100")
}

pub fn no_permission() -> RedisError {
    RedisError::Str(
        "NOPERM this user has no permissions to access one of the keys used as arguments",
    )
}

/// Parse failures name what was wrong; the reply is always Redis's own text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    Arity,
    Syntax,
    NotAnInteger,
    InvalidExpire,
    /// More distinct tags than `cache.max-tags` (the limit it was checked against).
    TooManyTags(usize),
    InvalidLease,
    InvalidWait,
    InvalidCursor,
}

impl From<ParseError> for RedisError {
    fn from(e: ParseError) -> RedisError {
        match e {
            ParseError::Arity => RedisError::WrongArity,
            ParseError::Syntax => syntax(),
            ParseError::NotAnInteger => not_an_integer(),
            ParseError::InvalidExpire => invalid_expire(),
            ParseError::TooManyTags(max) => too_many_tags(max as i64),
            ParseError::InvalidLease => invalid_lease(),
            ParseError::InvalidWait => invalid_wait(),
            ParseError::InvalidCursor => invalid_cursor(),
        }
    }
}
