//! Reading a policy file: JSON or TOML by extension (or `--format`), maybe a
//! policy inside a larger JSON file (`--pointer /policy`), and turning a
//! document path such as `roles[1].permissions[0].scope` into the
//! `line:column` where it is written.
//!
//! The library reports every problem by its document path; this module only
//! finds that path in the text. JSON has no spans in serde_json, so a small
//! scanner indexes where each value starts; TOML has spans in `toml::de::DeTable`.
//! Either way the file is indexed once, so locating every problem of a
//! document with thousands of them stays linear in the file.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use scope_policy::{LoadError, Policy, PolicyDocument, Problem};
use serde::Serialize;

/// How a policy file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// JSON (`.json`).
    Json,
    /// TOML (`.toml`).
    Toml,
}

/// How to read policy files: the command line's `--format` and `--pointer`.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// The format of every file, instead of each file's extension.
    pub format: Option<Format>,
    /// A JSON pointer (RFC 6901) to the policy inside each file, such as `/policy`.
    pub pointer: Option<String>,
}

/// A file that cannot be used at all: it cannot be read, its format is
/// unknown, or the pointer leads nowhere.
#[derive(Debug)]
pub struct Unusable {
    /// The file, as given.
    pub file: String,
    /// Why, as a phrase.
    pub reason: String,
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.reason)
    }
}

/// One problem of a policy file, at its document path and, when it can be
/// found in the text, its line and column (both from 1, columns in characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Located {
    /// The document path (`apis[0].scopes[2].name`); empty for a problem of the whole text.
    pub path: String,
    /// The line, from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The column, from 1, in characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// A policy file read into memory, ready to build and to locate paths in.
#[derive(Debug)]
pub struct Source {
    /// The file, as given on the command line.
    pub file: String,
    text: String,
    format: Format,
    // INVARIANT: the byte range of the policy document inside `text` (the
    // whole text unless a pointer chose a part); on a char boundary.
    range: Range<usize>,
    // The path of the policy inside the file, for locating (JSON pointer segments).
    prefix: Vec<Segment>,
    // Where each value starts; `None` for text that does not parse.
    tree: Option<json::Node>,
    // Where each line starts, for line and column.
    lines: Lines,
}

/// A policy that built, with the document it came from.
#[derive(Debug)]
pub struct Loaded {
    /// The document as written (for paths of entries and what was left out).
    pub document: PolicyDocument,
    /// The built policy.
    pub policy: Policy,
}

impl Source {
    /// Reads `file` and finds the policy in it.
    ///
    /// # Errors
    ///
    /// [`Unusable`] when the file cannot be read, has no known format, or
    /// the pointer is given for TOML or leads to nothing.
    pub fn read(file: &str, options: &ReadOptions) -> Result<Source, Unusable> {
        let unusable = |reason: String| Unusable {
            file: file.to_owned(),
            reason,
        };
        let format = match options.format {
            Some(format) => format,
            None => format_of(file).ok_or_else(|| {
                unusable("unknown format: name a `.json` or `.toml` file, or pass --format".to_owned())
            })?,
        };
        let text =
            std::fs::read_to_string(file).map_err(|error| unusable(format!("cannot read: {error}")))?;
        let tree = match format {
            Format::Json => json::index(&text).ok(),
            Format::Toml => toml_tree(&text),
        };
        let mut source = Source {
            file: file.to_owned(),
            range: 0..text.len(),
            lines: Lines::new(&text),
            text,
            format,
            prefix: Vec::new(),
            tree,
        };
        if let Some(pointer) = &options.pointer {
            if format != Format::Json {
                return Err(unusable("--pointer reads JSON files only".to_owned()));
            }
            let prefix = parse_pointer(pointer).map_err(unusable)?;
            // Text the scanner refuses is read whole: serde_json then says where it is wrong.
            if let Some(root) = &source.tree {
                let (found, depth) = root.find(&prefix);
                if depth < prefix.len() {
                    return Err(unusable(format!("the pointer {pointer:?} leads to nothing")));
                }
                source.range = found.span.clone();
            }
            source.prefix = prefix;
        }
        Ok(source)
    }

