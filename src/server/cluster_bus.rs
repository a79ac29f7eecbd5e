//! The cluster bus and the blocked clients of cluster-wide commands, as raw module API calls
//! behind safe functions. Facts that shape it (redis-server 7.0.15): node ids are 40 bytes
//! without a terminating NUL where the server hands them out, but `SendClusterMessage` and
//! `GetClusterNodeInfo` call `strlen` on theirs, so ids go out in a 41-byte buffer; a receiver
//! cannot be unregistered, so it is registered once and checks every payload.

use crate::cluster::{self, fanout::NodeId, fanout::Outcome};
use redis_module::{raw, CallOptionsBuilder, CallReply, CallResult, Context};
use std::os::raw::{c_char, c_int, c_uchar, c_void};

const ID_LEN: usize = raw::REDISMODULE_NODE_ID_LEN as usize;

/// An id as the server reads it: 40 bytes and a NUL.
fn c_id(id: &NodeId) -> [c_char; ID_LEN + 1] {
    let mut out = [0 as c_char; ID_LEN + 1];
    for (o, b) in out.iter_mut().zip(id.iter()) {
        *o = *b as c_char;
    }
    out
}

/// Copies the 40 bytes at `p` (no NUL is read).
///
/// # Safety
/// `p` is null or points to at least 40 readable bytes.
unsafe fn read_id(p: *const c_char) -> Option<NodeId> {
    if p.is_null() {
        return None;
    }
    let mut id = [0u8; ID_LEN];
    // SAFETY: the caller guarantees 40 readable bytes at `p`.
    let bytes = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), ID_LEN) };
    id.copy_from_slice(bytes);
    Some(id)
}

/// True when the server runs with `cluster-enabled yes`.
pub fn enabled(ctx: &Context) -> bool {
    // SAFETY: GetContextFlags only reads the context the server passed us.
    let flags = unsafe { raw::RedisModule_GetContextFlags.map_or(0, |f| f(ctx.ctx)) } as u32;
    flags & raw::REDISMODULE_CTX_FLAGS_CLUSTER != 0
}

/// True when the calling client may be blocked (not inside MULTI, a script or a function).
pub fn may_block(ctx: &Context) -> bool {
    // SAFETY: as in `enabled`.
    let flags = unsafe { raw::RedisModule_GetContextFlags.map_or(0, |f| f(ctx.ctx)) } as u32;
    let deny = raw::REDISMODULE_CTX_FLAGS_DENY_BLOCKING
        | raw::REDISMODULE_CTX_FLAGS_MULTI
        | raw::REDISMODULE_CTX_FLAGS_LUA;
    flags & deny == 0
}

/// This node's id.
pub fn my_id() -> Option<NodeId> {
    // SAFETY: GetMyClusterID returns null outside a cluster or 40 bytes the server owns.
    unsafe {
        let f = raw::RedisModule_GetMyClusterID?;
        read_id(f())
    }
}

/// True when the server flags `id` as failing (PFAIL or FAIL), or does not know it.
pub fn failing(ctx: &Context, id: &NodeId) -> bool {
    // SAFETY: reads an API pointer the server filled in at load.
    let Some(info) = (unsafe { raw::RedisModule_GetClusterNodeInfo }) else {
        return false;
    };
    let cid = c_id(id);
    let mut flags: c_int = 0;
    // SAFETY: `cid` is NUL-terminated; null out-pointers are allowed for what we do not want.
    let ok = unsafe {
        info(
            ctx.ctx,
            cid.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut flags,
        )
    };
    if ok != raw::REDISMODULE_OK as c_int {
        return true;
    }
    let bad = (raw::REDISMODULE_NODE_PFAIL | raw::REDISMODULE_NODE_FAIL) as c_int;
    flags & bad != 0
}

/// Sends `payload` to node `to`; false if the server could not (unknown node, no link).
pub fn send(ctx: &Context, to: &NodeId, payload: &[u8]) -> bool {
    // SAFETY: reads an API pointer the server filled in at load.
    let Some(send) = (unsafe { raw::RedisModule_SendClusterMessage }) else {
        return false;
    };
    let Ok(len) = u32::try_from(payload.len()) else {
        return false;
    };
    let cid = c_id(to);
    // SAFETY: `cid` is NUL-terminated, `payload` is `len` readable bytes; the server copies it.
    unsafe {
        send(
            ctx.ctx,
            cid.as_ptr(),
            cluster::message::MESSAGE_TYPE,
            payload.as_ptr().cast(),
            len,
        ) == raw::REDISMODULE_OK as c_int
    }
}

