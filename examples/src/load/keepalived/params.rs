//! keepalived.conf's text before it is split into words, as keepalived's `lib/parser.c`
//! (`read_line`, `check_definition`, `replace_param`, `find_definition`, `add_seq`) prepares
//! each line:
//!
//! - a line starting `@ID` is kept (without the prefix) only when `ID` is the config id,
//!   `@^ID` only when it is not; the config id is keepalived's `-i` / `--config-id`,
//!   defaulting to the host name up to its first dot ([`default_config_id`]);
//! - `$NAME=VALUE` defines a parameter (no space before `=`; a value ending in `\` goes on
//!   over the next lines, each but the last ending in `\`, up to a blank line: a multiline
//!   definition, usable only at the end of a line);
//! - `$NAME` followed by a space, tab, `,`, `)` or the end of the line, and `${NAME}`
//!   anywhere, are replaced by the value, and the replacement is read again (a value may use
//!   other parameters); an undefined parameter stays as written, as in keepalived (and is
//!   warned of);
//! - the pre-defined `${_PWD}` (the directory of the file being read), `${_INSTANCE}` (the
//!   config id), `${_RANDOM [MIN [MAX]]}`, `${_ENV NAME}`, `${_HASH}` (`#`) and `${_BANG}`
//!   (`!`);
//! - `~SEQ(VAR, [START,] [STEP,] END) TEXT` (and `~SEQx`, in hexadecimal) reads `TEXT` once
//!   for each value of `$VAR`.
//!
//! Where parser.c's code stops short of what the man page describes, dr does what the man
//! page says: a line that a substitution makes start with `@` (`$IF_MAIN=@main`) or that
//! still holds parameters is read again. `~LST` is refused.
//!
//! A hostile file must not loop or exhaust memory: a substituted line is at most
//! [`MAX_LINE`] bytes (keepalived's line buffer), expansions nest at most [`MAX_DEPTH`] deep
//! and one file makes at most [`MAX_WORK`] lines and substitutions and [`MAX_MADE`] bytes of
//! lines in all; past these the file is refused, naming the line.

use super::{KeepalivedError, Place};
use std::path::Path;

/// The longest line a substitution may make: keepalived's `MAXBUF`.
pub const MAX_LINE: usize = 1024;
/// How deep multiline parameters and `~SEQ` blocks may nest.
pub const MAX_DEPTH: usize = 32;
/// How many lines and substitutions the parameters of one configuration may make in all.
pub const MAX_WORK: usize = 1_000_000;
/// How many bytes of lines parameters and `~SEQ` blocks may make in all (16 MiB).
pub const MAX_MADE: usize = 16 << 20;

/// The config id keepalived takes by default: the host's name (`uname -n`) up to its first
/// dot; none when it cannot be read.
pub fn default_config_id() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    let short = name.split('.').next().unwrap_or(name);
    (!short.is_empty()).then(|| short.to_string())
}

/// A pre-defined parameter whose value is made at each use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builtin {
    Pwd,
    Instance,
    Random,
    Env,
}

#[derive(Debug, Clone)]
struct Def {
    name: String,
    value: String,
    multiline: bool,
    builtin: Option<Builtin>,
}

/// The parameters defined so far and the multiline definition being read: one for the whole
/// configuration, included files too, as keepalived keeps one list.
#[derive(Debug)]
pub(crate) struct Params {
    config_id: Option<String>,
    defs: Vec<Def>,
    /// The multiline definition still being read.
    open: Option<usize>,
    /// Lines made and substitutions done so far.
    work: usize,
    /// Bytes of lines made by substitutions and sequences so far.
    made: usize,
    /// Bytes of multiline parameters' further lines copied for their uses so far (held
    /// until they are read).
    copied: usize,
    /// The undefined parameters already warned of, each once.
    warned: std::collections::BTreeSet<String>,
}

impl Params {
    /// No parameters but the pre-defined ones; `@` lines compared with `config_id`.
    pub(crate) fn new(config_id: Option<String>) -> Self {
        let def = |name: &str, value: &str, builtin| Def {
            name: name.into(),
            value: value.into(),
            multiline: false,
            builtin,
        };
        Self {
            config_id,
            defs: vec![
                def("_PWD", "", Some(Builtin::Pwd)),
                def("_INSTANCE", "", Some(Builtin::Instance)),
                def("_RANDOM", "", Some(Builtin::Random)),
                def("_ENV", "", Some(Builtin::Env)),
                def("_HASH", "#", None),
                def("_BANG", "!", None),
            ],
            open: None,
            work: 0,
            made: 0,
            copied: 0,
            warned: std::collections::BTreeSet::new(),
        }
    }