    /// The policy document's text.
    pub fn document_text(&self) -> &str {
        self.text.get(self.range.clone()).unwrap_or_default()
    }

    /// Builds the policy, or says every problem with its place in the file.
    ///
    /// # Errors
    ///
    /// One [`Located`] for a syntax error, every problem of the document's
    /// shape and of the policy otherwise.
    pub fn load(&self) -> Result<Loaded, Vec<Located>> {
        let text = self.document_text();
        let read = match self.format {
            Format::Json => PolicyDocument::from_json(text),
            Format::Toml => PolicyDocument::from_toml(text),
        };
        let document = match read {
            Ok(document) => document,
            // Problems of the shape: loading the policy reports them with
            // the policy's own problems.
            Err(LoadError::Policy(shape)) => {
                let loaded = match self.format {
                    Format::Json => Policy::from_json(text),
                    Format::Toml => Policy::from_toml(text),
                };
                let error = loaded.err().unwrap_or(LoadError::Policy(shape));
                return Err(self.locate_load_error(error));
            }
            Err(error) => return Err(self.locate_load_error(error)),
        };
        // LIBRARY: `from_document` takes the document by value, and the built
        // policy does not keep it; the lints need it for what was written.
        match Policy::from_document(document.clone()) {
            Ok(policy) => Ok(Loaded { document, policy }),
            Err(errors) => Err(errors
                .iter()
                .map(|error| self.located(error.path(), error.problem().to_string()))
                .collect()),
        }
    }

    /// A finding at `path`, with its line and column when the path is in the text.
    pub fn located(&self, path: &str, message: String) -> Located {
        let (line, column) = match self.position_of(path) {
            Some((line, column)) => (Some(line), Some(column)),
            None => (None, None),
        };
        Located {
            path: path.to_owned(),
            line,
            column,
            message,
        }
    }

    /// Where the value at `path` is written (or, when the path is not in
    /// the text, such as a field left out, its closest written ancestor).
    pub fn position_of(&self, path: &str) -> Option<(usize, usize)> {
        self.find(path).map(|(position, _)| position)
    }

    /// Where the value at `path` is written, and whether that is the value
    /// itself (`true`) or its closest written ancestor.
    fn find(&self, path: &str) -> Option<((usize, usize), bool)> {
        self.find_in_tree(path, json::Node::find)
    }

    fn find_in_tree(
        &self,
        path: &str,
        find: impl for<'n> FnOnce(&'n json::Node, &[Segment]) -> (&'n json::Node, usize),
    ) -> Option<((usize, usize), bool)> {
        let mut segments = self.prefix.clone();
        segments.extend(parse_path(path)?);
        let (node, depth) = find(self.tree.as_ref()?, &segments);
        Some((
            self.lines.position(&self.text, node.span.start),
            depth == segments.len(),
        ))
    }

    fn locate_load_error(&self, error: LoadError) -> Vec<Located> {
        match error {
            LoadError::Syntax { path, message } => {
                // Text that does not parse: the parser says where.
                let (message, at) = match self.format {
                    Format::Json => json_position(&message),
                    Format::Toml => (toml_message(&message), self.toml_syntax_offset()),
                };
                match at {
                    Some(at) => {
                        let (line, column) = self.absolute(at);
                        vec![Located {
                            path,
                            line: Some(line),
                            column: Some(column),
                            message,
                        }]
                    }
                    None => vec![self.located(&path, message)],
                }
            }
            LoadError::Policy(errors) => errors
                .iter()
                .map(|error| match error.problem() {
                    // The later of the two keys, where the problem is.
                    Problem::DuplicateKey { .. } => {
                        let position = self.find_in_tree(error.path(), json::Node::find_repeated);
                        Located {
                            path: error.path().to_owned(),
                            line: position.map(|((line, _), _)| line),
                            column: position.map(|((_, column), _)| column),
                            message: error.problem().to_string(),
                        }
                    }
                    problem => self.located(error.path(), problem.to_string()),
                })
                .collect(),
            // LoadError is non-exhaustive: a future variant still reports its text.
            other => vec![self.located("", other.to_string())],
        }
    }

