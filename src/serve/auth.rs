//! Bearer tokens: read from a file (one a line, `#` comments, blank lines skipped), compared in
//! constant time, reloaded on SIGHUP (the server swaps the whole set at once; a file that cannot
//! be read keeps the old set).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The set of accepted tokens, or none at all (no tokens file: every request is let in).
pub struct Tokens {
    file: Option<PathBuf>,
    set: RwLock<Arc<Vec<Vec<u8>>>>,
}

impl Tokens {
    /// Reads `file`; `None` turns auth off.
    pub fn load(file: Option<&Path>) -> Result<Tokens, String> {
        let set = match file {
            Some(f) => read(f)?,
            None => Vec::new(),
        };
        Ok(Tokens { file: file.map(Path::to_path_buf), set: RwLock::new(Arc::new(set)) })
    }

    pub fn enabled(&self) -> bool {
        self.file.is_some()
    }

    /// Reads the file again; returns how many tokens it now holds.
    pub fn reload(&self) -> Result<usize, String> {
        let Some(file) = &self.file else { return Ok(0) };
        let set = read(file)?;
        let n = set.len();
        *self.set.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        Ok(n)
    }

    /// Whether `token` is accepted. Every token is compared in full, whatever matches first, so
    /// the time taken says nothing about how much of a guess was right.
    pub fn check(&self, token: Option<&str>) -> bool {
        if !self.enabled() {
            return true;
        }
        let Some(token) = token else { return false };
        let set = Arc::clone(&self.set.read().unwrap_or_else(|e| e.into_inner()));
        let mut found = 0u8;
        for t in set.iter() {
            found |= constant_time_eq(t, token.as_bytes()) as u8;
        }
        found == 1
    }
}

fn read(file: &Path) -> Result<Vec<Vec<u8>>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("tokens file '{}': {e}", file.display()))?;
    let set: Vec<Vec<u8>> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| l.as_bytes().to_vec())
        .collect();
    if set.is_empty() {
        return Err(format!("tokens file '{}' holds no token", file.display()));
    }
    Ok(set)
}

/// Equal bytes, in time that depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() != b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// The token of a request: `Authorization: Bearer TOKEN`, else the `token` query parameter (a
/// browser's WebSocket cannot set headers).
pub fn request_token<'a>(authorization: Option<&'a str>, query_token: Option<&'a str>) -> Option<&'a str> {
    authorization
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .or(query_token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_in_full() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        let dir = std::env::temp_dir().join(format!("rm-tokens-{}", std::process::id()));
        std::fs::write(&dir, "# clients\nalpha\n  beta  # second\n\n").unwrap();
        let t = Tokens::load(Some(&dir)).unwrap();
        assert!(t.check(Some("alpha")) && t.check(Some("beta")));
        assert!(!t.check(Some("alph")) && !t.check(None) && !t.check(Some("")));
        std::fs::write(&dir, "gamma\n").unwrap();
        assert_eq!(t.reload().unwrap(), 1);
        assert!(!t.check(Some("alpha")) && t.check(Some("gamma")));
        std::fs::write(&dir, "# none\n").unwrap();
        assert!(t.reload().is_err());
        assert!(t.check(Some("gamma")), "a bad file keeps the old set");
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(request_token(Some("Bearer xyz"), Some("q")), Some("xyz"));
        assert_eq!(request_token(None, Some("q")), Some("q"));
        assert_eq!(request_token(Some("Basic xyz"), None), None);
    }
}
