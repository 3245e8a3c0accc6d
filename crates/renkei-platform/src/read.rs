//! The hardened reader: bytes to a small borrowed element tree, refusing anything unsafe.
//!
//! Before any structure is looked at: size bound, UTF-8 only. While reading: no DOCTYPE (so no
//! entity declarations and no external references), no processing instruction but the leading
//! XML declaration, only the five predefined entities and character references, every character
//! an XML `Char`, depth bounded, every element unprefixed in the one expected default namespace.
//! Comments are skipped. Text keeps CR/LF normalised as XML requires. Values borrow from the
//! input unless an escape or line-end forced a copy.

use std::borrow::Cow;

use quick_xml::errors::{Error as QxError, IllFormedError, SyntaxError};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::check::is_xml_text;
use crate::error::XmlError;
use crate::{MAX_DEPTH, MAX_MESSAGE_BYTES};

/// One element: its name, attributes (without `xmlns`), text, children.
#[derive(Debug)]
pub(crate) struct Node<'a> {
    pub name: &'a str,
    pub attrs: Vec<(&'a str, Cow<'a, str>)>,
    pub text: Cow<'a, str>,
    pub children: Vec<Node<'a>>,
}

fn path_of(stack: &[Node<'_>], last: Option<&str>) -> String {
    let mut p = String::new();
    for n in stack.iter().map(|n| n.name).chain(last) {
        if !p.is_empty() {
            p.push('/');
        }
        p.push_str(n);
    }
    p
}

fn malformed(stack: &[Node<'_>], message: impl Into<String>) -> XmlError {
    XmlError::new(XmlError::MALFORMED, path_of(stack, None), message)
}

/// Describes a quick-xml error by its kind only: never quotes document content.
fn describe(e: &QxError) -> (&'static str, &'static str) {
    match e {
        QxError::Syntax(s) => (
            XmlError::MALFORMED,
            match s {
                SyntaxError::InvalidBangMarkup => "unknown markup after '<!'",
                SyntaxError::UnclosedPIOrXmlDecl => {
                    "unclosed processing instruction or declaration"
                }
                SyntaxError::UnclosedComment => "unclosed comment",
                SyntaxError::UnclosedDoctype => "unclosed DOCTYPE",
                SyntaxError::UnclosedCData => "unclosed CDATA section",
                SyntaxError::UnclosedTag => "unclosed tag",
            },
        ),
        QxError::IllFormed(i) => (
            XmlError::MALFORMED,
            match i {
                IllFormedError::MismatchedEndTag { .. } => "end tag does not match start tag",
                IllFormedError::UnmatchedEndTag(_) => "end tag without start tag",
                IllFormedError::MissingDeclVersion(_) => "XML declaration without version",
                IllFormedError::DoubleHyphenInComment => "'--' inside a comment",
                _ => "ill-formed XML",
            },
        ),
        QxError::InvalidAttr(_) => (XmlError::MALFORMED, "malformed or duplicate attribute"),
        QxError::Escape(quick_xml::escape::EscapeError::UnrecognizedEntity(..)) => (
            XmlError::ENTITY_FORBIDDEN,
            "reference to an undeclared entity",
        ),
        QxError::Escape(_) => (
            XmlError::MALFORMED,
            "malformed entity or character reference",
        ),
        _ => (XmlError::MALFORMED, "malformed XML"),
    }
}

fn qx_err(stack: &[Node<'_>], e: &QxError, pos: u64) -> XmlError {
    let (code, what) = describe(e);
    XmlError::new(
        code,
        path_of(stack, None),
        format!("{what} (near byte {pos})"),
    )
}

/// XML line-end normalisation: CR LF and lone CR become LF (character references are untouched,
/// since they are still escaped at this point).
fn normalize_newlines(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\r') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Unescapes a raw (escaped) text or attribute value; `attr` also applies attribute-value
/// normalisation (literal TAB, LF become spaces).
fn unescape<'a>(raw: &'a str, attr: bool) -> Result<Cow<'a, str>, (&'static str, &'static str)> {
    if !is_xml_text(raw) {
        return Err((XmlError::MALFORMED, "character not allowed in XML"));
    }
    let mut text = normalize_newlines(raw);
    if attr && text.contains(['\t', '\n']) {
        text = Cow::Owned(text.replace(['\t', '\n'], " "));
    }
    if !text.contains('&') {
        return Ok(text);
    }
    let un = match quick_xml::escape::unescape(&text) {
        Ok(u) => u.into_owned(),
        Err(quick_xml::escape::EscapeError::UnrecognizedEntity(..)) => {
            return Err((
                XmlError::ENTITY_FORBIDDEN,
                "reference to an undeclared entity",
            ))
        }
        Err(_) => {
            return Err((
                XmlError::MALFORMED,
                "malformed entity or character reference",
            ))
        }
    };
    if !is_xml_text(&un) {
        return Err((
            XmlError::MALFORMED,
            "character reference to a character not allowed in XML",
        ));
    }
    Ok(Cow::Owned(un))
}

/// Whether text is only XML whitespace.
pub(crate) fn is_blank(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

fn append<'a>(dst: &mut Cow<'a, str>, piece: Cow<'a, str>) {
    if dst.is_empty() {
        *dst = piece;
    } else {
        dst.to_mut().push_str(&piece);
    }
}

/// True when every attribute value's closing quote is followed by white space, `/` or the
/// tag's end: XML requires the space (`a="1"b="2"` is not well-formed) and quick-xml's
/// attribute iterator does not check it, so it is checked here, by hand, before it runs.
fn attributes_separated(raw: &[u8]) -> bool {
    let mut quote: Option<u8> = None;
    let mut just_closed = false;
    for &b in raw {
        if just_closed {
            just_closed = false;
            if !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'/') {
                return false;
            }
        }
        match quote {
            Some(q) if b == q => {
                quote = None;
                just_closed = true;
            }
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None => {}
        }
    }
    true
}

/// Reads the start tag of an element: name (no prefix), namespace, attributes.
fn start_node<'a>(
    input: &'a str,
    e: &BytesStart<'a>,
    stack: &[Node<'a>],
    is_root: bool,
    ns: &str,
) -> Result<Node<'a>, XmlError> {
    let name = slice_str(input, e.name().into_inner())
        .filter(|n| plausible_name(n))
        .ok_or_else(|| malformed(stack, "malformed or overlong element name"))?;
    if stack.len() + 1 > MAX_DEPTH {
        return Err(XmlError::new(
            XmlError::TOO_DEEP,
            path_of(stack, Some(name)),
            format!("elements nest deeper than {MAX_DEPTH}"),
        ));
    }
    if name.contains(':') {
        return Err(XmlError::new(
            XmlError::WRONG_NAMESPACE,
            path_of(stack, Some(name)),
            "prefixed element names are not accepted",
        ));
    }
    if !attributes_separated(e.attributes_raw()) {
        return Err(XmlError::new(
            XmlError::MALFORMED,
            path_of(stack, Some(name)),
            "attributes must be separated by white space",
        ));
    }
    let mut attrs = Vec::new();
    let mut saw_ns = false;
    for a in e.attributes().with_checks(true) {
        let a = a.map_err(|_| {
            XmlError::new(
                XmlError::MALFORMED,
                path_of(stack, Some(name)),
                "malformed or duplicate attribute",
            )
        })?;
        let key = slice_str(input, a.key.into_inner())
            .filter(|n| plausible_name(n))
            .ok_or_else(|| malformed(stack, "malformed or overlong attribute name"))?;
        let raw = match &a.value {
            Cow::Borrowed(b) => slice_str(input, b),
            Cow::Owned(_) => None,
        }
        .ok_or_else(|| malformed(stack, "attribute value not UTF-8"))?;
        let at = || path_of(stack, Some(name)) + "/@" + key;
        if raw.contains('<') {
            return Err(XmlError::new(
                XmlError::MALFORMED,
                at(),
                "'<' in an attribute value",
            ));
        }
        let value = unescape(raw, true).map_err(|(code, m)| XmlError::new(code, at(), m))?;
        if key == "xmlns" {
            if value != ns {
                return Err(XmlError::new(
                    XmlError::WRONG_NAMESPACE,
                    path_of(stack, Some(name)),
                    format!("expected namespace {ns}"),
                ));
            }
            saw_ns = true;
        } else if key.starts_with("xmlns:") {
            return Err(XmlError::new(
                XmlError::WRONG_NAMESPACE,
                path_of(stack, Some(name)),
                "namespace prefixes are not accepted",
            ));
        } else {
            attrs.push((key, value));
        }
    }
    if is_root && !saw_ns {
        return Err(XmlError::new(
            XmlError::WRONG_NAMESPACE,
            name,
            format!("root element must declare xmlns=\"{ns}\""),
        ));
    }
    Ok(Node {
        name,
        attrs,
        text: Cow::Borrowed(""),
        children: Vec::new(),
    })
}