/// Registers the module's receiver (once, at load: receivers cannot be unregistered).
pub fn register_receiver(ctx: &Context) -> bool {
    // SAFETY: reads an API pointer the server filled in at load.
    let Some(register) = (unsafe { raw::RedisModule_RegisterClusterMessageReceiver }) else {
        return false;
    };
    // SAFETY: `receive` matches the receiver signature and lives as long as the module.
    unsafe { register(ctx.ctx, cluster::message::MESSAGE_TYPE, Some(receive)) };
    true
}

// SAFETY: the server calls the receiver on the main thread with a live context, the sender's
// id and `len` payload bytes (each use below says what it relies on).
unsafe extern "C" fn receive(
    ctx: *mut raw::RedisModuleCtx,
    sender: *const c_char,
    _kind: u8,
    payload: *const c_uchar,
    len: u32,
) {
    // SAFETY: the server passes the sender's 40-byte id.
    let Some(from) = (unsafe { read_id(sender) }) else {
        return;
    };
    let bytes = if payload.is_null() || len == 0 {
        &[][..]
    } else {
        // SAFETY: the server passes `len` readable bytes, alive for this call.
        unsafe { std::slice::from_raw_parts(payload, len as usize) }
    };
    cluster::on_message(&Context::new(ctx), &from, bytes);
}

/// The primaries serving each slot range, from `CLUSTER SLOTS`; None if it failed.
pub fn slot_ranges(ctx: &Context) -> Option<Vec<(u16, u16, NodeId)>> {
    let reply: CallResult = ctx.call_ext(
        "CLUSTER",
        &CallOptionsBuilder::new().build(),
        &[b"SLOTS".as_slice()][..],
    );
    let Ok(CallReply::Array(ranges)) = reply else {
        return None;
    };
    let mut out = Vec::new();
    for range in ranges.iter() {
        let Ok(CallReply::Array(range)) = range else {
            continue;
        };
        let items: Vec<_> = range.iter().take(3).collect();
        let [Ok(CallReply::I64(start)), Ok(CallReply::I64(end)), Ok(CallReply::Array(node))] =
            &items[..]
        else {
            continue;
        };
        let fields: Vec<_> = node.iter().take(3).collect();
        let Some(Ok(CallReply::String(id))) = fields.get(2) else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u16::try_from(start.to_i64()), u16::try_from(end.to_i64()))
        else {
            continue;
        };
        let id = id.as_bytes();
        if id.len() == ID_LEN {
            let mut node_id = [0u8; ID_LEN];
            node_id.copy_from_slice(id);
            out.push((start, end, node_id));
        }
    }
    Some(out)
}

/// A client blocked by a cluster-wide command.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Blocked(*mut raw::RedisModuleBlockedClient);

// SAFETY: blocked-client handles are used only on the main thread; Send only lets a static
// list hold them.
unsafe impl Send for Blocked {}

/// Blocks the calling client for at most `timeout_ms`; None if the server refused.
pub fn block(ctx: &Context, timeout_ms: i64) -> Option<Blocked> {
    // SAFETY: reads an API pointer the server filled in at load.
    let block = unsafe { raw::RedisModule_BlockClient }?;
    // SAFETY: the callbacks match the server's signatures and outlive the blocked client.
    let bc = unsafe {
        block(
            ctx.ctx,
            Some(on_reply),
            Some(on_timeout),
            Some(free_private),
            timeout_ms,
        )
    };
    if bc.is_null() {
        return None;
    }
    // SAFETY: reads an API pointer the server filled in at load.
    if let Some(set) = unsafe { raw::RedisModule_SetDisconnectCallback } {
        // SAFETY: `bc` was just returned by BlockClient.
        unsafe { set(bc, Some(on_disconnect)) };
    }
    Some(Blocked(bc))
}

