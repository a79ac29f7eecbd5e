//! Key permissions for the commands that reach keys they do not name (pattern and tag
//! invalidation, TAGSCAN, STATS): a user limited to some keys acts on, lists and counts only
//! those. An unrestricted user (`~*`, no selectors) skips the per-key checks.

use redis_module::{raw, CallReply, CallResult, Context, ContextFlags, RedisString};
use std::ptr::NonNull;

pub enum Access {
    All,
    Keys(NonNull<raw::RedisModuleUser>),
}

/// What a command intends to do with the keys it reaches.
#[derive(Clone, Copy)]
pub enum Intent {
    Read,
    Invalidate,
}

impl Access {
    pub fn of(ctx: &Context) -> Access {
        let name = current_user(ctx);
        if name.is_null() {
            // No client user: the primary's stream, the AOF, a timer.
            return Access::All;
        }
        let name = RedisString::from_redis_module_string(std::ptr::null_mut(), name);
        if has_all_keys(ctx, &name) {
            return Access::All;
        }
        let user = unsafe { raw::RedisModule_GetModuleUserFromUserName.unwrap()(name.inner) };
        match NonNull::new(user) {
            Some(user) => Access::Keys(user),
            // A user that vanished mid-command may see nothing.
            None => Access::Keys(NonNull::dangling()),
        }
    }

    pub fn is_all(&self) -> bool {
        matches!(self, Access::All)
    }

    pub fn allows(&self, ctx: &Context, key: &[u8], intent: Intent) -> bool {
        let Access::Keys(user) = self else {
            return true;
        };
        if *user == NonNull::dangling() {
            return false;
        }
        let flags = match intent {
            Intent::Read => raw::REDISMODULE_CMD_KEY_ACCESS,
            Intent::Invalidate => raw::REDISMODULE_CMD_KEY_DELETE | raw::REDISMODULE_CMD_KEY_UPDATE,
        };
        let key = RedisString::create_from_slice(ctx.ctx, key);
        unsafe {
            raw::RedisModule_ACLCheckKeyPermissions.unwrap()(user.as_ptr(), key.inner, flags as i32)
                == raw::REDISMODULE_OK as i32
        }
    }
}

impl Drop for Access {
    fn drop(&mut self) {
        if let Access::Keys(user) = self {
            if *user != NonNull::dangling() {
                unsafe { raw::RedisModule_FreeModuleUser.unwrap()(user.as_ptr()) };
            }
        }
    }
}

/// The calling client's user name, or null for clients without a user (the primary's link,
/// the AOF loader), on which `GetCurrentUserName` would crash on 7.0.
fn current_user(ctx: &Context) -> *mut raw::RedisModuleString {
    let internal = ctx
        .get_flags()
        .intersects(ContextFlags::REPLICATED | ContextFlags::LOADING);
    if internal {
        return std::ptr::null_mut();
    }
    unsafe {
        match (
            raw::RedisModule_GetClientUserNameById,
            raw::RedisModule_GetClientId,
        ) {
            (Some(by_id), Some(client_id)) => by_id(ctx.ctx, client_id(ctx.ctx)),
            _ => raw::RedisModule_GetCurrentUserName.unwrap()(ctx.ctx),
        }
    }
}

/// True when `ACL GETUSER` shows the user's keys as exactly `~*` with no selectors.
fn has_all_keys(ctx: &Context, name: &RedisString) -> bool {
    let reply: CallResult = ctx.call_ext(
        "ACL",
        &redis_module::CallOptionsBuilder::new().build(),
        &[b"GETUSER".as_slice(), name.as_slice()][..],
    );
    let Ok(CallReply::Array(fields)) = reply else {
        return false;
    };
    let mut keys_all = false;
    let mut no_selectors = false;
    let items: Vec<_> = fields.iter().collect();
    for pair in items.chunks(2) {
        let [Ok(CallReply::String(field)), Ok(value)] = pair else {
            continue;
        };
        match (field.as_bytes(), value) {
            (b"keys", CallReply::String(v)) => keys_all = v.as_bytes() == b"~*",
            (b"selectors", CallReply::Array(a)) => no_selectors = a.len() == 0,
            _ => {}
        }
    }
    keys_all && no_selectors
}