/// Longest element or attribute name accepted; the schema's longest is 23 bytes, and the
/// bound keeps an error path short whatever the document holds.
const MAX_NAME_BYTES: usize = 64;

/// A cheap subset of the XML `Name` rule (quick-xml does not check names): non-empty,
/// bounded, not starting with a digit, `-` or `.`, and free of quotes, `<`, `>`, `&`, `=`.
fn plausible_name(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME_BYTES
        && !matches!(b[0], b'0'..=b'9' | b'-' | b'.')
        && !b.iter().any(|c| {
            matches!(c, b'"' | b'\'' | b'<' | b'>' | b'&' | b'=' | b'/') || c.is_ascii_whitespace()
        })
}

/// Re-borrows a byte slice that quick-xml took from `input` as `&str` with `input`'s lifetime.
fn slice_str<'a>(input: &'a str, part: &[u8]) -> Option<&'a str> {
    let base = input.as_ptr() as usize;
    let start = (part.as_ptr() as usize).checked_sub(base)?;
    input.get(start..start.checked_add(part.len())?)
}

/// Checks a finished element (no mixed content) and hangs it on its parent, or returns it
/// as the root.
fn finish_node<'a>(
    mut node: Node<'a>,
    stack: &mut [Node<'a>],
) -> Result<Option<Node<'a>>, XmlError> {
    if !node.children.is_empty() {
        if !is_blank(&node.text) {
            return Err(XmlError::new(
                XmlError::UNEXPECTED_TEXT,
                path_of(stack, Some(node.name)),
                "text mixed with child elements",
            ));
        }
        node.text = Cow::Borrowed("");
    }
    match stack.last_mut() {
        Some(parent) => {
            parent.children.push(node);
            Ok(None)
        }
        None => Ok(Some(node)),
    }
}

