//! Command-line words split into options as popt splits them (the option parser ipvsadm is
//! built with, `poptGetNextOpt`), so a line is read the way ipvsadm reads it.
//!
//! - `--name` and `--name=value`; a long name matches exactly.
//! - `-abc` is `-a -b -c`; the first option in the bundle that takes a value takes the rest
//!   of the word (`-w3`, `-w=3`), or the next word when nothing is left (`-At 10.0.0.1:80`).
//! - An optional value (ipvsadm's `-p [timeout]`) is the rest of the word, or the next word
//!   when it does not start with `-`.
//! - A required value is the next word whatever it is (`-w -1` gives `-1`).
//! - `--` ends the options; `-` and words without a dash are arguments.

/// Whether an option takes a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Takes {
    /// A flag.
    Nothing,
    /// Always a value.
    Value,
    /// A value if one follows (see the module docs).
    OptionalValue,
}

/// One option of a table.
#[derive(Clone, Copy, Debug)]
pub struct Spec<Id> {
    /// The short letter, if any.
    pub short: Option<char>,
    /// The long name, if any (without `--`).
    pub long: Option<&'static str>,
    /// Whether it takes a value.
    pub takes: Takes,
    /// What the caller calls it.
    pub id: Id,
}

/// One option or argument, in the order of the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token<'a, Id> {
    /// An option of the table.
    Option {
        /// Its id.
        id: Id,
        /// As written: `-w` for a short option (also inside a bundle), `--weight` for a long.
        written: String,
        /// Its value, if it takes one and one was given.
        value: Option<&'a str>,
    },
    /// A word that is not an option.
    Argument(&'a str),
}

/// Splits `words` by `table`.
///
/// # Errors
///
/// An unknown option (naming it, and the word for a letter inside a bundle), a value missing
/// after an option that needs one, or a value given to a flag (`--name=value`).
pub fn split<'a, Id: Copy>(
    words: &[&'a str],
    table: &[Spec<Id>],
) -> Result<Vec<Token<'a, Id>>, String> {
    let mut tokens = Vec::new();
    let mut i = 0;
    let mut rest_are_arguments = false;
    while i < words.len() {
        let word = words[i];
        i += 1;
        if rest_are_arguments || word == "-" || !word.starts_with('-') {
            tokens.push(Token::Argument(word));
            continue;
        }
        if word == "--" {
            rest_are_arguments = true;
            continue;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (long, None),
            };
            let spec = table
                .iter()
                .find(|s| s.long == Some(name))
                .ok_or_else(|| format!("{:?}: unknown option", format!("--{name}")))?;
            let written = format!("--{name}");
            let value = match (spec.takes, inline) {
                (Takes::Nothing, Some(_)) => return Err(format!("{written} takes no value")),
                (Takes::Nothing, None) => None,
                (_, Some(value)) => Some(value),
                (Takes::Value, None) => Some(next_value(words, &mut i, &written)?),
                (Takes::OptionalValue, None) => optional_value(words, &mut i),
            };
            tokens.push(Token::Option { id: spec.id, written, value });
            continue;
        }
        // A bundle of short options.
        let letters = &word[1..];
        for (at, letter) in letters.char_indices() {
            let spec = table.iter().find(|s| s.short == Some(letter)).ok_or_else(|| {
                if letters.len() == letter.len_utf8() {
                    format!("{word:?}: unknown option")
                } else {
                    format!("{word:?}: unknown option -{letter}")
                }
            })?;
            let written = format!("-{letter}");
            let rest = &letters[at + letter.len_utf8()..];
            let rest = rest.strip_prefix('=').unwrap_or(rest);
            let value = match spec.takes {
                Takes::Nothing => None,
                _ if !rest.is_empty() => Some(rest),
                Takes::Value => Some(next_value(words, &mut i, &written)?),
                Takes::OptionalValue => optional_value(words, &mut i),
            };
            tokens.push(Token::Option { id: spec.id, written, value });
            if spec.takes != Takes::Nothing {
                // It took the rest of the word, or the next word.
                break;
            }
        }
    }
    Ok(tokens)
}

fn next_value<'a>(words: &[&'a str], i: &mut usize, written: &str) -> Result<&'a str, String> {
    let value = words.get(*i).ok_or_else(|| format!("{written} needs a value"))?;
    *i += 1;
    Ok(value)
}

