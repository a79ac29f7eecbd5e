//! Direct replies, so a hit answers without building intermediate values.

use redis_module::{raw, Context};
use std::ffi::CStr;

pub fn array(ctx: &Context, len: usize) {
    raw::reply_with_array(ctx.ctx, len as _);
}

/// A map in RESP3, a flat field/value array in RESP2.
pub fn map(ctx: &Context, len: usize) {
    raw::reply_with_map(ctx.ctx, len as _);
}

pub fn simple(ctx: &Context, text: &CStr) {
    raw::reply_with_simple_string(ctx.ctx, text.as_ptr());
}

pub fn bulk(ctx: &Context, bytes: &[u8]) {
    raw::reply_with_string_buffer(ctx.ctx, bytes.as_ptr().cast(), bytes.len());
}

pub fn bulk_or_null(ctx: &Context, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => bulk(ctx, b),
        None => null(ctx),
    }
}

pub fn null(ctx: &Context) {
    raw::reply_with_null(ctx.ctx);
}

pub fn int(ctx: &Context, n: i64) {
    raw::reply_with_long_long(ctx.ctx, n);
}

/// An error reply; `text` starts with its code (`ERR`, `INCOMPLETE`, ...).
pub fn error(ctx: &Context, text: &str) {
    let clean: String = text.chars().filter(|c| *c != '\0').collect();
    let text = std::ffi::CString::new(clean).unwrap_or_default();
    raw::reply_with_error(ctx.ctx, text.as_ptr());
}
