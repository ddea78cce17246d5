//! keepalived.conf's words, as keepalived's `parser.c` reads them: `#` and `!` start a
//! comment anywhere outside quotes; words are split at whitespace; `"` and `'` quote (the
//! quotes removed, the whitespace between them kept, shell escapes `\n`, `\t`, `\xXX`, `\nnn`
//! and `\C` read); `{` and `}` are words of their own; `include FILE` (and its variants
//! `includer`, `includem`, `includew`, `includeb`, `includea`) is replaced by the files its
//! glob matches, in name order, a relative name taken from the including file's directory.

use super::{KeepalivedError, Place};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How deep includes may nest (keepalived stops at 32 too).
const MAX_INCLUDE_DEPTH: usize = 32;

/// One word of the file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    /// The text, quotes removed and escapes read.
    pub(crate) text: String,
    /// Whether any of it was quoted (a quoted `{` is a word, not a block).
    pub(crate) quoted: bool,
    /// The file and line.
    pub(crate) at: Place,
}

/// Where the files come from: the disk, or (for tests and the fuzzer) a map of names.
pub trait Source {
    /// The file's text.
    ///
    /// # Errors
    ///
    /// Why it cannot be read.
    fn read(&self, path: &Path) -> Result<String, String>;
    /// The files a glob pattern matches, in name order.
    ///
    /// # Errors
    ///
    /// Why the pattern is not a pattern.
    fn glob(&self, pattern: &Path) -> Result<Vec<PathBuf>, String>;
}

/// Files on disk; `include` globs with glob(3)'s rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct Disk;

impl Source for Disk {
    fn read(&self, path: &Path) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }

    fn glob(&self, pattern: &Path) -> Result<Vec<PathBuf>, String> {
        let text = pattern.to_str().ok_or("the file name is not UTF-8")?;
        let mut found: Vec<PathBuf> = glob::glob(text)
            .map_err(|e| format!("not a file pattern: {e}"))?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        found.sort();
        Ok(found)
    }
}

/// The words of `path` and every file it includes, in order.
///
/// # Errors
///
/// A file that cannot be read, an include that matches nothing, includes nested too deep,
/// an unclosed quote, or a parameter or conditional line (not supported), each naming its
/// file and line.
pub(crate) fn words(source: &dyn Source, path: &Path) -> Result<Vec<Word>, KeepalivedError> {
    let text = source.read(path).map_err(|e| KeepalivedError {
        file: path.to_path_buf(),
        line: None,
        message: format!("cannot read the configuration: {e}"),
    })?;
    let mut out = Vec::new();
    file_words(source, path, &text, 0, &mut out)?;
    Ok(out)
}

fn file_words(
    source: &dyn Source,
    path: &Path,
    text: &str,
    depth: usize,
    out: &mut Vec<Word>,
) -> Result<(), KeepalivedError> {
    let file: Arc<Path> = Arc::from(path);
    for (n, line) in text.lines().enumerate() {
        let at = Place { file: Arc::clone(&file), line: n + 1 };
        let err = |message: String| KeepalivedError::at(&at, message);
        let trimmed = line.trim_start();
        if trimmed.starts_with('$') {
            return Err(err(
                "parameters ($NAME=VALUE, $NAME) are not supported: write the values out".into(),
            ));
        }
        if trimmed.starts_with('@') {
            return Err(err(
                "conditional configuration (@NAME, @^NAME) is not supported: keep only the \
                 lines this director is to read, without the @ prefix"
                    .into(),
            ));
        }
        let words = split_line(line).map_err(err)?;
        let is_include = words.first().is_some_and(|w| {
            !w.1 && matches!(
                w.0.as_str(),
                "include" | "includer" | "includem" | "includew" | "includeb" | "includea"
            )
        });
        if is_include {
            let keyword = &words[0].0;
            let [_, (name, _)] = words.as_slice() else {
                return Err(err(format!("{keyword} takes one file name (a glob): {keyword} FILE")));
            };
            if depth + 1 >= MAX_INCLUDE_DEPTH {
                return Err(err(format!(
                    "{keyword} {name}: includes nest more than {MAX_INCLUDE_DEPTH} deep: an \
                     included file includes itself?"
                )));
            }
            let name = Path::new(name);
            let pattern = if name.is_absolute() {
                name.to_path_buf()
            } else {
                path.parent().unwrap_or(Path::new("")).join(name)
            };
            let matched = source
                .glob(&pattern)
                .map_err(|e| err(format!("{keyword} {}: {e}", name.display())))?;
            if matched.is_empty() {
                return Err(err(format!(
                    "{keyword} {}: no file matches {}: correct the name or remove the line",
                    name.display(),
                    pattern.display()
                )));
            }
            for included in matched {
                let text = source.read(&included).map_err(|e| {
                    err(format!("{keyword}: cannot read {}: {e}", included.display()))
                })?;
                file_words(source, &included, &text, depth + 1, out)?;
            }
            continue;
        }
        for (text, quoted) in words {
            out.push(Word { text, quoted, at: at.clone() });
        }
    }
    Ok(())
}

