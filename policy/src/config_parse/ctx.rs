//! Error collection, byte-offset to line conversion and path resolution for one file.

use std::io::ErrorKind;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::error::ConfigError;

/// A value read from the file with where it came from, for later validation messages.
#[derive(Debug, Clone)]
pub(super) struct Spanned<T> {
    pub value: T,
    pub line: usize,
    /// Dotted key path, e.g. `tenant[0].account[1].senders[2]`.
    pub key: String,
}

pub(super) struct Ctx<'t> {
    text: &'t str,
    /// Byte offsets of every `\n`, for binary search.
    newlines: Vec<usize>,
    base_dir: PathBuf,
    pub errors: Vec<ConfigError>,
}

impl<'t> Ctx<'t> {
    pub fn new(text: &'t str, base_dir: PathBuf) -> Self {
        let newlines = text.match_indices('\n').map(|(i, _)| i).collect();
        Ctx {
            text,
            newlines,
            base_dir,
            errors: Vec::new(),
        }
    }

    /// 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        // An error at the end of a file that ends in a newline (TOML reports an unfinished
        // key there) is on its last line, not on one after it.
        let lines = self.newlines.len() + usize::from(!self.text.ends_with('\n'));
        (self.newlines.partition_point(|&n| n < offset) + 1).min(lines.max(1))
    }

    pub fn span_line(&self, span: Option<Range<usize>>) -> Option<usize> {
        span.map(|r| self.line_of(r.start))
    }

    pub fn error(&mut self, line: usize, key: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            line,
            key: key.into(),
            message: message.into(),
        });
    }

    /// Reports `message` against the value's own line and key.
    pub fn bad<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        self.error(at.line, at.key.clone(), message);
    }

    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// Resolves a configured path against the configuration file's directory.
    pub fn path(&mut self, s: &Spanned<String>) -> PathBuf {
        if s.value.is_empty() {
            self.bad(s, "empty path");
            return PathBuf::new();
        }
        let joined = self.base_dir.join(&s.value);
        // `absolute` only consults the working directory; it neither follows nor needs the file.
        std::path::absolute(&joined).unwrap_or(joined)
    }

    /// Like [`Ctx::path`], and the file must exist, be a regular file and be readable now.
    pub fn readable_file(&mut self, s: &Spanned<String>) -> PathBuf {
        let path = self.path(s);
        if path.as_os_str().is_empty() {
            return path;
        }
        match std::fs::metadata(&path) {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.bad(s, format!("file not found: {}", path.display()));
            }
            Err(e) => self.bad(s, format!("cannot access {}: {e}", path.display())),
            Ok(m) if !m.is_file() => {
                self.bad(s, format!("not a regular file: {}", path.display()));
            }
            Ok(_) => {
                if let Err(e) = std::fs::File::open(&path) {
                    self.bad(s, format!("file not readable: {}: {e}", path.display()));
                }
            }
        }
        path
    }
}

/// The directory relative paths in `source` are resolved against.
pub(super) fn base_dir(source: &Path) -> PathBuf {
    match source.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based_and_count_newlines_before_offset() {
        let ctx = Ctx::new("a\nbb\n\nc", PathBuf::from("/"));
        assert_eq!(ctx.line_of(0), 1);
        assert_eq!(ctx.line_of(1), 1); // the newline itself still belongs to line 1
        assert_eq!(ctx.line_of(2), 2);
        assert_eq!(ctx.line_of(5), 3);
        assert_eq!(ctx.line_of(6), 4);
        assert_eq!(ctx.line_of(999), 4);
    }

    /// Found by the `config` fuzz target: an error at the very end of a file that ends in a
    /// newline was reported on the line after the last.
    #[test]
    fn the_end_of_a_file_is_on_its_last_line() {
        let ctx = Ctx::new("a\nbb\n", PathBuf::from("/"));
        assert_eq!(ctx.line_of(5), 2);
        assert_eq!(ctx.line_of(999), 2);
        assert_eq!(Ctx::new("\n", PathBuf::from("/")).line_of(1), 1);
        assert_eq!(Ctx::new("", PathBuf::from("/")).line_of(0), 1);
    }

    #[test]
    fn relative_paths_resolve_against_the_config_directory() {
        let mut ctx = Ctx::new("", PathBuf::from("/etc/demail"));
        let s = Spanned {
            value: "tls/a.pem".to_string(),
            line: 3,
            key: "k".into(),
        };
        assert_eq!(ctx.path(&s), PathBuf::from("/etc/demail/tls/a.pem"));
        let abs = Spanned {
            value: "/x/y".to_string(),
            ..s
        };
        assert_eq!(ctx.path(&abs), PathBuf::from("/x/y"));
        assert!(ctx.errors.is_empty());
        assert_eq!(base_dir(Path::new("demail.toml")), PathBuf::from("."));
        assert_eq!(
            base_dir(Path::new("/etc/demail/demail.toml")),
            PathBuf::from("/etc/demail")
        );
    }

    #[test]
    fn missing_file_is_reported_with_its_path() {
        let mut ctx = Ctx::new("", PathBuf::from("/nonexistent-demail-dir"));
        let s = Spanned {
            value: "tls/missing.pem".to_string(),
            line: 7,
            key: "gateway.client_certificate".into(),
        };
        ctx.readable_file(&s);
        assert_eq!(ctx.errors.len(), 1);
        assert_eq!(ctx.errors[0].line, 7);
        assert_eq!(
            ctx.errors[0].message,
            "file not found: /nonexistent-demail-dir/tls/missing.pem"
        );
    }
}
