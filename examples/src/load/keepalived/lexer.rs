//! keepalived.conf's words, as keepalived's `parser.c` reads them: `#` and `!` start a
//! comment anywhere outside double quotes (`\#` and `\!` are the characters themselves);
//! words are split at whitespace; `"` and `'` quote (the quotes removed, the whitespace
//! between them kept, shell escapes `\n`, `\t`, `\xXX`, `\nnn`, `\cC` and `\C` read); `{` and
//! `}` are words of their own; a line ending in `\` does not go on to the next (keepalived
//! continues only `$NAME` definitions, read by [`super::params`] first), so it is refused;
//! `include FILE`
//! (and its variants `includer`, `includem`, `includew`, `includeb`, `includea`) is replaced
//! by the files its glob matches, in name order, a relative name taken from the including
//! file's directory. A pattern that matches nothing is skipped with a warning, as keepalived
//! skips it, except where the variant makes it an error: `includew` and `includea` always,
//! `includem` for a name without wildcards (a missing file).

use super::params::Params;
use super::{KeepalivedError, Place};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How deep includes may nest (keepalived sets no limit of its own).
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

/// The words of `path` and every file it includes, in order, and a warning for each include
/// skipped because it matches nothing (and each parameter left as written). Lines are read
/// as [`super::params`] prepares them: `@` conditional lines compared with `config_id`,
/// `$NAME` parameters, `~SEQ` blocks.
///
/// # Errors
///
/// A file that cannot be read, an `includew`, `includea` or `includem` that matches nothing,
/// includes nested too deep, an unclosed quote, a line ending in `\` (outside a `$NAME`
/// definition), or a parameter error, each naming its file and line.
pub(crate) fn words(
    source: &dyn Source,
    path: &Path,
    config_id: Option<String>,
) -> Result<(Vec<Word>, Vec<KeepalivedError>), KeepalivedError> {
    let text = source.read(path).map_err(|e| KeepalivedError {
        file: path.to_path_buf(),
        line: None,
        message: format!("cannot read the configuration: {e}"),
    })?;
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let mut params = Params::new(config_id);
    let mut read = Reader { source, out: &mut out, skipped: &mut skipped, params: &mut params };
    read.file(path, &text, 0)?;
    Ok((out, skipped))
}

/// The words so far, the warnings, and the parameters, through every included file.
struct Reader<'a> {
    source: &'a dyn Source,
    out: &'a mut Vec<Word>,
    skipped: &'a mut Vec<KeepalivedError>,
    params: &'a mut Params,
}

impl Reader<'_> {
    fn file(&mut self, path: &Path, text: &str, depth: usize) -> Result<(), KeepalivedError> {
        let file: Arc<Path> = Arc::from(path);
        for (n, raw) in text.lines().enumerate() {
            let at = Place { file: Arc::clone(&file), line: n + 1 };
            for line in self.params.line(raw, &at, path, self.skipped)? {
                self.line(path, &at, &line, depth)?;
            }
        }
        Ok(())
    }

    fn line(
        &mut self,
        path: &Path,
        at: &Place,
        line: &str,
        depth: usize,
    ) -> Result<(), KeepalivedError> {
        let err = |message: String| KeepalivedError::at(at, message);
        let words = split_line(line).map_err(err)?;
        let is_include = words.first().is_some_and(|w| {
            !w.1 && matches!(
                w.0.as_str(),
                "include" | "includer" | "includem" | "includew" | "includeb" | "includea"
            )
        });
        if !is_include {
            for (text, quoted) in words {
                self.out.push(Word { text, quoted, at: at.clone() });
            }
            return Ok(());
        }
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
        let matched = self
            .source
            .glob(&pattern)
            .map_err(|e| err(format!("{keyword} {}: {e}", name.display())))?;
        if matched.is_empty() {
            // keepalived's include_check: `w` (in includew and includea) refuses a
            // pattern that matches nothing, `m` (includem) a file that is missing.
            let wildcards = name.to_str().is_some_and(|n| n.contains(['*', '?', '[']));
            let refused = match keyword.as_str() {
                "includew" | "includea" => true,
                "includem" => !wildcards,
                _ => false,
            };
            let said =
                format!("{keyword} {}: no file matches {}", name.display(), pattern.display());
            if refused {
                return Err(err(format!("{said}: correct the name or remove the line")));
            }
            self.skipped.push(err(format!("{said}: skipped, as keepalived skips it")));
            return Ok(());
        }
        for included in matched {
            let text = self
                .source
                .read(&included)
                .map_err(|e| err(format!("{keyword}: cannot read {}: {e}", included.display())))?;
            self.file(&included, &text, depth + 1)?;
        }
        Ok(())
    }
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
                        // Only double quotes keep a comment out (keepalived's decomment()).
                        Some('#' | '!') if close == '\'' => {
                            return Err("the quote ' is not closed before the comment: # and ! \
                                        start one even between single quotes; put the text \
                                        between double quotes, or write \\# and \\!"
                                .into());
                        }
                        Some('\\') if chars.peek().is_none() => return Err(continued()),
                        Some('\\') => word.push(escape(&mut chars)),
                        Some(c) => word.push(c),
                    }
                }
            }
            '\\' if chars.peek().is_none() => return Err(continued()),
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

