//! Entries in flight between a type callback and the keyspace event that follows it: the
//! callbacks (unlink2, copy2, rdb_load) see the value and its key name, the event does not, so
//! the callback stashes the value here and the event takes it, without opening the key.

use crate::entry::Entry;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Mutex;

/// An entry taken out of a slot by the keyspace event of its key.
pub struct Arriving(*mut Entry);

impl Arriving {
    /// The arriving entry, to index it.
    pub fn entry(&mut self) -> Option<&mut Entry> {
        // SAFETY: the pointer was stashed by a type callback for this very key in this command
        // (or this load), and `free` clears the slot if the server frees the value instead, so
        // it is the live value of the key now; only the main thread takes and dereferences it,
        // and taking empties the slot, so no second `&mut` to it exists.
        unsafe { self.0.as_mut() }
    }
}

/// An entry about to arrive under a name: its value pointer, the name and the database.
/// The pointer is cleared by `free` if the server frees the value instead (RESTORE of an
/// expired TTL, a key dropped while loading), so it never dangles; the name is only read and
/// written on the main thread.
pub struct Slot {
    value: AtomicPtr<Entry>,
    key: Mutex<(Vec<u8>, i32)>,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            value: AtomicPtr::new(ptr::null_mut()),
            key: Mutex::new((Vec::new(), 0)),
        }
    }

    pub fn put(&self, value: *mut Entry, name: &[u8], db: i32) {
        let mut key = self.key.lock().unwrap_or_else(|p| p.into_inner());
        key.0.clear();
        key.0.extend_from_slice(name);
        key.1 = db;
        self.value.store(value, Ordering::Release);
    }

    /// The entry stashed for exactly `name` in `db`, taken out of the slot.
    pub fn take(&self, name: &[u8], db: i32) -> Option<Arriving> {
        let value = self.value.swap(ptr::null_mut(), Ordering::AcqRel);
        if value.is_null() {
            return None;
        }
        let key = self.key.lock().unwrap_or_else(|p| p.into_inner());
        (key.0 == name && key.1 == db).then_some(Arriving(value))
    }

    /// Whatever entry is stashed, taken out of the slot.
    pub fn take_any(&self) -> Option<Arriving> {
        let value = self.value.swap(ptr::null_mut(), Ordering::AcqRel);
        (!value.is_null()).then_some(Arriving(value))
    }

    pub fn matches(&self, name: &[u8], db: i32) -> bool {
        let key = self.key.lock().unwrap_or_else(|p| p.into_inner());
        key.0 == name && key.1 == db
    }

    pub fn clear(&self) {
        self.value.store(ptr::null_mut(), Ordering::Release);
    }

    /// `value` is being freed: forget it if it is the stashed one. Any thread.
    pub fn forget(&self, value: *mut Entry) {
        let _ = self.value.compare_exchange(
            value,
            ptr::null_mut(),
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }
}

/// What the type callbacks tell the keyspace events about entries in flight.
pub struct Arrivals {
    /// `unlink2` of a key whose value may live on (RENAME/MOVE source): consumed by the
    /// `rename_to`/`move_to` that follows its `rename_from`/`move_from`.
    pub moved: Slot,
    /// `copy2`: the copy and its target name and database, consumed by `copy_to`.
    pub copied: Slot,
    /// `rdb_load`: the loaded entry and the name it loads under, consumed by `loaded`/`restore`.
    pub loaded: Slot,
}

pub static ARRIVALS: Arrivals = Arrivals {
    moved: Slot::new(),
    copied: Slot::new(),
    loaded: Slot::new(),
};

impl Arrivals {
    /// From the type's `free` (any thread): the value is gone.
    pub fn forget(&self, value: *mut Entry) {
        self.moved.forget(value);
        self.copied.forget(value);
        self.loaded.forget(value);
    }
}
