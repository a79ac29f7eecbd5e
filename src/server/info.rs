//! `INFO <module>`: registers the info callback and writes one section of fields.

use redis_module::{raw, Context};
use std::os::raw::c_int;

/// The fields of the module's INFO section, in order.
pub trait InfoSection: 'static {
    fn fields() -> Vec<(String, String)>;
}

/// Replaces the macro's default INFO callback (which would need two more crates).
pub fn register<I: InfoSection>(ctx: &Context) {
    raw::register_info_function(ctx.ctx, Some(callback::<I>));
}

extern "C" fn callback<I: InfoSection>(
    ctx: *mut raw::RedisModuleInfoCtx,
    _for_crash_report: c_int,
) {
    let fields = I::fields();
    raw::add_info_section(ctx, None);
    for (name, value) in &fields {
        raw::add_info_field_str(ctx, name, value);
    }
}