/// A line that ends in `\`: keepalived does not join it to the next (except in a `$NAME`
/// definition), so its words would not be what the file means.
fn continued() -> String {
    "a line ending in \\ does not go on to the next one (keepalived continues only $NAME \
     definitions): join the lines"
        .into()
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
        // `\x` without a hex digit is an x, as `\C` is C.
        'x' if chars.peek().is_some_and(char::is_ascii_hexdigit) => digits(chars, 16, 2, 0),
        '0'..='7' => digits(chars, 8, 3, c.to_digit(8).unwrap_or(0)),
        // The control character of C: its low five bits, as keepalived takes them.
        'c' if chars.peek().is_some() => {
            chars.next().and_then(|c| char::from_u32(u32::from(c) & 0x1f)).unwrap_or('c')
        }
        c => c,
    }
}

#[cfg(test)]
mod tests {
    //! The expected words are written by hand from keepalived's `lib/parser.c`:
    //! `decomment()` (comments, `\#`, the trailing `\`), `read_line()` (braces split off,
    //! `include`), `alloc_strvec_quoted_escaped()` (quotes and escapes) and
    //! `open_and_check_glob()` (what an include that matches nothing does).

    use super::*;
    use std::collections::BTreeMap;

    fn split(line: &str) -> Vec<String> {
        split_line(line).unwrap().into_iter().map(|(w, _)| w).collect()
    }

    /// Files by name; a glob matches their names, `..` going up as on disk.
    struct Files(BTreeMap<PathBuf, String>);

    fn lexical(path: &Path) -> PathBuf {
        let mut out = PathBuf::new();
        for part in path.components() {
            match part {
                std::path::Component::ParentDir => {
                    out.pop();
                }
                part => out.push(part),
            }
        }
        out
    }

    impl Files {
        fn new(files: &[(&str, &str)]) -> Self {
            Self(files.iter().map(|(n, t)| (PathBuf::from(n), t.to_string())).collect())
        }
    }

    impl Source for Files {
        fn read(&self, path: &Path) -> Result<String, String> {
            self.0.get(path).cloned().ok_or_else(|| "no such file".into())
        }

        fn glob(&self, pattern: &Path) -> Result<Vec<PathBuf>, String> {
            let pattern = glob::Pattern::new(lexical(pattern).to_str().unwrap())
                .map_err(|e| e.to_string())?;
            Ok(self.0.keys().filter(|p| pattern.matches_path(p)).cloned().collect())
        }
    }

    /// A word, its file and its line.
    type Located = (String, String, usize);

    /// Each word of `main.conf` and what it includes, located, and the warnings.
    fn read(files: &[(&str, &str)]) -> Result<(Vec<Located>, Vec<String>), String> {
        let (words, skipped) =
            words(&Files::new(files), Path::new("main.conf"), Some("main".into()))
                .map_err(|e| e.to_string())?;
        let words = words
            .into_iter()
            .map(|w| (w.text, w.at.file.display().to_string(), w.at.line))
            .collect();
        Ok((words, skipped.iter().map(ToString::to_string).collect()))
    }

    fn texts(files: &[(&str, &str)]) -> Vec<String> {
        read(files).unwrap().0.into_iter().map(|(w, _, _)| w).collect()
    }