    /// The lines one line of a file (`raw`, in file `file`) gives: none for a comment, a
    /// definition or a conditional line not for this config id, one for most, many for a
    /// multiline parameter or a `~SEQ`. Warnings (an undefined parameter) go to `warnings`.
    ///
    /// # Errors
    ///
    /// A malformed `~SEQ`, `~LST`, wrong parameters to a pre-defined one, a quote left open
    /// before a comment, or an expansion past the limits.
    pub(crate) fn line(
        &mut self,
        raw: &str,
        at: &Place,
        file: &Path,
        warnings: &mut Vec<KeepalivedError>,
    ) -> Result<Vec<String>, KeepalivedError> {
        let err = |m: String| KeepalivedError::at(at, m);
        if raw.is_empty() {
            // A blank line ends a multiline definition.
            if let Some(i) = self.open.take()
                && self.defs[i].value.is_empty()
            {
                self.defs[i].multiline = false;
            }
            return Ok(Vec::new());
        }
        let line = decomment(raw).map_err(err)?;
        if line.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(i) = self.open {
            let def = &mut self.defs[i];
            match line.strip_suffix('\\') {
                Some(part) => {
                    let part = part.trim_end_matches([' ', '\t']);
                    if !part.is_empty() {
                        def.value.push_str(part);
                        def.value.push('\n');
                    }
                }
                None => {
                    def.value.push_str(&line);
                    self.open = None;
                }
            }
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut cx = Cx { at, file, warnings };
        self.process(line, 0, &mut out, &mut cx)?;
        Ok(out)
    }

    fn spend(&mut self, at: &Place) -> Result<(), KeepalivedError> {
        self.work += 1;
        if self.work > MAX_WORK {
            return Err(KeepalivedError::at(
                at,
                format!(
                    "parameters and ~SEQ blocks make more than {MAX_WORK} lines and \
                     substitutions: a parameter that uses itself, or a sequence too long?"
                ),
            ));
        }
        Ok(())
    }

    /// `read_line`'s steps for one line: `@`, a definition, `~SEQ`, substitution.
    fn process(
        &mut self,
        mut line: String,
        depth: usize,
        out: &mut Vec<String>,
        cx: &mut Cx<'_>,
    ) -> Result<(), KeepalivedError> {
        let err = |m: String| KeepalivedError::at(cx.at, m);
        if depth > MAX_DEPTH {
            return Err(err(format!(
                "multiline parameters and ~SEQ blocks nest more than {MAX_DEPTH} deep: a \
                 parameter that uses itself?"
            )));
        }
        // Lines that parameters and sequences make count; the file's own do not.
        if depth > 0 {
            self.spend(cx.at)?;
        }
        // The rest of each multiline parameter used, the latest last.
        let mut rests: Vec<Vec<String>> = Vec::new();
        let mut substituted = false;
        loop {
            if let Some(rest) = line.strip_prefix('@') {
                let (negated, rest) = match rest.strip_prefix('^') {
                    Some(r) => (true, r),
                    None => (false, rest),
                };
                // Nothing after the id: the line is nothing.
                let Some(space) = rest.find([' ', '\t']) else {
                    line.clear();
                    break;
                };
                if (self.config_id.as_deref() == Some(&rest[..space])) == negated {
                    line.clear();
                    break;
                }
                line = rest[space..].trim_start_matches([' ', '\t']).to_string();
            }
            if self.define(&line) {
                line.clear();
                break;
            }
            if line.starts_with("~SEQ") {
                self.seq(&line, depth, out, cx)?;
                line.clear();
                break;
            }
            if line.starts_with("~LST") {
                return Err(err(
                    "~LST blocks are not supported by dr: write the lines out, or use ~SEQ".into(),
                ));
            }
            if line.starts_with('~') || !line.contains('$') {
                break;
            }
            let Some((replaced, multiline)) = self.substitute(&line, cx)? else {
                break;
            };
            rests.extend(multiline);
            substituted = true;
            line = decomment(&replaced).map_err(err)?;
            if !line.starts_with('@') && !line.contains('$') {
                break;
            }
        }
        undefined(&line, cx, &mut self.warned);
        if !line.is_empty() {
            // Only what parameters and sequences make counts, not the file's own lines.
            if depth > 0 || substituted {
                self.made += line.len();
            }
            if self.made > MAX_MADE {
                return Err(err(format!(
                    "parameters and ~SEQ blocks make more than {} MiB of lines: a sequence too \
                     long?",
                    MAX_MADE >> 20
                )));
            }
            out.push(line);
        }
        for rest in rests.into_iter().rev() {
            for next in rest {
                if !next.is_empty() {
                    self.process(next, depth + 1, out, cx)?;
                }
            }
        }
        Ok(())
    }

    /// `check_definition`: `$NAME=VALUE` defines (or redefines) `NAME`; false when the line
    /// is not a definition.
    fn define(&mut self, line: &str) -> bool {
        let Some(rest) = line.strip_prefix('$') else { return false };
        let Some(eq) = rest.find('=') else { return false };
        let name = &rest[..eq];
        if !is_name(name) {
            return false;
        }
        let value = rest[eq + 1..].trim_start_matches([' ', '\t']);
        let (value, multiline) = match value.strip_suffix('\\') {
            Some(first) => {
                let first = first.trim_end_matches([' ', '\t']);
                (if first.is_empty() { String::new() } else { format!("{first}\n") }, true)
            }
            None => (value.to_string(), false),
        };
        let i = self.set(name, value);
        self.defs[i].multiline = multiline;
        if multiline {
            self.open = Some(i);
        }
        true
    }

    /// Sets `name` to `value` (a pre-defined one is overridden); returns its index.
    fn set(&mut self, name: &str, value: String) -> usize {
        match self.defs.iter().position(|d| d.name == name) {
            Some(i) => {
                let def = &mut self.defs[i];
                def.value = value;
                def.builtin = None;
                def.multiline = false;
                i
            }
            None => {
                self.defs.push(Def { name: name.into(), value, multiline: false, builtin: None });
                self.defs.len() - 1
            }
        }
    }

    /// `replace_param`: the line with its defined parameters replaced, and the further lines
    /// of each multiline one used; `None` when nothing is replaced.
    fn substitute(
        &mut self,
        line: &str,
        cx: &mut Cx<'_>,
    ) -> Result<Option<Substituted>, KeepalivedError> {
        let mut text = line.to_string();
        let mut multiline = Vec::new();
        let mut pos = 0;
        let mut any = false;
        while let Some(off) = text[pos..].find('$') {
            let dollar = pos + off;
            let Some((i, end, params)) = self.find(&text, dollar + 1, cx.at)? else {
                pos = dollar + 1;
                continue;
            };
            self.spend(cx.at)?;
            any = true;
            let value = self.value(i, params.as_deref(), cx);
            let first = if self.defs[i].multiline {
                let mut lines = value.split('\n');
                let first = lines.next().unwrap_or_default().to_string();
                // The further lines are copied for each use, a line that uses its own
                // parameter over and over included: bounded as what is made.
                self.copied += value.len() - first.len();
                if self.copied > MAX_MADE {
                    return Err(KeepalivedError::at(
                        cx.at,
                        format!(
                            "multiline parameters used make more than {} MiB of lines: a \
                             parameter that uses itself?",
                            MAX_MADE >> 20
                        ),
                    ));
                }
                multiline.push(lines.map(str::to_string).collect());
                first
            } else {
                value
            };
            text.replace_range(dollar..end, &first);
            if text.len() > MAX_LINE {
                return Err(KeepalivedError::at(
                    cx.at,
                    format!(
                        "parameter substitution makes the line longer than {MAX_LINE} bytes \
                         (keepalived's limit): a parameter that uses itself?"
                    ),
                ));
            }
            // The replacement is read again (pos stays), unless it starts a `~` line.
            if !first.is_empty() && first.trim_start_matches([' ', '\t']).starts_with('~') {
                break;
            }
        }
        Ok(any.then_some((text, multiline)))
    }

    /// `find_definition` for a use at `start` (just after the `$`): the definition, the end
    /// of the use and its parameters (`${_RANDOM 1 6}`).
    fn find(
        &self,
        text: &str,
        start: usize,
        at: &Place,
    ) -> Result<Option<(usize, usize, Option<String>)>, KeepalivedError> {
        let b = text.as_bytes();
        let braces = b.get(start) == Some(&b'{');
        let name_start = start + usize::from(braces);
        let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        match b.get(name_start) {
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {}
            _ => return Ok(None),
        }
        let mut name_end = name_start;
        while b.get(name_end).copied().is_some_and(word) {
            name_end += 1;
        }
        let name = &text[name_start..name_end];
        let (end, params) = if braces {
            let mut p = name_end;
            while b.get(p).is_some_and(|&c| c == b' ' || c == b'\t' || word(c)) {
                p += 1;
            }
            if b.get(p) != Some(&b'}') {
                return Ok(None);
            }
            let inner = &text[name_end..p];
            if !inner.trim_start_matches([' ', '\t']).is_empty() && inner.ends_with([' ', '\t']) {
                return Ok(None);
            }
            let words: Vec<&str> = inner.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
            (p + 1, (!words.is_empty()).then(|| words.join(" ")))
        } else {
            if b.get(name_end).is_some_and(|c| !matches!(c, b' ' | b'\t' | b',' | b')')) {
                return Ok(None);
            }
            (name_end, None)
        };
        let multiline_ok = end == text.len();
        let Some(i) =
            self.defs.iter().position(|d| d.name == name && (multiline_ok || !d.multiline))
        else {
            return Ok(None);
        };
        if let Some(params) = &params {
            let (min, max, numbers) = match self.defs[i].builtin {
                Some(Builtin::Random) => (0, 2, true),
                Some(Builtin::Env) => (1, 1, false),
                _ => return Ok(None),
            };
            let count = params.split(' ').count();
            if numbers && !params.split(' ').all(|w| w.bytes().all(|c| c.is_ascii_digit())) {
                return Err(KeepalivedError::at(
                    at,
                    format!("Definition {name} requires numeric parameters only."),
                ));
            }
            if count < min || count > max {
                return Err(KeepalivedError::at(
                    at,
                    format!(
                        "Definition {name} requires between {min} and {max} parameters, {count} \
                         specified."
                    ),
                ));
            }
        } else if self.defs[i].builtin == Some(Builtin::Env) {
            return Ok(None);
        }
        Ok(Some((i, end, params)))
    }

    /// A definition's value at this use.
    fn value(&self, i: usize, params: Option<&str>, cx: &mut Cx<'_>) -> String {
        let def = &self.defs[i];
        match def.builtin {
            None => def.value.clone(),
            Some(Builtin::Instance) => self.config_id.clone().unwrap_or_default(),
            Some(Builtin::Pwd) => {
                let dir = cx.file.parent().unwrap_or(Path::new(""));
                let dir = std::env::current_dir().map(|c| c.join(dir)).unwrap_or(dir.into());
                let text = dir.to_string_lossy();
                text.strip_suffix('/').filter(|t| !t.is_empty()).unwrap_or(&text).to_string()
            }
            Some(Builtin::Env) => params
                .and_then(std::env::var_os)
                .map(|v| v.to_string_lossy().into_owned())
                .unwrap_or_default(),
            Some(Builtin::Random) => {
                let mut bounds = params.unwrap_or("").split(' ').filter_map(|w| w.parse().ok());
                let min: u64 = bounds.next().unwrap_or(0);
                let mut max: u64 = bounds.next().unwrap_or(32767);
                if min > max {
                    cx.warnings.push(KeepalivedError::at(
                        cx.at,
                        format!("${{_RANDOM}}: min {min} exceeds max {max}, using {min}"),
                    ));
                    max = min;
                }
                let span = (max - min).saturating_add(1);
                (min + random() % span).to_string()
            }
        }
    }

    /// `add_seq`: the lines of `~SEQ(VAR, START, STEP, END) TEXT`.
    fn seq(
        &mut self,
        line: &str,
        depth: usize,
        out: &mut Vec<String>,
        cx: &mut Cx<'_>,
    ) -> Result<(), KeepalivedError> {
        let bad = |why: &str| {
            KeepalivedError::at(
                cx.at,
                format!("{line}: {why}: give ~SEQ(VAR, [START,] [STEP,] END) TEXT"),
            )
        };
        let rest = &line[4..];
        let (hex, rest) = match rest.strip_prefix('x') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let rest = rest.trim_start_matches([' ', '\t']);
        let rest = rest.strip_prefix('(').ok_or_else(|| bad("no ( after ~SEQ"))?;
        let rest = rest.trim_start_matches([' ', '\t']);
        let var_end = rest.find([' ', '\t', ',', ')']).unwrap_or(rest.len());
        let var = &rest[..var_end];
        let after = rest[var_end..].trim_start_matches([' ', '\t']);
        if var.is_empty() || var.starts_with('{') || after.is_empty() || after.starts_with(')') {
            return Err(bad("Invalid ~SEQ definition"));
        }
        let after = &after[after.chars().next().map_or(0, char::len_utf8)..];
        let close = after.find(')').ok_or_else(|| bad("~SEQ missing terminating ')'"))?;
        let mut numbers = after[..=close].to_string();
        if let Some((replaced, multiline)) = self.substitute(&numbers, cx)? {
            if !multiline.is_empty() {
                return Err(bad("~SEQ parameter is multiline definition"));
            }
            numbers = replaced;
        }
        let text = after[close + 1..].trim_start_matches([' ', '\t']).to_string();
        let values = seq_values(&numbers).ok_or_else(|| bad("Invalid ~SEQ values"))?;
        let (start, step, end) = values;
        if hex && (start < 0 || end < 0) {
            return Err(bad("~SEQx is only valid for positive numbers"));
        }
        let mut next = start;
        loop {
            let value = if hex { format!("{next:x}") } else { next.to_string() };
            self.set(var, value);
            self.process(text.clone(), depth + 1, out, cx)?;
            next = match next.checked_add(step) {
                Some(n) => n,
                None => break,
            };
            if (step > 0 && next > end) || (step < 0 && next < end) {
                break;
            }
        }
        Ok(())
    }
}

/// A substituted line and the further lines of each multiline parameter it used.
type Substituted = (String, Vec<Vec<String>>);

/// Where the line being read is, for errors and warnings.
struct Cx<'a> {
    at: &'a Place,
    file: &'a Path,
    warnings: &'a mut Vec<KeepalivedError>,
}