    /// A position inside the document text as line and column of the whole file.
    fn absolute(&self, at: InDocument) -> (usize, usize) {
        let document = self.document_text();
        let offset = match at {
            InDocument::Offset(offset) => offset,
            InDocument::LineColumn(line, column) => offset_of(document, line, column),
        };
        let offset = self.range.start + offset.min(document.len());
        self.lines.position(&self.text, offset)
    }

    /// The byte offset, in the document text, of a TOML syntax error.
    fn toml_syntax_offset(&self) -> Option<InDocument> {
        let error = toml::de::DeTable::parse(self.document_text()).err()?;
        error.span().map(|span| InDocument::Offset(span.start))
    }
}

/// A position inside the document text, as a parser reports it.
#[derive(Debug, Clone, Copy)]
enum InDocument {
    Offset(usize),
    /// serde_json's: line from 1, column from 1 in bytes (0 at a line's start).
    LineColumn(usize, usize),
}

/// The format a file's extension names.
fn format_of(file: &str) -> Option<Format> {
    let extension = Path::new(file).extension()?.to_str()?.to_ascii_lowercase();
    match extension.as_str() {
        "json" => Some(Format::Json),
        "toml" => Some(Format::Toml),
        _ => None,
    }
}

/// serde_json ends every message with ` at line L column C`: split it off.
// LIBRARY: `LoadError::Syntax` carries the parser's message
// only; a position (line, column, or a byte span) in the error would replace
// this parsing of the message, and the second TOML parse below.
fn json_position(message: &str) -> (String, Option<InDocument>) {
    let Some((text, place)) = message.rsplit_once(" at line ") else {
        return (message.to_owned(), None);
    };
    let mut numbers = place.split(" column ").map(str::parse::<usize>);
    match (numbers.next(), numbers.next(), numbers.next()) {
        (Some(Ok(line)), Some(Ok(column)), None) => {
            (text.to_owned(), Some(InDocument::LineColumn(line, column)))
        }
        _ => (message.to_owned(), None),
    }
}

/// The toml crate's message names the place in prose (`TOML parse error at
/// line 3, column 5 | … | ^ unknown field …`): keep the message proper.
fn toml_message(message: &str) -> String {
    match message.rsplit_once(" ^") {
        Some((_, rest)) if message.starts_with("TOML parse error") => {
            rest.trim_start_matches('^').trim().to_owned()
        }
        _ => message.to_owned(),
    }
}

/// The byte offset of serde_json's (line, column) in `text`.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    (start + column.saturating_sub(1)).min(text.len())
}

/// Where each line of a text starts, and whether it is ASCII, so that the
/// line and column of an offset cost a binary search, not a scan of the text.
#[derive(Debug)]
struct Lines {
    // (byte offset of the line's start, whether the line is all ASCII)
    starts: Vec<(usize, bool)>,
}

impl Lines {
    fn new(text: &str) -> Self {
        let mut starts = Vec::new();
        let mut start = 0;
        for line in text.split('\n') {
            starts.push((start, line.is_ascii()));
            start += line.len() + 1;
        }
        Lines { starts }
    }

    /// Line and column (characters) of a byte offset in `text`, both from 1.
    fn position(&self, text: &str, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&(start, _)| start <= offset).max(1);
        let (start, ascii) = self.starts.get(line - 1).copied().unwrap_or((0, true));
        let before = text.get(start..offset).unwrap_or_default();
        let column = if ascii {
            before.len()
        } else {
            before.chars().count()
        };
        (line, column + 1)
    }
}

/// One step of a document path: a field name or an array position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// `apis[0].scopes[2].name` → `apis`, 0, `scopes`, 2, `name`. An empty path is the root.
fn parse_path(path: &str) -> Option<Vec<Segment>> {
    let mut segments = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let (number, after) = after.split_once(']')?;
            segments.push(Segment::Index(number.parse().ok()?));
            rest = after;
        } else {
            let rest_key = rest.strip_prefix('.').unwrap_or(rest);
            let end = rest_key.find(['.', '[']).unwrap_or(rest_key.len());
            let (key, after) = rest_key.split_at(end);
            segments.push(Segment::Key(key.to_owned()));
            rest = after;
        }
    }
    Some(segments)
}