    #[test]
    fn comments_start_anywhere_outside_double_quotes() {
        assert_eq!(split("delay_loop 6 # every six seconds"), ["delay_loop", "6"]);
        assert_eq!(split("lb_algo rr! round robin"), ["lb_algo", "rr"]);
        assert_eq!(split("lb_algo rr#!"), ["lb_algo", "rr"]);
        assert_eq!(split("# a whole line"), Vec::<String>::new());
        assert_eq!(split("! a whole line { }"), Vec::<String>::new());
        assert_eq!(split("  \t! indented"), Vec::<String>::new());
        assert_eq!(split("misc_path \"/bin/check #1 !\""), ["misc_path", "/bin/check #1 !"]);
        // decomment() drops the backslash of \# and \! outside double quotes: the character
        // stays and starts no comment.
        assert_eq!(split(r"virtualhost a\#b\!c"), ["virtualhost", "a#b!c"]);
        // Single quotes do not keep a comment out: the quote is left open.
        let e = split_line("misc_path '/bin/check #1'").unwrap_err();
        assert!(e.contains("not closed before the comment"), "{e}");
        assert_eq!(split(r"misc_path '/bin/check \#1'"), ["misc_path", "/bin/check #1"]);
        // A comment line inside a block, and one after its brace.
        assert_eq!(
            texts(&[("main.conf", "vs {\n # nothing\n weight 1 } ! done\n")]),
            ["vs", "{", "weight", "1", "}"]
        );
    }

