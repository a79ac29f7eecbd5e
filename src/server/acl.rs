//! Key permissions for the commands that reach keys they do not name (pattern and tag
//! invalidation, TAGSCAN, STATS): a user limited to some keys acts on, lists and counts only
//! those. Keys handled inside the command are checked one by one (a flag test for users with
//! every key); whether the user has every key (`~*`, no selectors) is asked of the server only
//! when work would be left to the background sweep, which runs without a user.

use redis_module::{raw, CallReply, CallResult, Context, ContextFlags, RedisString};
use std::cell::Cell;
use std::ptr::NonNull;

pub struct Access {
    /// None: no client user (the primary's stream, the AOF): everything is allowed.
    user: Option<User>,
    all_keys: Cell<Option<bool>>,
}

struct User {
    name: RedisString,
    /// None: the user vanished mid-command; it may see nothing.
    handle: Option<NonNull<raw::RedisModuleUser>>,
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
        let name = (!name.is_null())
            .then(|| RedisString::from_redis_module_string(std::ptr::null_mut(), name));
        Access::of_user(name)
    }

    /// The access of the user named `name` (a command forwarded from another node on behalf
    /// of that user); None: no user, everything is allowed. A user this server does not know
    /// may touch nothing.
    pub fn for_user(ctx: &Context, name: Option<&[u8]>) -> Access {
        Access::of_user(name.map(|name| RedisString::create_from_slice(ctx.ctx, name)))
    }

    fn of_user(name: Option<RedisString>) -> Access {
        let user = name.map(|name| {
            // SAFETY: `name` is a live string owned by the User; the server returns a new user
            // handle (or null for an unknown or deleted user), freed in Drop.
            let handle = unsafe { raw::RedisModule_GetModuleUserFromUserName.unwrap()(name.inner) };
            User {
                name,
                handle: NonNull::new(handle),
            }
        });
        Access {
            user,
            all_keys: Cell::new(None),
        }
    }

    /// The user's name; None for no user.
    pub fn user_name(&self) -> Option<Vec<u8>> {
        self.user.as_ref().map(|u| u.name.as_slice().to_vec())
    }

    /// True when the user may touch every key, so work can go to the sweeper unchecked.
    pub fn covers_all(&self, ctx: &Context) -> bool {
        let Some(user) = &self.user else {
            return true;
        };
        if let Some(known) = self.all_keys.get() {
            return known;
        }
        let all = user.handle.is_some() && has_all_keys(ctx, &user.name);
        self.all_keys.set(Some(all));
        all
    }

    pub fn allows(&self, ctx: &Context, key: &[u8], intent: Intent) -> bool {
        let Some(user) = &self.user else {
            return true;
        };
        let Some(handle) = user.handle else {
            return false;
        };
        let flags = match intent {
            Intent::Read => raw::REDISMODULE_CMD_KEY_ACCESS,
            Intent::Invalidate => raw::REDISMODULE_CMD_KEY_DELETE | raw::REDISMODULE_CMD_KEY_UPDATE,
        };
        let key = RedisString::create_from_slice(ctx.ctx, key);
        // SAFETY: `handle` is the user handle this Access owns (freed only in Drop); `key` is a
        // live string for the duration of the call.
        unsafe {
            raw::RedisModule_ACLCheckKeyPermissions.unwrap()(
                handle.as_ptr(),
                key.inner,
                flags as i32,
            ) == raw::REDISMODULE_OK as i32
        }
    }
}

impl Drop for Access {
    fn drop(&mut self) {
        if let Some(User {
            handle: Some(handle),
            ..
        }) = &self.user
        {
            // SAFETY: the handle came from GetModuleUserFromUserName and is freed once, here.
            unsafe { raw::RedisModule_FreeModuleUser.unwrap()(handle.as_ptr()) };
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
    // SAFETY: `ctx` is the call's context of a client with a user (checked above: the
    // replication link and the AOF loader have none); the API pointers are set at load.
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
