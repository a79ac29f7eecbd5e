//! The strings string configs show to `CONFIG GET`.

use redis_module::{raw, RedisString};
use std::sync::Mutex;

/// The string a string config shows to CONFIG GET. The server copies what the getter returns
/// and never frees it, so one string per value is kept here and handed out again.
pub struct Shown(Mutex<usize>);

impl Default for Shown {
    fn default() -> Shown {
        Shown::new()
    }
}

impl Shown {
    pub const fn new() -> Shown {
        Shown(Mutex::new(0))
    }

    pub fn get(&self, text: &[u8]) -> RedisString {
        let mut cached = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if *cached == 0 {
            // SAFETY: a context-free string (freed by `forget`) from a valid slice.
            let created = unsafe {
                raw::RedisModule_CreateString.unwrap()(
                    std::ptr::null_mut(),
                    text.as_ptr().cast(),
                    text.len(),
                )
            };
            *cached = created as usize;
        }
        // Not retained: the server only reads it, and it is freed when the value changes.
        RedisString::from_redis_module_string(std::ptr::null_mut(), *cached as *mut _)
    }

    pub fn forget(&self) {
        let mut cached = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if *cached != 0 {
            // SAFETY: the string was created by `get` and is freed once (the slot is cleared).
            unsafe {
                raw::RedisModule_FreeString.unwrap()(std::ptr::null_mut(), *cached as *mut _)
            };
            *cached = 0;
        }
    }
}