    #[test]
    fn quotes_join_and_keep_whitespace_and_escapes_are_the_shells() {
        // The man page's examples.
        assert_eq!(split(r#"abcd" efg h jkl "mnop"#), ["abcd efg h jkl mnop"]);
        assert_eq!(split(r#"abcd "efg h jkl" mnop"#), ["abcd", "efg h jkl", "mnop"]);
        // Either quote; the other is a character between them.
        assert_eq!(split(r#"a 'b "c" d' e"#), ["a", r#"b "c" d"#, "e"]);
        assert_eq!(split(r#"a "b 'c' d""#), ["a", "b 'c' d"]);
        // An empty string is a word; whitespace other than spaces separates too.
        assert_eq!(split("path \"\"\tx\u{b}y"), ["path", "", "x", "y"]);
        // \a \b \E \f \n \r \t \v, \nnn (up to three octal digits), \xXX (up to two hex
        // digits), \cC (C's low five bits), \C for any other C.
        assert_eq!(split(r#""\a\b\E\f\n\r\t\v""#), ["\u{7}\u{8}\u{1b}\u{c}\n\r\t\u{b}"]);
        assert_eq!(split(r#""\101\0\1012\8""#), ["A\0A28"]);
        assert_eq!(split(r#""\x41\x4a\x414\xg""#), ["AJA4xg"]);
        assert_eq!(split(r#""\cA\ca\c[\c?""#), ["\u{1}\u{1}\u{1b}\u{1f}"]);
        assert_eq!(split(r#""\"\\\'\q" '\''"#), ["\"\\'q", "'"]);
        // Outside quotes too: an escaped space or quote does not split or quote.
        assert_eq!(split(r#"a\ b \"c"#), ["a b", "\"c"]);
        // Whether a word was quoted: a quoted brace is no block.
        assert_eq!(
            split_line(r#"x "{" '}'"#).unwrap(),
            [("x".into(), false), ("{".into(), true), ("}".into(), true)]
        );
        assert!(split_line("path \"/open").unwrap_err().contains("not closed"));
        assert!(split_line("path '/open").unwrap_err().contains("not closed"));
    }

    #[test]
    fn braces_are_words_of_their_own_glued_or_not() {
        assert_eq!(split("virtual_server 10.0.0.1 80{"), ["virtual_server", "10.0.0.1", "80", "{"]);
        assert_eq!(
            split("real_server 10.0.0.2 80 {weight 1}"),
            ["real_server", "10.0.0.2", "80", "{", "weight", "1", "}"]
        );
        assert_eq!(split("}}"), ["}", "}"]);
        assert_eq!(split("a{b}c"), ["a", "{", "b", "}", "c"]);
        assert_eq!(split(r#""a{b}c""#), ["a{b}c"]);
    }

    #[test]
    fn a_line_ending_in_a_backslash_does_not_continue() {
        // keepalived continues only $NAME definitions; any other line ends where it ends.
        for line in ["lb_algo rr \\", "lb_algo rr\\", "path \"/a\\"] {
            let e = split_line(line).unwrap_err();
            assert!(e.contains("does not go on to the next one"), "{line}: {e}");
        }
        // An escaped backslash ends no line; in a comment a backslash is nothing.
        assert_eq!(split(r"path /a\\"), ["path", "/a\\"]);
        assert_eq!(split(r"weight 1 # see \"), ["weight", "1"]);
        let e = read(&[("main.conf", "vs {\n lb_algo rr \\\n lb_kind DR\n}\n")]).unwrap_err();
        assert!(e.starts_with("main.conf: line 2: a line ending in \\"), "{e}");
        // Words keep their lines: the next line is a statement of its own.
        let (words, _) = read(&[("main.conf", "a b\r\n\n  c\n")]).unwrap();
        let lines: Vec<(&str, usize)> = words.iter().map(|(w, _, l)| (w.as_str(), *l)).collect();
        assert_eq!(lines, [("a", 1), ("b", 1), ("c", 3)]);
    }

    #[test]
    fn includes_are_replaced_by_the_files_they_match_in_name_order() {
        let files = [
            ("main.conf", "a\ninclude conf.d/*.conf ! the services\nz\n"),
            ("conf.d/b.conf", "b\nincludea ../more/c.conf\n"),
            ("conf.d/a.conf", "a2"),
            ("conf.d/x.txt", "not included"),
            ("more/c.conf", "c"),
        ];
        let (words, skipped) = read(&files).unwrap();
        assert_eq!(
            words,
            [
                ("a".into(), "main.conf".into(), 1),
                ("a2".into(), "conf.d/a.conf".into(), 1),
                ("b".into(), "conf.d/b.conf".into(), 1),
                ("c".into(), "more/c.conf".into(), 1),
                ("z".into(), "main.conf".into(), 3),
            ]
        );
        assert!(skipped.is_empty());
        // Only `include` and its variants, first on their line and unquoted, include.
        assert_eq!(
            texts(&[("main.conf", "includex a\n\"include\" b\nx include c\n")]),
            ["includex", "a", "include", "b", "x", "include", "c"]
        );
        for line in ["include\n", "include a b\n"] {
            let e = read(&[("main.conf", line)]).unwrap_err();
            assert!(e.contains("include takes one file name"), "{e}");
        }
    }

    #[test]
    fn an_include_that_matches_nothing_is_skipped_unless_its_variant_refuses_it() {
        // keepalived: GLOB_NOMATCH is an error only under include_check's `wildcard_match`
        // (includew, includea), or for a missing file under `match` (includem).
        for keyword in ["include", "includer", "includeb", "includem"] {
            let text = format!("a\n{keyword} none/*.conf\nb\n");
            let (words, skipped) = read(&[("main.conf", &text)]).unwrap();
            let words: Vec<&str> = words.iter().map(|(w, _, _)| w.as_str()).collect();
            assert_eq!(words, ["a", "b"], "{keyword}");
            assert_eq!(
                skipped,
                [format!(
                    "main.conf: line 2: {keyword} none/*.conf: no file matches none/*.conf: \
                     skipped, as keepalived skips it"
                )]
            );
        }
        for line in ["includew none/*.conf", "includea none/*.conf", "includem none.conf"] {
            let e = read(&[("main.conf", &format!("a\n{line}\n"))]).unwrap_err();
            assert!(e.starts_with(&format!("main.conf: line 2: {line}: no file matches")), "{e}");
            assert!(e.ends_with("correct the name or remove the line"), "{e}");
        }
        let (_, skipped) = read(&[("main.conf", "include none.conf\n")]).unwrap();
        assert_eq!(skipped.len(), 1);
    }

    #[test]
    fn includes_nest_at_most_32_deep() {
        // main.conf and 31 files, each including the next: read.
        let chain = |n: usize| -> Vec<(String, String)> {
            (0..n)
                .map(|i| {
                    let name = if i == 0 { "main.conf".into() } else { format!("f{i}.conf") };
                    let text = if i + 1 < n {
                        format!("w{i}\ninclude f{}.conf\n", i + 1)
                    } else {
                        "end".into()
                    };
                    (name, text)
                })
                .collect()
        };
        let files = chain(32);
        let files: Vec<(&str, &str)> =
            files.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
        assert_eq!(texts(&files).len(), 32);
        // One more is refused, naming the include too deep.
        let files = chain(33);
        let files: Vec<(&str, &str)> =
            files.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
        let e = read(&files).unwrap_err();
        assert!(
            e.starts_with("f31.conf: line 2: include f32.conf: includes nest more than 32"),
            "{e}"
        );
        // A file that includes itself stops there too.
        let e = read(&[("main.conf", "include main.conf\n")]).unwrap_err();
        assert!(e.contains("nest more than 32 deep"), "{e}");
    }

    #[test]
    fn a_dollar_or_at_sign_inside_a_line_is_a_character() {
        assert_eq!(texts(&[("main.conf", "path /a$b@c\n")]), ["path", "/a$b@c"]);
    }
}
