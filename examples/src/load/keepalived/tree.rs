//! keepalived.conf's blocks: each statement is a keyword and the words after it on its
//! line, and, when a `{` follows (on that line or the next), the statements up to the
//! matching `}`.

use super::lexer::Word;
use super::{KeepalivedError, Place};

/// One statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// The first word.
    pub(crate) keyword: String,
    /// The other words of its line.
    pub(crate) args: Vec<String>,
    /// Where the keyword is.
    pub(crate) at: Place,
    /// The block that follows, if any.
    pub(crate) block: Option<Vec<Self>>,
}

fn is(word: &Word, brace: &str) -> bool {
    !word.quoted && word.text == brace
}

/// The deepest blocks may nest. keepalived's own grammar goes four deep (`virtual_server`,
/// `real_server`, `HTTP_GET`, `url`); the limit only keeps a hostile file from exhausting
/// the stack.
pub(crate) const MAX_DEPTH: usize = 32;

/// The statements of a file's words.
///
/// # Errors
///
/// A `}` that closes no block, a block left open at the end, or blocks nested deeper than
/// [`MAX_DEPTH`], naming the line.
pub(crate) fn parse(words: &[Word]) -> Result<Vec<Node>, KeepalivedError> {
    let mut at = 0;
    let nodes = statements(words, &mut at, None, 0)?;
    Ok(nodes)
}

fn statements(
    words: &[Word],
    at: &mut usize,
    opened: Option<&Place>,
    depth: usize,
) -> Result<Vec<Node>, KeepalivedError> {
    let mut nodes = Vec::new();
    while let Some(word) = words.get(*at) {
        if is(word, "}") {
            if opened.is_none() {
                return Err(KeepalivedError::at(
                    &word.at,
                    "this } closes no block: remove it, or open the block it closes with {".into(),
                ));
            }
            *at += 1;
            return Ok(nodes);
        }
        if is(word, "{") {
            return Err(KeepalivedError::at(
                &word.at,
                "a { with no keyword before it: put the block after its keyword \
                 (virtual_server IP PORT {)"
                    .into(),
            ));
        }
        *at += 1;
        let mut node =
            Node { keyword: word.text.clone(), args: Vec::new(), at: word.at.clone(), block: None };
        while let Some(next) = words.get(*at) {
            if next.at != word.at || is(next, "{") || is(next, "}") {
                break;
            }
            node.args.push(next.text.clone());
            *at += 1;
        }
        if let Some(next) = words.get(*at)
            && is(next, "{")
        {
            if depth == MAX_DEPTH {
                return Err(KeepalivedError::at(
                    &next.at,
                    format!(
                        "blocks nested more than {MAX_DEPTH} deep: keepalived.conf's go four \
                         deep; close the blocks left open above with }}"
                    ),
                ));
            }
            *at += 1;
            node.block = Some(statements(words, at, Some(&node.at), depth + 1)?);
        }
        nodes.push(node);
    }
    match opened {
        Some(place) => Err(KeepalivedError::at(
            place,
            "this block is not closed: the file ends before its }; add the }".into(),
        )),
        None => Ok(nodes),
    }
}
