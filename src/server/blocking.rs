//! Blocked clients: block the calling client, unblock it with a reply payload, and the three
//! callbacks the server makes (reply, timeout, disconnect). What a wake means is decided by the
//! implementor of [`Blocker`] (the WAIT machinery); this file only carries handles and payloads.

use redis_module::{raw, Context};
use std::marker::PhantomData;
use std::os::raw::{c_int, c_void};
use std::ptr::NonNull;

/// What the WAIT machinery does when the server calls back about a blocked client.
pub trait Blocker: 'static {
    /// The payload a module wake hands to the reply callback.
    type Private: 'static;
    /// Replies to a client woken by [`BlockedClient::unblock`] (`None`: woken without payload).
    fn on_reply(ctx: &Context, private: Option<&Self::Private>);
    /// Replies to a client whose wait ran out; `client` identifies it among the waiters.
    fn on_timeout(ctx: &Context, client: ClientId);
    /// Forgets a client that disconnected while blocked.
    fn on_disconnect(client: ClientId);
}

/// Identifies a blocked client (compares handles; never dereferenced).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ClientId(usize);

/// A client blocked by [`block`]; must be unblocked exactly once ([`BlockedClient::unblock`]
/// consumes it).
pub struct BlockedClient<B: Blocker> {
    bc: NonNull<raw::RedisModuleBlockedClient>,
    _blocker: PhantomData<fn() -> B>,
}

// SAFETY: the handle is only used on the main thread (it sits in a Mutex-guarded list so a
// static can hold it); Send is needed only to put it in that static.
unsafe impl<B: Blocker> Send for BlockedClient<B> {}

impl<B: Blocker> BlockedClient<B> {
    pub fn id(&self) -> ClientId {
        ClientId(self.bc.as_ptr() as usize)
    }

    /// Unblocks the client; its reply callback then runs with `private` (if any).
    pub fn unblock(self, private: Option<B::Private>) {
        let private = private.map_or(std::ptr::null_mut(), |p| Box::into_raw(Box::new(p)));
        // SAFETY: `bc` came from BlockClient and is unblocked once (self is consumed); the
        // payload is a `Box<B::Private>`, freed by `free_private::<B>` (registered with the
        // same `B` in `block`).
        unsafe {
            raw::RedisModule_UnblockClient.unwrap()(self.bc.as_ptr(), private.cast::<c_void>());
        }
    }
}

/// Blocks the calling client for at most `timeout_ms`; None where the server refused.
pub fn block<B: Blocker>(ctx: &Context, timeout_ms: i64) -> Option<BlockedClient<B>> {
    // SAFETY: `ctx` is the live context of a command call; the callbacks have the signatures
    // the server expects and are instantiated for the same `B` as the payloads.
    let bc = unsafe {
        raw::RedisModule_BlockClient.unwrap()(
            ctx.ctx,
            Some(on_reply::<B>),
            Some(on_timeout::<B>),
            Some(free_private::<B>),
            timeout_ms,
        )
    };
    let bc = NonNull::new(bc)?;
    // SAFETY: `bc` was just returned by BlockClient and is still blocked.
    unsafe {
        raw::RedisModule_SetDisconnectCallback.unwrap()(bc.as_ptr(), Some(on_disconnect::<B>))
    };
    Some(BlockedClient {
        bc,
        _blocker: PhantomData,
    })
}

extern "C" fn on_reply<B: Blocker>(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    let ctx = Context::new(ctx);
    // SAFETY: the reply callback's context carries the payload given to UnblockClient: null or
    // a `Box<B::Private>` (see `unblock`), alive until `free_private` runs after this callback.
    let private = unsafe { raw::RedisModule_GetBlockedClientPrivateData.unwrap()(ctx.ctx) }
        .cast::<B::Private>();
    // SAFETY: as above; only read.
    B::on_reply(&ctx, unsafe { private.as_ref() });
    raw::REDISMODULE_OK as c_int
}

extern "C" fn on_timeout<B: Blocker>(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    let ctx = Context::new(ctx);
    // SAFETY: the timeout callback's context belongs to the blocked client that timed out.
    let bc = unsafe { raw::RedisModule_GetBlockedClientHandle.unwrap()(ctx.ctx) };
    B::on_timeout(&ctx, ClientId(bc as usize));
    raw::REDISMODULE_OK as c_int
}

extern "C" fn on_disconnect<B: Blocker>(
    _ctx: *mut raw::RedisModuleCtx,
    bc: *mut raw::RedisModuleBlockedClient,
) {
    B::on_disconnect(ClientId(bc as usize));
}

extern "C" fn free_private<B: Blocker>(_ctx: *mut raw::RedisModuleCtx, private: *mut c_void) {
    if !private.is_null() {
        // SAFETY: a non-null payload is the `Box<B::Private>` made in `unblock`, freed once.
        drop(unsafe { Box::from_raw(private.cast::<B::Private>()) });
    }
}