/// Checks the XML declaration strictly against the XML 1.0 grammar: `version` 1.0, then
/// optionally `encoding` (UTF-8 only) and `standalone` (yes/no), in that order, separated by
/// whitespace, each quoted with `"` or `'`.
fn check_declaration(content: &[u8]) -> Result<(), &'static str> {
    const BAD: &str = "malformed XML declaration";
    let rest = content.strip_prefix(b"xml").ok_or(BAD)?;
    let mut rest = rest;
    let mut seen_version = false;
    let mut order = 0;
    loop {
        let trimmed = rest.trim_ascii_start();
        if trimmed.is_empty() {
            break;
        }
        if trimmed.len() == rest.len() {
            return Err(BAD); // pseudo-attributes must be separated by whitespace
        }
        let eq = trimmed.iter().position(|&b| b == b'=').ok_or(BAD)?;
        let name = trimmed[..eq].trim_ascii_end();
        let after = trimmed[eq + 1..].trim_ascii_start();
        let quote = *after.first().ok_or(BAD)?;
        if quote != b'"' && quote != b'\'' {
            return Err(BAD);
        }
        let close = after[1..].iter().position(|&b| b == quote).ok_or(BAD)?;
        let value = &after[1..1 + close];
        rest = &after[close + 2..];
        let rank = match name {
            b"version" => {
                if value != b"1.0" {
                    return Err("only XML version 1.0 is accepted");
                }
                seen_version = true;
                1
            }
            b"encoding" => {
                if !value.eq_ignore_ascii_case(b"UTF-8") {
                    return Err("only UTF-8 is accepted");
                }
                2
            }
            b"standalone" => {
                if value != b"yes" && value != b"no" {
                    return Err(BAD);
                }
                3
            }
            _ => return Err(BAD),
        };
        if rank <= order || (rank > 1 && !seen_version) {
            return Err(BAD);
        }
        order = rank;
    }
    if seen_version {
        Ok(())
    } else {
        Err("XML declaration without version")
    }
}