/// RFC 6901: `/policy` → `policy`; `~1` is `/`, `~0` is `~`; a number is also an array position.
fn parse_pointer(pointer: &str) -> Result<Vec<Segment>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!("the pointer {pointer:?} must start with `/` (RFC 6901)"));
    };
    Ok(rest
        .split('/')
        .map(|token| {
            let key = token.replace("~1", "/").replace("~0", "~");
            match key.parse::<usize>() {
                Ok(index) if !key.starts_with('+') => Segment::Index(index),
                _ => Segment::Key(key),
            }
        })
        .collect())
}

/// Where each value of a TOML text starts, as the same tree as JSON's;
/// `None` when the text is not TOML (the toml crate says why).
fn toml_tree(text: &str) -> Option<json::Node> {
    use toml::de::{DeTable, DeValue};
    /// Deeper than any policy document; past it values are not followed,
    /// so hostile nesting cannot exhaust the stack.
    const DEEPEST: usize = 128;
    fn table(span: Range<usize>, table: &DeTable<'_>, depth: usize) -> json::Node {
        let members = table
            .iter()
            .map(|(key, value)| (key.get_ref().to_string(), node(value, depth + 1)))
            .collect();
        json::Node::object(span, members)
    }
    fn node(value: &toml::Spanned<DeValue<'_>>, depth: usize) -> json::Node {
        let span = value.span();
        match value.get_ref() {
            _ if depth > DEEPEST => json::Node::scalar(span),
            DeValue::Table(t) => table(span, t, depth),
            DeValue::Array(items) => {
                json::Node::array(span, items.iter().map(|item| node(item, depth + 1)).collect())
            }
            _ => json::Node::scalar(span),
        }
    }
    let root = DeTable::parse(text).ok()?;
    Some(table(root.span(), root.get_ref(), 0))
}

/// Where each value of a JSON text starts: enough to find a document path.
pub mod json {
    use std::ops::Range;

    use super::Segment;

    /// A JSON value's place and, for objects and arrays, its members.
    #[derive(Debug)]
    pub struct Node {
        /// The value's bytes, from its first to after its last.
        pub span: Range<usize>,
        kind: Kind,
    }

    #[derive(Debug)]
    enum Kind {
        Scalar,
        Object(Vec<(String, Node)>),
        Array(Vec<Node>),
    }

    impl Node {
        /// A string, number, boolean or date at `span`.
        pub fn scalar(span: Range<usize>) -> Node {
            Node {
                span,
                kind: Kind::Scalar,
            }
        }

        /// An object (a TOML table) at `span` with its members.
        pub fn object(span: Range<usize>, members: Vec<(String, Node)>) -> Node {
            Node {
                span,
                kind: Kind::Object(members),
            }
        }

        /// An array at `span` with its items.
        pub fn array(span: Range<usize>, items: Vec<Node>) -> Node {
            Node {
                span,
                kind: Kind::Array(items),
            }
        }

        /// The node at `path` or its deepest ancestor that exists, and how
        /// many segments were followed. A key written twice is its first
        /// member, which is the one the library reads.
        pub fn find(&self, path: &[Segment]) -> (&Node, usize) {
            self.find_member(path, false)
        }

        /// As [`Node::find`], but the path's last key, when written twice,
        /// is its last member: where a duplicate key is reported.
        pub fn find_repeated(&self, path: &[Segment]) -> (&Node, usize) {
            self.find_member(path, true)
        }

