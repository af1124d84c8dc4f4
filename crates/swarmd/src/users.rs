//! User and group lookups (the passwd/group databases through libc's reentrant calls), for the
//! socket's group and `[control] allow`. The only unsafe code in swarmd lives here and in
//! `systemd.rs`/`logging.rs`/`control/connection.rs`, each call with its reason.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use swarm_control::nss::with_buffer;

/// A user name or a numeric uid.
pub fn resolve_user(spec: &str) -> Option<u32> {
    if let Ok(uid) = spec.trim().parse::<u32>() {
        return Some(uid);
    }
    let name = CString::new(spec.trim()).ok()?;
    with_buffer(|buf| {
        // SAFETY: all pointers are valid for the call; `pwd` and `buf` outlive it, `result` is
        // checked before use and only the uid (a plain integer) is read from it.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = unsafe {
            libc::getpwnam_r(
                name.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        (rc, (!result.is_null()).then_some(pwd.pw_uid))
    })
}

/// A group name or a numeric gid.
pub fn resolve_group(spec: &str) -> Option<u32> {
    if let Ok(gid) = spec.trim().parse::<u32>() {
        return Some(gid);
    }
    let name = CString::new(spec.trim()).ok()?;
    with_buffer(|buf| {
        // SAFETY: as in `resolve_user`; only the gid is read.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = unsafe {
            libc::getgrnam_r(
                name.as_ptr(),
                &mut grp,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        (rc, (!result.is_null()).then_some(grp.gr_gid))
    })
}

/// The home directory of the current user from the passwd database (for when `$HOME` is unset).
pub fn current_home() -> Option<PathBuf> {
    let uid = swarm_control::paths::current_uid();
    with_buffer(|buf| {
        // SAFETY: as in `resolve_user`; `pw_dir` points into `buf`, which is alive while the
        // string is copied out.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        if result.is_null() || pwd.pw_dir.is_null() {
            return (rc, None);
        }
        let dir = unsafe { CStr::from_ptr(pwd.pw_dir) };
        (
            rc,
            Some(PathBuf::from(std::ffi::OsStr::from_bytes(dir.to_bytes()))),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(resolve_user("root"), Some(0));
        assert_eq!(resolve_user("1234"), Some(1234));
        assert_eq!(resolve_user("no-such-user-swarmd-test"), None);
        assert_eq!(resolve_user("bad\0name"), None);
        assert_eq!(resolve_group("root"), Some(0));
        assert_eq!(resolve_group("55"), Some(55));
        assert_eq!(resolve_group("no-such-group-swarmd-test"), None);
        assert!(current_home().is_some());
    }
}