/// A `misc_path` command line split into the program and its arguments: at unquoted
/// whitespace, `'` and `"` grouping, as keepalived splits a script's words.
pub(crate) fn split_command(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The words of one line: comments dropped, quotes removed, escapes read, braces apart.
fn split_line(line: &str) -> Result<Vec<(String, bool)>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    let mut word = String::new();
    let mut quoted = false;
    let mut in_word = false;
    let finish = |words: &mut Vec<(String, bool)>, word: &mut String, quoted: &mut bool| {
        words.push((std::mem::take(word), std::mem::take(quoted)));
    };
    while let Some(c) = chars.next() {
        match c {
            '#' | '!' => break,
            c if c.is_whitespace() => {
                if in_word {
                    finish(&mut words, &mut word, &mut quoted);
                    in_word = false;
                }
            }
            '{' | '}' => {
                if in_word {
                    finish(&mut words, &mut word, &mut quoted);
                    in_word = false;
                }
                words.push((c.to_string(), false));
            }
            '"' | '\'' => {
                in_word = true;
                quoted = true;
                let close = c;
                loop {
                    match chars.next() {
                        None => {
                            return Err(format!(
                                "the quote {close} is not closed on this line: close it with \
                                 {close}"
                            ));
                        }
                        Some(c) if c == close => break,
                        Some('\\') => word.push(escape(&mut chars)),
                        Some(c) => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(escape(&mut chars));
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        finish(&mut words, &mut word, &mut quoted);
    }
    Ok(words)
}

/// The character a backslash escape stands for, as keepalived (and the shell) read them.
fn escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> char {
    let Some(c) = chars.next() else { return '\\' };
    let digits = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>, radix, max, first| {
        let mut value: u32 = first;
        let mut n = u32::from(first != 0 || radix == 8);
        while n < max {
            match chars.peek().and_then(|c| c.to_digit(radix)) {
                Some(d) => {
                    value = value * radix + d;
                    chars.next();
                    n += 1;
                }
                None => break,
            }
        }
        char::from_u32(value).unwrap_or('\u{fffd}')
    };
    match c {
        'a' => '\u{7}',
        'b' => '\u{8}',
        'E' => '\u{1b}',
        'f' => '\u{c}',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\u{b}',
        'x' => digits(chars, 16, 2, 0),
        '0'..='7' => digits(chars, 8, 3, c.to_digit(8).unwrap_or(0)),
        'c' => chars.next().map_or('c', |c| char::from((c.to_ascii_uppercase() as u8) ^ 0x40)),
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Vec<String> {
        split_line(line).unwrap().into_iter().map(|(w, _)| w).collect()
    }

    #[test]
    fn comments_start_anywhere_outside_quotes() {
        assert_eq!(split("delay_loop 6 # every six seconds"), ["delay_loop", "6"]);
        assert_eq!(split("lb_algo rr! round robin"), ["lb_algo", "rr"]);
        assert_eq!(split("  ! a whole line"), Vec::<String>::new());
        assert_eq!(split("misc_path \"/bin/check #1 !\""), ["misc_path", "/bin/check #1 !"]);
    }

    #[test]
    fn quotes_join_and_braces_part() {
        // The man page's examples.
        assert_eq!(split(r#"abcd" efg h jkl "mnop"#), ["abcd efg h jkl mnop"]);
        assert_eq!(split(r#"abcd "efg h jkl" mnop"#), ["abcd", "efg h jkl", "mnop"]);
        assert_eq!(split("real_server 10.0.0.1 80{"), ["real_server", "10.0.0.1", "80", "{"]);
        assert_eq!(split("}}"), ["}", "}"]);
        assert_eq!(split(r#"path "a\x20b\tc\101\\""#), ["path", "a b\tcA\\"]);
        assert!(split_line("path \"/open").unwrap_err().contains("not closed"));
    }
}