fn optional_value<'a>(words: &[&'a str], i: &mut usize) -> Option<&'a str> {
    let value = words.get(*i).filter(|w| !w.starts_with('-'))?;
    *i += 1;
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[Spec<char>] = &[
        Spec { short: Some('A'), long: Some("add-service"), takes: Takes::Nothing, id: 'A' },
        Spec { short: Some('t'), long: Some("tcp-service"), takes: Takes::Value, id: 't' },
        Spec { short: Some('p'), long: Some("persistent"), takes: Takes::OptionalValue, id: 'p' },
        Spec { short: Some('w'), long: Some("weight"), takes: Takes::Value, id: 'w' },
        Spec { short: Some('n'), long: Some("numeric"), takes: Takes::Nothing, id: 'n' },
        Spec { short: None, long: Some("stats"), takes: Takes::Nothing, id: 's' },
    ];

    /// (id, written, value) of each option; arguments as ('_', word, None).
    fn run(line: &str) -> Result<Vec<(char, String, Option<String>)>, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        Ok(split(&words, TABLE)?
            .into_iter()
            .map(|t| match t {
                Token::Option { id, written, value } => (id, written, value.map(str::to_string)),
                Token::Argument(w) => ('_', w.to_string(), None),
            })
            .collect())
    }

    fn opt(id: char, written: &str, value: Option<&str>) -> (char, String, Option<String>) {
        (id, written.to_string(), value.map(str::to_string))
    }

    #[test]
    fn bundles_values_and_long_forms_as_popt_reads_them() {
        let at = |v| opt('t', "-t", Some(v));
        assert_eq!(run("-At 1:80").unwrap(), [opt('A', "-A", None), at("1:80")]);
        assert_eq!(run("-At1:80").unwrap(), [opt('A', "-A", None), at("1:80")]);
        assert_eq!(run("-t=1:80").unwrap(), [at("1:80")]);
        assert_eq!(run("-An").unwrap(), [opt('A', "-A", None), opt('n', "-n", None)]);
        assert_eq!(run("-w -1").unwrap(), [opt('w', "-w", Some("-1"))]);
        assert_eq!(run("-wn").unwrap(), [opt('w', "-w", Some("n"))], "the rest is the value");
        assert_eq!(
            run("--tcp-service=1:80 --weight 2 --stats").unwrap(),
            [
                opt('t', "--tcp-service", Some("1:80")),
                opt('w', "--weight", Some("2")),
                opt('s', "--stats", None)
            ]
        );
        assert_eq!(run("-- -A x").unwrap(), [opt('_', "-A", None), opt('_', "x", None)]);
        assert_eq!(run("- x").unwrap(), [opt('_', "-", None), opt('_', "x", None)]);
    }

    #[test]
    fn an_optional_value_is_taken_unless_an_option_follows() {
        let p = |v| opt('p', "-p", v);
        assert_eq!(run("-p 60").unwrap(), [p(Some("60"))]);
        assert_eq!(run("-p60").unwrap(), [p(Some("60"))]);
        assert_eq!(run("-p").unwrap(), [p(None)]);
        assert_eq!(run("-p -n").unwrap(), [p(None), opt('n', "-n", None)]);
        assert_eq!(run("-Ap").unwrap(), [opt('A', "-A", None), p(None)]);
        assert_eq!(run("--persistent").unwrap(), [opt('p', "--persistent", None)]);
        assert_eq!(run("--persistent=9").unwrap(), [opt('p', "--persistent", Some("9"))]);
        assert_eq!(run("--persistent 9").unwrap(), [opt('p', "--persistent", Some("9"))]);
    }

    #[test]
    fn errors_name_the_option() {
        assert_eq!(run("-q").unwrap_err(), "\"-q\": unknown option");
        assert_eq!(run("-Aq").unwrap_err(), "\"-Aq\": unknown option -q");
        assert_eq!(run("--tcp").unwrap_err(), "\"--tcp\": unknown option", "no abbreviations");
        assert_eq!(run("-A -w").unwrap_err(), "-w needs a value");
        assert_eq!(run("--weight").unwrap_err(), "--weight needs a value");
        assert_eq!(run("--numeric=1").unwrap_err(), "--numeric takes no value");
    }
}