fn is_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && bytes.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Warns of each `$NAME` or `${NAME}` left in `line` not warned of before (each once per
/// configuration, however many lines a sequence makes of it): keepalived keeps an
/// undefined parameter as written, so dr does too, but says so.
fn undefined(line: &str, cx: &mut Cx<'_>, warned: &mut std::collections::BTreeSet<String>) {
    let mut names = Vec::new();
    for (i, _) in line.match_indices('$') {
        let rest = &line[i + 1..];
        let rest = rest.strip_prefix('{').unwrap_or(rest);
        let end =
            rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        if is_name(&rest[..end]) && warned.insert(rest[..end].to_string()) {
            names.push(format!("${}", &rest[..end]));
        }
    }
    if !names.is_empty() {
        cx.warnings.push(KeepalivedError::at(
            cx.at,
            format!(
                "{} not a defined parameter (or not used as one: $NAME before a space, or \
                 ${{NAME}}): kept as written, as keepalived keeps it; define it with \
                 $NAME=VALUE before this line if it is meant as one",
                names.join(", ") + if names.len() == 1 { " is" } else { " are" }
            ),
        ));
    }
}

/// `add_seq`'s numbers (`1, 2, 3)` with the closing parenthesis): start, step and end.
fn seq_values(text: &str) -> Option<(i64, i64, i64)> {
    let mut p = text;
    let one = strtol(&mut p);
    p = p.trim_start_matches([' ', '\t']);
    if p.starts_with(')') {
        let end = one;
        return Some((if end < 0 { -1 } else { 1 }, if end < 1 { -1 } else { 1 }, end));
    }
    p = p.strip_prefix(',')?;
    let two = strtol(&mut p);
    p = p.trim_start_matches([' ', '\t']);
    if p.starts_with(')') {
        return Some((one, if one <= two { 1 } else { -1 }, two));
    }
    p = p.strip_prefix(',')?;
    let three = strtol(&mut p);
    p = p.trim_start_matches([' ', '\t']);
    if !p.starts_with(')') {
        return None;
    }
    let (start, step, end) = (one, two, three);
    if step == 0 || (start < end && step < 0) || (start > end && step > 0) {
        return None;
    }
    Some((start, step, end))
}

/// C's `strtol(p, &p, 0)`: blanks, a sign, `0x` hexadecimal, `0` octal or decimal; 0 and
/// nothing read when there is no number.
fn strtol(p: &mut &str) -> i64 {
    let s = p.trim_start_matches([' ', '\t']);
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(h) = s.strip_prefix("0x").or(s.strip_prefix("0X"))
        && h.starts_with(|c: char| c.is_ascii_hexdigit())
    {
        (16, h)
    } else if s.starts_with('0') {
        (8, s)
    } else {
        (10, s)
    };
    let len = digits.find(|c: char| !c.is_digit(radix)).unwrap_or(digits.len());
    if len == 0 {
        return 0;
    }
    let value = i64::from_str_radix(&digits[..len], radix).unwrap_or(i64::MAX);
    *p = &digits[len..];
    if negative { -value } else { value }
}

/// A random number for `${_RANDOM}` (not for anything secret).
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

/// keepalived's `decomment`: leading blanks and a comment (`#` or `!` outside double quotes,
/// a backslash escaping the next character) removed, and trailing blanks, a final `\` kept.
/// The escapes stay for the words to read.
///
/// # Errors
///
/// A single quote left open before a comment (the comment still starts there, as in
/// keepalived, so the quote would not close).
pub(crate) fn decomment(line: &str) -> Result<String, String> {
    let s = line.trim_start_matches([' ', '\t']);
    let mut double = false;
    let mut single = false;
    let mut cut = s.len();
    let mut continued = false;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                double = !double;
            }
            '\'' if !double => single = !single,
            '\\' if chars.next().is_none() => {
                cut = i;
                continued = true;
                break;
            }
            '#' | '!' if !double => {
                if single {
                    return Err("the quote ' is not closed before the comment: # and ! start \
                                one even between single quotes; put the text between double \
                                quotes, or write \\# and \\!"
                        .into());
                }
                cut = i;
                break;
            }
            _ => {}
        }
    }
    let mut out = s[..cut].trim_end_matches([' ', '\t']).to_string();
    if continued {
        out.push('\\');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! The expected lines are worked by hand from keepalived.conf(5) ("Conditional
    //! configuration", "Parameter substitution", "Sequence blocks", whose examples these
    //! are) and lib/parser.c.

    use super::*;
    use std::sync::Arc;

    /// The lines a file gives with config id `id`, and the warnings.
    fn read(text: &str, id: Option<&str>) -> Result<(Vec<String>, Vec<String>), String> {
        let mut params = Params::new(id.map(str::to_string));
        let file: Arc<Path> = Arc::from(Path::new("/etc/keepalived/keepalived.conf"));
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let at = Place { file: Arc::clone(&file), line: n + 1 };
            out.extend(params.line(raw, &at, &file, &mut warnings).map_err(|e| e.to_string())?);
        }
        Ok((out, warnings.iter().map(ToString::to_string).collect()))
    }

    fn lines(text: &str, id: Option<&str>) -> Vec<String> {
        read(text, id).unwrap().0
    }

    #[test]
    fn conditional_lines_follow_the_config_id() {
        let text = "@main router_id main_router\n@backup router_id backup_router\n\
                    @^main peer 1.2.3.4\n@^backup peer 1.2.3.5\n@main\n@main\tx y\n";
        assert_eq!(lines(text, Some("main")), ["router_id main_router", "peer 1.2.3.5", "x y"]);
        assert_eq!(lines(text, Some("backup")), ["router_id backup_router", "peer 1.2.3.4"]);
        // No config id: no @ID line is for it, every @^ID line is.
        assert_eq!(lines(text, None), ["peer 1.2.3.4", "peer 1.2.3.5"]);
        // The id is the whole word: @mainx is not @main.
        assert!(lines("@mainx a\n", Some("main")).is_empty());
    }

    #[test]
    fn parameters_are_replaced_when_used_not_when_defined() {
        let text = "$ADDRESS_BASE=10.2.${ADDRESS_BASE_SUB}\n$ADDRESS_BASE_SUB=0\n\
                    ${ADDRESS_BASE}.100/32\n$ADDRESS_BASE_SUB=10\n${ADDRESS_BASE}.100/32\n";
        assert_eq!(lines(text, None), ["10.2.0.100/32", "10.2.10.100/32"]);
        // $NAME needs a space, tab, comma, ) or the end after it; ${NAME} needs nothing.
        let text = "$IP=10.0.0.1\nvs $IP 80\nvs $IP\nf($IP,$IP)\nvs ${IP}:80\n\t$IP\n";
        assert_eq!(
            lines(text, None),
            ["vs 10.0.0.1 80", "vs 10.0.0.1", "f(10.0.0.1,10.0.0.1)", "vs 10.0.0.1:80", "10.0.0.1"]
        );
        // Empty values; a comment after the value; redefinition.
        let text = "$E=\nx${E}y\n$V=1 # one\n$V=2\nv $V\n";
        assert_eq!(lines(text, None), ["xy", "v 2"]);
    }

    #[test]
    fn an_undefined_parameter_stays_as_written_and_is_warned_of() {
        let (out, warnings) = read("$IP=1\nvs $IP:80 ${PORT} $1\n", None).unwrap();
        assert_eq!(out, ["vs $IP:80 ${PORT} $1"]);
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with(
                "/etc/keepalived/keepalived.conf: line 2: $IP, $PORT are not a defined parameter"
            ),
            "{warnings:?}"
        );
        assert!(warnings[0].contains("kept as written, as keepalived keeps it"));
        // `$NAME =value` (a space before =) defines nothing.
        let (out, warnings) = read("$N =1\n", None).unwrap();
        assert_eq!(out, ["$N =1"]);
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn parameters_and_conditional_lines_together() {
        let text = "@main $PRIORITY=240\n@backup $PRIORITY=200\npriority $PRIORITY\n";
        assert_eq!(lines(text, Some("main")), ["priority 240"]);
        assert_eq!(lines(text, Some("backup")), ["priority 200"]);
        // The man page's $IF_MAIN=@main: the line the substitution makes is conditional.
        let text = "$IF_MAIN=@main\n$IF_MAIN priority 240\n";
        assert_eq!(lines(text, Some("main")), ["priority 240"]);
        assert!(lines(text, Some("backup")).is_empty());
    }

    #[test]
    fn multiline_parameters_give_their_lines_at_the_end_of_a_line() {
        let text = "$RS= \\\n real_server 10.0.${VS_NUM}.${RS_NUM} 80 { \\\n   weight \
                    ${RS_NUM} \\\n# a comment does not end it\n }\n\n\
                    $VS= \\\n virtual_server 10.0.${VS_NUM}.4 80 { \\\n   $RS_NUM=1 \\\n   \
                    $RS \\\n   $RS_NUM=2 \\\n   $RS \\\n }\n\n$VS_NUM=0\n$VS\n";
        let want = [
            "virtual_server 10.0.0.4 80 {",
            "real_server 10.0.0.1 80 {",
            "weight 1",
            "}",
            "real_server 10.0.0.2 80 {",
            "weight 2",
            "}",
            "}",
        ];
        assert_eq!(lines(text, None), want);
        // A multiline parameter not at the end of its line is not replaced.
        let (out, warnings) = read("$M=a \\\nb\n\nx $M y\nx $M\n", None).unwrap();
        assert_eq!(out, ["x $M y", "x a", "b"]);
        assert_eq!(warnings.len(), 1);
        // The further lines come even when the first is not for this config id.
        assert_eq!(lines("$M=@other a \\\nb\n\n$M\n", Some("main")), ["b"]);
        // A blank line ends the definition; its first line may be empty.
        assert_eq!(lines("$M=\\\nb \\\n\nc\n$M\n", None), ["c", "b"]);
    }

    #[test]
    fn sequences_read_their_text_once_per_value() {
        let ips: Vec<String> = (0..4).map(|i| format!("ip_address 10.0.{i}.1")).collect();
        assert_eq!(lines("~SEQ(SUBNET, 0, 3) ip_address 10.0.${SUBNET}.1\n", None), ips);
        let v6 = ["fe80::20:90:1", "fe80::20:a0:1", "fe80::20:b0:1", "fe80::20:c0:1"];
        assert_eq!(lines("~SEQx(SUBNET, 144, 16, 192) fe80::20:${SUBNET}:1\n", None), v6);
        assert_eq!(lines("~SEQx(SUBNET, 0x90, 0x10, 0xc0) fe80::20:${SUBNET}:1\n", None), v6);
        // Two on a line: 4 times 7 lines, the inner one counting down.
        let out = lines(
            "~SEQx(AD2, 0x90, 0x10, 0xc0) ~SEQx(AD1, 0x12, -1, 0x0c) a:${AD2}:${AD1}\n",
            None,
        );
        assert_eq!(out.len(), 28);
        assert_eq!(
            (out[0].as_str(), out[6].as_str(), out[27].as_str()),
            ("a:90:12", "a:90:c", "a:c0:c")
        );
        // One number is the end, from 1 (or -1); two are start and end.
        assert_eq!(lines("~SEQ(I, 3) $I\n", None), ["1", "2", "3"]);
        assert_eq!(lines("~SEQ(I, -2) $I\n", None), ["-1", "-2"]);
        assert_eq!(lines("~SEQ(I, 3, 1) $I\n", None), ["3", "2", "1"]);
        // The numbers may be parameters.
        assert_eq!(lines("$N=2\n~SEQ(I, $N) $I\n", None), ["1", "2"]);
        for bad in [
            "~SEQ(I, 1, 0, 3) x",
            "~SEQ(I, 3, 1, 1) x",
            "~SEQ(I) x",
            "~SEQ I, 3 x",
            "~SEQ(I, 3 x",
            "~SEQx(I, -3) x",
        ] {
            let e = read(&format!("{bad}\n"), None).unwrap_err();
            assert!(
                e.starts_with(&format!("/etc/keepalived/keepalived.conf: line 1: {bad}: ")),
                "{e}"
            );
        }
        assert!(
            read("~LST(A, 1, 2) x\n", None).unwrap_err().contains("~LST blocks are not supported")
        );
    }

    #[test]
    fn the_pre_defined_parameters() {
        assert_eq!(lines("router_id ${_INSTANCE}\n", Some("lb1")), ["router_id lb1"]);
        assert_eq!(lines("p ${_PWD}/check.sh\n", None), ["p /etc/keepalived/check.sh"]);
        // In double quotes, a # or ! that a parameter gives starts no comment.
        assert_eq!(lines("p \"a${_HASH}b${_BANG}\" c\n", None), ["p \"a#b!\" c"]);
        // Outside them it does: the line is read again for comments after substitution.
        assert_eq!(lines("p a${_HASH}b\n", None), ["p a"]);
        let path = std::env::var("PATH").unwrap_or_default();
        assert_eq!(lines("p ${_ENV PATH}\n", None), [format!("p {path}")]);
        assert_eq!(lines("w ${_RANDOM 7 7}\n", None), ["w 7"]);
        let n: u32 = lines("${_RANDOM 3}\n", None)[0].parse().unwrap();
        assert!((3..=32767).contains(&n));
        let e = read("w ${_RANDOM a}\n", None).unwrap_err();
        assert!(e.ends_with("Definition _RANDOM requires numeric parameters only."), "{e}");
        let e = read("w ${_RANDOM 1 2 3}\n", None).unwrap_err();
        assert!(e.ends_with("requires between 0 and 2 parameters, 3 specified."), "{e}");
        // A file's own definition replaces a pre-defined one.
        assert_eq!(lines("$_INSTANCE=x\n${_INSTANCE}\n", Some("lb1")), ["x"]);
    }

    #[test]
    fn the_files_own_lines_are_not_limited() {
        // Only what parameters and sequences make counts towards MAX_WORK and MAX_MADE.
        let text = "x $_HASH\n".repeat(MAX_WORK / 2) + &"y\n".repeat(MAX_WORK);
        let (out, _) = read(&text, None).unwrap();
        assert_eq!(out.len(), MAX_WORK / 2 + MAX_WORK);
    }

    #[test]
    fn a_hostile_file_cannot_loop_or_grow_without_end() {
        // Doubling: the line reaches keepalived's 1024 bytes.
        let e = read("$A=${A}${A}\nx $A\n", None).unwrap_err();
        assert!(e.contains("longer than 1024 bytes"), "{e}");
        // A parameter that is itself: replaced again and again at the same length.
        let e = read("$A=$A\nx $A\n", None).unwrap_err();
        assert!(e.contains("more than 1000000 lines and substitutions"), "{e}");
        // A multiline parameter that uses itself.
        let e = read("$M=a \\\n$M\n\n$M\n", None).unwrap_err();
        assert!(e.contains("nest more than 32 deep"), "{e}");
        // A sequence too long, with text or without.
        for text in ["~SEQ(I, 1, 100000000) x $I\n", "~SEQ(I, 1, 9223372036854775807)\n"] {
            let e = read(text, None).unwrap_err();
            assert!(e.contains("more than 1000000 lines"), "{e}");
        }
        // Long lines, many times: bounded in bytes too.
        let text = format!("$A={}\n~SEQ(I, 1, 100000) $A\n", "a".repeat(1000));
        let e = read(&text, None).unwrap_err();
        assert!(e.contains("more than 16 MiB of lines"), "{e}");
        // Sequences within sequences, each short, multiply: still bounded.
        let e = read("~SEQ(A, 1000) ~SEQ(B, 1000) ~SEQ(C, 1000) x\n", None).unwrap_err();
        assert!(e.contains("more than 1000000 lines"), "{e}");
        // A multiline parameter whose first line is itself: the line stays short while each
        // use copies its 100 KB of further lines again; bounded before they are made.
        let text = format!("$M=$M \\\n{}\n$M\n", format!("{} \\\n", "b".repeat(1000)).repeat(100));
        let e = read(&text, None).unwrap_err();
        assert!(e.contains("multiline parameters used make more than 16 MiB"), "{e}");
    }

    #[test]
    fn an_undefined_parameter_is_warned_of_once_however_many_lines_use_it() {
        let (out, warnings) = read("~SEQ(I, 1, 1000) x $X $I\ny $X\n", None).unwrap();
        assert_eq!(out.len(), 1001);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("$X is not a defined parameter"), "{warnings:?}");
    }
}