/// Unblocks `b` (exactly once per blocked client, even after its timeout or disconnection);
/// its reply callback answers `outcome` if the client is still there.
pub fn unblock(b: Blocked, outcome: Option<Outcome>) {
    let private = outcome.map_or(std::ptr::null_mut(), |o| Box::into_raw(Box::new(o)).cast());
    // SAFETY: reads an API pointer the server filled in at load.
    if let Some(unblock) = unsafe { raw::RedisModule_UnblockClient } {
        // SAFETY: `b` is a live handle not yet unblocked; the server owns `private` from here
        // and hands it to `free_private`.
        unsafe { unblock(b.0, private) };
    } else if !private.is_null() {
        // SAFETY: not handed to the server: still ours.
        drop(unsafe { Box::from_raw(private.cast::<Outcome>()) });
    }
}

extern "C" fn on_reply(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    let ctx = Context::new(ctx);
    // SAFETY: in a reply callback the private data is what `unblock` passed: an Outcome or null.
    let private = unsafe {
        raw::RedisModule_GetBlockedClientPrivateData
            .map_or(std::ptr::null_mut(), |f| f(ctx.ctx))
            .cast::<Outcome>()
            .as_ref()
    };
    cluster::reply_outcome(&ctx, private);
    raw::REDISMODULE_OK as c_int
}

extern "C" fn on_timeout(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    let ctx = Context::new(ctx);
    // SAFETY: in a timeout callback the context belongs to the blocked client.
    let bc = unsafe {
        raw::RedisModule_GetBlockedClientHandle.map_or(std::ptr::null_mut(), |f| f(ctx.ctx))
    };
    cluster::on_timeout(&ctx, Blocked(bc));
    raw::REDISMODULE_OK as c_int
}

extern "C" fn on_disconnect(
    _ctx: *mut raw::RedisModuleCtx,
    bc: *mut raw::RedisModuleBlockedClient,
) {
    cluster::on_disconnect(Blocked(bc));
}

extern "C" fn free_private(_ctx: *mut raw::RedisModuleCtx, private: *mut c_void) {
    if !private.is_null() {
        // SAFETY: every non-null private datum is a Box<Outcome> made by `unblock`.
        drop(unsafe { Box::from_raw(private.cast::<Outcome>()) });
    }
}

/// The cluster bus ports of the nodes this one knows (`ip:port@cport` in `CLUSTER NODES`).
pub fn bus_ports(ctx: &Context) -> Vec<u16> {
    let reply: CallResult = ctx.call_ext(
        "CLUSTER",
        &CallOptionsBuilder::new().build(),
        &[b"NODES".as_slice()][..],
    );
    let text = match reply {
        Ok(CallReply::String(s)) => s.as_bytes().to_vec(),
        _ => return Vec::new(),
    };
    cluster::targets::bus_ports(&String::from_utf8_lossy(&text))
}

/// Sets TCP_NODELAY on the sockets among fds `from..to` whose peer port is one of `ports`:
/// the server's outbound cluster bus links, which it leaves with Nagle's algorithm on, so a
/// small message written while an earlier one (a PUBLISH, a ping) awaits its delayed ACK waits
/// up to 40 ms. Setting the option on any other socket with such a peer port is harmless (the
/// server sets it on client sockets itself).
/// Returns how many were set and the highest descriptor found open.
pub fn nodelay_links(ports: &[u16], from: i32, to: i32) -> (usize, Option<i32>) {
    let mut set = 0;
    let mut highest = None;
    for fd in from..to {
        // SAFETY: sockaddr_storage is large enough for any address; getpeername fails
        // harmlessly (EBADF, ENOTSOCK, ENOTCONN) on anything that is not a connected socket.
        let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let got = unsafe {
            libc::getpeername(
                fd,
                (&mut addr as *mut libc::sockaddr_storage).cast(),
                &mut len,
            )
        };
        if got != 0 {
            if std::io::Error::last_os_error().raw_os_error() != Some(libc::EBADF) {
                highest = Some(fd);
            }
            continue;
        }
        highest = Some(fd);
        let port = match i32::from(addr.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let a = unsafe {
                    &*(&addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
                };
                u16::from_be(a.sin_port)
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let a = unsafe {
                    &*(&addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                };
                u16::from_be(a.sin6_port)
            }
            _ => continue,
        };
        if ports.binary_search(&port).is_err() {
            continue;
        }
        let one: libc::c_int = 1;
        // SAFETY: `fd` is a connected TCP socket; the option value is a c_int we own.
        let ok = unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        } == 0;
        if ok {
            set += 1;
        }
    }
    (set, highest)
}
