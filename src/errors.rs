//! Error text as runc words it: callers (podman, Docker, containerd) match on phrases like
//! "no such file or directory" and "permission denied" to pick exit codes and not-found errors.

/// The whole chain, `context: context: cause`, with errno causes in Go's lowercase wording.
pub fn render(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = if let Some(e) = cause.downcast_ref::<nix::Error>() {
            errno_text(*e as i32)
        } else if let Some(e) = cause.downcast_ref::<std::io::Error>() {
            describe(e)
        } else {
            cause.to_string()
        };
        // A context that already embeds its cause (e.g. a child's rendered chain) ends here.
        if parts.last().is_some_and(|p| p.ends_with(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

pub fn describe(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => errno_text(code),
        None => e.to_string(),
    }
}

pub fn errno_text(code: i32) -> String {
    let s = nix::Error::from_raw(code).desc();
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn errno_causes_use_runc_wording() {
        let err = Err::<(), _>(nix::Error::ENOENT)
            .context("open /x")
            .unwrap_err();
        assert_eq!(render(&err), "open /x: no such file or directory");
        let io = std::io::Error::from_raw_os_error(libc::EACCES);
        let err = Err::<(), _>(io).context("exec /bin/x").unwrap_err();
        assert_eq!(render(&err), "exec /bin/x: permission denied");
    }
}