        fn find_member(&self, path: &[Segment], last_key_last: bool) -> (&Node, usize) {
            let mut node = self;
            for (depth, segment) in path.iter().enumerate() {
                let next = match (&node.kind, segment) {
                    (Kind::Object(members), Segment::Key(key))
                        if last_key_last && depth + 1 == path.len() =>
                    {
                        members
                            .iter()
                            .rfind(|(name, _)| name == key)
                            .map(|(_, node)| node)
                    }
                    (Kind::Object(members), Segment::Key(key)) => {
                        members.iter().find(|(name, _)| name == key).map(|(_, node)| node)
                    }
                    (Kind::Array(items), Segment::Index(i)) => items.get(*i),
                    // A pointer's number may also name an object member.
                    (Kind::Object(members), Segment::Index(i)) => {
                        let key = i.to_string();
                        members
                            .iter()
                            .find(|(name, _)| *name == key)
                            .map(|(_, node)| node)
                    }
                    _ => None,
                };
                match next {
                    Some(next) => node = next,
                    None => return (node, depth),
                }
            }
            (node, path.len())
        }
    }

    /// The text is not JSON this scanner can follow (serde_json says why).
    #[derive(Debug)]
    pub struct NotJson;

    /// Indexes a JSON text. It follows well-formed JSON only; anything else
    /// is [`NotJson`], and serde_json reports the real error.
    pub fn index(text: &str) -> Result<Node, NotJson> {
        let mut scanner = Scanner {
            bytes: text.as_bytes(),
            at: 0,
            depth: 0,
        };
        let node = scanner.value()?;
        scanner.space();
        if scanner.at == scanner.bytes.len() {
            Ok(node)
        } else {
            Err(NotJson)
        }
    }

