//! The host process's shared limits that every app draws on, as opposed to each app's own
//! limits (the sandbox's). Today: file descriptors.

/// The file-descriptor limit after [`raise_fd_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit before.
    pub before: u64,
    /// The soft limit now.
    pub now: u64,
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit. Every file or socket an
/// app opens is one of the supervisor's descriptors, and the usual soft limit (1024) is
/// far below what hundreds of apps need; each app's own share is bounded by its manifest's
/// `handles` budget.
pub fn raise_fd_limit() -> std::io::Result<FdLimit> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let l = getrlimit(Resource::Nofile);
    let before = l.current.unwrap_or(u64::MAX);
    if l.current == l.maximum {
        return Ok(FdLimit { before, now: before });
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: l.maximum,
            maximum: l.maximum,
        },
    )?;
    Ok(FdLimit {
        before,
        now: getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_reaches_the_hard_one() {
        let l = raise_fd_limit().unwrap();
        let now = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(now.current, now.maximum);
        assert!(l.now >= l.before);
        // Idempotent.
        assert_eq!(raise_fd_limit().unwrap().now, l.now);
    }
}
