//! The passwd/group databases through libc's reentrant calls: the one buffer loop they all need,
//! and the group name a client shows when the daemon's socket is closed to it. swarmd's own
//! lookups (`[control] group`, `allow`) use the same loop.

use std::ffi::CStr;

/// Buffer size for the `_r` calls; grown on `ERANGE`, capped so a broken NSS module cannot make
/// us allocate without bound.
const START_BUF: usize = 1024;
const MAX_BUF: usize = 1 << 20;

/// Runs one `get*_r` call with a buffer, growing the buffer while the call says `ERANGE`. `call`
/// returns the call's status and what it found.
pub fn with_buffer<T>(
    mut call: impl FnMut(&mut [libc::c_char]) -> (libc::c_int, Option<T>),
) -> Option<T> {
    let mut size = START_BUF;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        match call(&mut buf) {
            (libc::ERANGE, _) if size < MAX_BUF => size *= 2,
            (_, found) => return found,
        }
    }
}

/// The name of group `gid`, if the group database has one.
pub fn group_name(gid: u32) -> Option<String> {
    with_buffer(|buf| {
        // SAFETY: all pointers are valid for the call; `grp` and `buf` outlive it, `result` is
        // checked before use, and `gr_name` points into `buf`, alive while it is copied out.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc =
            unsafe { libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut result) };
        if result.is_null() || grp.gr_name.is_null() {
            return (rc, None);
        }
        let name = unsafe { CStr::from_ptr(grp.gr_name) };
        (rc, Some(name.to_string_lossy().into_owned()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names() {
        assert_eq!(group_name(0).as_deref(), Some("root"));
        assert_eq!(group_name(u32::MAX - 7), None);
    }
}