    struct Scanner<'a> {
        bytes: &'a [u8],
        at: usize,
        depth: usize,
    }

    impl Scanner<'_> {
        fn peek(&self) -> Option<u8> {
            self.bytes.get(self.at).copied()
        }

        fn space(&mut self) {
            while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                self.at += 1;
            }
        }

        fn eat(&mut self, byte: u8) -> Result<(), NotJson> {
            self.space();
            if self.peek() == Some(byte) {
                self.at += 1;
                Ok(())
            } else {
                Err(NotJson)
            }
        }

        fn value(&mut self) -> Result<Node, NotJson> {
            self.space();
            // serde_json stops at 128 levels; so does this scanner, without recursing deeper.
            if self.depth > 128 {
                return Err(NotJson);
            }
            let start = self.at;
            let kind = match self.peek().ok_or(NotJson)? {
                b'{' => {
                    self.depth += 1;
                    let members = self.object()?;
                    self.depth -= 1;
                    Kind::Object(members)
                }
                b'[' => {
                    self.depth += 1;
                    let items = self.array()?;
                    self.depth -= 1;
                    Kind::Array(items)
                }
                b'"' => {
                    self.string()?;
                    Kind::Scalar
                }
                _ => {
                    let length = self.bytes[self.at..]
                        .iter()
                        .position(|b| !matches!(b, b'-' | b'+' | b'.' | b'0'..=b'9' | b'a'..=b'z' | b'E'))
                        .unwrap_or(self.bytes.len() - self.at);
                    if length == 0 {
                        return Err(NotJson);
                    }
                    self.at += length;
                    Kind::Scalar
                }
            };
            Ok(Node {
                span: start..self.at,
                kind,
            })
        }

        fn object(&mut self) -> Result<Vec<(String, Node)>, NotJson> {
            self.eat(b'{')?;
            let mut members = Vec::new();
            self.space();
            if self.peek() == Some(b'}') {
                self.at += 1;
                return Ok(members);
            }
            loop {
                self.space();
                let key = self.string()?;
                self.eat(b':')?;
                let value = self.value()?;
                members.push((key, value));
                self.space();
                match self.peek() {
                    Some(b',') => self.at += 1,
                    Some(b'}') => {
                        self.at += 1;
                        return Ok(members);
                    }
                    _ => return Err(NotJson),
                }
            }
        }

        fn array(&mut self) -> Result<Vec<Node>, NotJson> {
            self.eat(b'[')?;
            let mut items = Vec::new();
            self.space();
            if self.peek() == Some(b']') {
                self.at += 1;
                return Ok(items);
            }
            loop {
                items.push(self.value()?);
                self.space();
                match self.peek() {
                    Some(b',') => self.at += 1,
                    Some(b']') => {
                        self.at += 1;
                        return Ok(items);
                    }
                    _ => return Err(NotJson),
                }
            }
        }

        /// A string, decoded (escapes included, so keys compare as serde reads them).
        fn string(&mut self) -> Result<String, NotJson> {
            if self.peek() != Some(b'"') {
                return Err(NotJson);
            }
            let start = self.at;
            self.at += 1;
            loop {
                match self.peek().ok_or(NotJson)? {
                    b'"' => {
                        self.at += 1;
                        break;
                    }
                    b'\\' => self.at += 2,
                    _ => self.at += 1,
                }
            }
            let raw = self.bytes.get(start..self.at).ok_or(NotJson)?;
            serde_json::from_slice(raw).map_err(|_| NotJson)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_into_segments() {
        assert_eq!(
            parse_path("apis[0].scopes[12].name"),
            Some(vec![
                Segment::Key("apis".into()),
                Segment::Index(0),
                Segment::Key("scopes".into()),
                Segment::Index(12),
                Segment::Key("name".into()),
            ])
        );
        assert_eq!(parse_path(""), Some(vec![]));
        assert_eq!(parse_path("a[x]"), None);
    }

    #[test]
    fn json_paths_are_found_with_their_line_and_column() {
        let text = "{\n  \"apis\": [\n    { \"audience\": \"x\", \"scopes\": [ {\"name\": \"é\"}, {\"name\": \"b\"} ] }\n  ]\n}";
        let root = json::index(text).unwrap();
        let path = parse_path("apis[0].scopes[1].name").unwrap();
        let (node, depth) = root.find(&path);
        assert_eq!(depth, 5);
        let lines = Lines::new(text);
        assert_eq!(lines.position(text, node.span.start), (3, 60));
        // A field left out: its closest ancestor.
        let (node, depth) = root.find(&parse_path("apis[0].rbac").unwrap());
        assert_eq!((depth, lines.position(text, node.span.start)), (2, (3, 5)));
    }

    #[test]
    fn lines_and_columns_count_characters_from_1() {
        let text = "ab\né🙂x\n";
        let lines = Lines::new(text);
        let at = |offset| lines.position(text, offset);
        assert_eq!([at(0), at(1), at(2), at(3)], [(1, 1), (1, 2), (1, 3), (2, 1)]);
        assert_eq!(at(3 + "é🙂".len()), (2, 3)); // after two characters
        assert_eq!(at(4), (2, 1)); // inside `é`: its start
        assert_eq!(at(text.len()), (3, 1)); // after the last newline
        assert_eq!(at(text.len() + 10), (3, 1));
        assert_eq!(Lines::new("").position("", 0), (1, 1));
    }

    #[test]
    fn toml_paths_are_found() {
        let text = "[[apis]]\naudience = \"x\"\nscopes = [ { name = \"a\" }, { name = \"b\" } ]\n";
        let path = parse_path("apis[0].scopes[1].name").unwrap();
        let tree = toml_tree(text).unwrap();
        let (node, depth) = tree.find(&path);
        assert_eq!(
            (Lines::new(text).position(text, node.span.start), depth),
            ((3, 37), 5)
        );
    }

    #[test]
    fn serde_json_positions_are_split_off() {
        let (message, at) = json_position("unknown field `rbca`, expected one of `a` at line 3 column 14");
        assert_eq!(message, "unknown field `rbca`, expected one of `a`");
        assert!(matches!(at, Some(InDocument::LineColumn(3, 14))));
    }

    #[test]
    fn pointers_follow_rfc_6901() {
        assert_eq!(
            parse_pointer("/policy").unwrap(),
            vec![Segment::Key("policy".into())]
        );
        assert_eq!(
            parse_pointer("/a~1b/0").unwrap(),
            vec![Segment::Key("a/b".into()), Segment::Index(0)]
        );
        assert!(parse_pointer("policy").is_err());
    }
}
