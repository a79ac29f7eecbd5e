//! Start-up details of the FFI layer that the crate's `redis_module!` macro does not cover.

use redis_module::raw;

/// Runs inside the `redis_module!` macro's start-up, before the crate registers its defrag
/// hooks. The module has none, but the crate (2.0.8) logs a warning at every start on servers
/// without `RedisModule_RegisterDefragCallbacks` (Redis before 8.0, Valkey): "Skip register
/// defrag callbacks as defrag callbacks is not supported ...". With no start/end callbacks
/// the crate never calls that function, so a no-op stand-in only silences the warning.
pub struct StartupQuiet;

pub static STARTUP_QUIET: StartupQuiet = StartupQuiet;

// SAFETY: it dereferences nothing; the crate never calls it (the module registers no defrag
// callbacks), it only stands in the API slot.
unsafe extern "C" fn no_defrag_callbacks(
    _ctx: *mut raw::RedisModuleCtx,
    _start: raw::RedisModuleDefragFunc,
    _end: raw::RedisModuleDefragFunc,
) -> std::os::raw::c_int {
    raw::REDISMODULE_OK as std::os::raw::c_int
}

impl StartupQuiet {
    /// Called by the macro as if this were a data type (it registers none).
    pub fn create_data_type(&self, _ctx: *mut raw::RedisModuleCtx) -> Result<(), &str> {
        // SAFETY: the server's API pointers were filled in by RedisModule_Init just before,
        // on the main thread; nothing reads this one concurrently.
        unsafe {
            let slot = &raw mut raw::RedisModule_RegisterDefragCallbacks;
            if (*slot).is_none() {
                *slot = Some(no_defrag_callbacks);
            }
        }
        Ok(())
    }
}