/// Parses a whole document whose elements must all be in namespace `ns`.
pub(crate) fn parse_document<'a>(bytes: &'a [u8], ns: &str) -> Result<Node<'a>, XmlError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(XmlError::new(
            XmlError::TOO_LARGE,
            "",
            format!(
                "document is {} bytes, over the limit of {MAX_MESSAGE_BYTES}",
                bytes.len()
            ),
        ));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let input = std::str::from_utf8(bytes).map_err(|e| {
        XmlError::new(
            XmlError::MALFORMED,
            "",
            format!("not UTF-8 (at byte {})", e.valid_up_to()),
        )
    })?;
    let mut reader = Reader::from_str(input);
    {
        let c = reader.config_mut();
        c.check_end_names = true;
        c.check_comments = true;
        c.expand_empty_elements = false;
        c.trim_text(false);
    }
    let mut stack: Vec<Node<'a>> = Vec::with_capacity(MAX_DEPTH);
    let mut root: Option<Node<'a>> = None;
    let mut first = true;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| qx_err(&stack, &e, reader.error_position()))?;
        let was_first = std::mem::replace(&mut first, false);
        match event {
            Event::Decl(d) => {
                if !was_first {
                    return Err(malformed(&stack, "XML declaration not at the start"));
                }
                check_declaration(&d).map_err(|m| malformed(&stack, m))?;
            }
            Event::DocType(_) => {
                return Err(XmlError::new(
                    XmlError::DTD_FORBIDDEN,
                    path_of(&stack, None),
                    "DOCTYPE and entity declarations are not accepted",
                ))
            }
            Event::PI(_) => {
                return Err(XmlError::new(
                    XmlError::PI_FORBIDDEN,
                    path_of(&stack, None),
                    "processing instructions are not accepted",
                ))
            }
            Event::Comment(_) => {}
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(malformed(&stack, "content after the root element"));
            }
            Event::Start(e) => {
                let node = start_node(input, &e, &stack, stack.is_empty(), ns)?;
                stack.push(node);
            }
            Event::Empty(e) => {
                let node = start_node(input, &e, &stack, stack.is_empty(), ns)?;
                root = finish_node(node, &mut stack)?;
            }
            Event::End(_) => {
                let node = stack
                    .pop()
                    .ok_or_else(|| malformed(&[], "end tag without start tag"))?;
                root = finish_node(node, &mut stack)?;
            }
            Event::Text(t) => {
                let raw =
                    slice_str(input, &t).ok_or_else(|| malformed(&stack, "text not UTF-8"))?;
                if stack.is_empty() {
                    if !is_blank(raw) {
                        return Err(malformed(&stack, "text outside the root element"));
                    }
                } else if is_blank(raw) && stack.last().is_some_and(|top| !top.children.is_empty())
                {
                    // Indentation between child elements: insignificant, and skipping it
                    // saves a copy per container element.
                } else {
                    let value = unescape(raw, false)
                        .map_err(|(code, m)| XmlError::new(code, path_of(&stack, None), m))?;
                    if let Some(top) = stack.last_mut() {
                        append(&mut top.text, value);
                    }
                }
            }
            Event::CData(c) => {
                let raw =
                    slice_str(input, &c).ok_or_else(|| malformed(&stack, "CDATA not UTF-8"))?;
                if stack.is_empty() {
                    return Err(malformed(&stack, "CDATA outside the root element"));
                }
                if !is_xml_text(raw) {
                    return Err(malformed(&stack, "character not allowed in XML"));
                }
                let value = normalize_newlines(raw);
                if let Some(top) = stack.last_mut() {
                    append(&mut top.text, value);
                }
            }
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(malformed(&stack, "document ends inside an element"));
    }
    root.ok_or_else(|| XmlError::new(XmlError::MALFORMED, "", "no root element"))
}

#[cfg(test)]
mod tests {
    use super::attributes_separated;

    #[test]
    fn attributes_need_white_space_between_them() {
        assert!(attributes_separated(br#" a="1" b='2'"#));
        assert!(attributes_separated(b" a=\"1\"\tb=\"2\"\r\n c=\"x'y\"/"));
        assert!(attributes_separated(b""));
        assert!(!attributes_separated(br#" a="1"b="2""#));
        assert!(!attributes_separated(br#" a='1'b='2'"#));
        // A quote of the other kind inside a value does not end it.
        assert!(!attributes_separated(br#" a="it's"b="2""#));
    }
}
