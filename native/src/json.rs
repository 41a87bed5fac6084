//! A strict reader of one JSON line written in orjson's compact spelling, keeping only the
//! values the watcher reads.
//!
//! It accepts a line only when `orjson.dumps(orjson.loads(line)) == line` would hold: no
//! whitespace between tokens, no repeated key in any object, strings escaped as orjson escapes
//! them (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, any other control character as a lower-case
//! `\u00xx`, nothing else), integers without `-0` or leading zeros within orjson's integer range,
//! and floats written positionally as Python's `repr` writes them (decimal exponent in
//! [-4, 16)). Anything else is refused, and the caller declines the line: for a usage line that
//! is exactly the proof `accept_fast` takes from orjson (what ccusage's rules read from the
//! bytes), for any other line only a shortcut not taken.
//!
//! Containers are kept only along the paths the watcher reads (`Want`); every other value is
//! still checked, but not kept.

/// Nesting past this is refused (serde_json's own limit is 128).
const MAX_DEPTH: u32 = 128;
/// An object with more keys is refused: repeated keys are found by a linear scan.
const MAX_KEYS: usize = 256;

/// A value read from the line. Strings and numbers are their text as written (a string without
/// its quotes, escapes undone only on request).
#[derive(Debug)]
pub enum J<'a> {
    Null,
    Bool(bool),
    Int(&'a str),
    Float(&'a str),
    Str(&'a str),
    Arr(Vec<J<'a>>),
    Obj(Vec<(&'a [u8], J<'a>)>),
    /// An array or object not kept.
    Other,
}

impl<'a> J<'a> {
    /// The value of `key` when this is a kept object that holds it.
    pub fn get(&self, key: &str) -> Option<&J<'a>> {
        match self {
            J::Obj(pairs) => pairs
                .iter()
                .find(|(k, _)| *k == key.as_bytes())
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Which containers below a value are kept.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Top,
    Message,
    Usage,
    Split,
    Content,
    Item,
    /// A scalar is kept, a container becomes `J::Other`.
    Leaf,
}

impl Want {
    fn child(self, key: &[u8]) -> Option<Want> {
        match (self, key) {
            (Want::Top, b"message") => Some(Want::Message),
            (
                Want::Top,
                b"type" | b"timestamp" | b"sessionId" | b"uuid" | b"parentUuid" | b"requestId"
                | b"isSidechain" | b"isApiErrorMessage" | b"cwd" | b"version" | b"costUSD",
            ) => Some(Want::Leaf),
            (Want::Message, b"usage") => Some(Want::Usage),
            (Want::Message, b"content") => Some(Want::Content),
            (Want::Message, b"id" | b"model") => Some(Want::Leaf),
            (Want::Usage, b"cache_creation") => Some(Want::Split),
            (Want::Usage, _) | (Want::Split, _) => Some(Want::Leaf),
            (Want::Item, b"type" | b"name") => Some(Want::Leaf),
            _ => None,
        }
    }
}

/// The line's top-level value, or None when the line is not in the accepted spelling.
pub fn read(line: &[u8]) -> Option<J<'_>> {
    std::str::from_utf8(line).ok()?;
    let mut reader = Reader {
        s: line,
        i: 0,
        depth: 0,
        keys: Vec::new(),
    };
    let value = reader.value(Some(Want::Top))?;
    (reader.i == line.len()).then_some(value)
}

struct Reader<'a> {
    s: &'a [u8],
    i: usize,
    depth: u32,
    keys: Vec<&'a [u8]>, // the keys of the objects being read, innermost last
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn value(&mut self, want: Option<Want>) -> Option<J<'a>> {
        match self.peek()? {
            b'{' => self.object(want),
            b'[' => self.array(want),
            b'"' => self.string().map(J::Str),
            b't' => self.literal(b"true", J::Bool(true)),
            b'f' => self.literal(b"false", J::Bool(false)),
            b'n' => self.literal(b"null", J::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, text: &[u8], value: J<'a>) -> Option<J<'a>> {
        if self.s[self.i..].starts_with(text) {
            self.i += text.len();
            Some(value)
        } else {
            None
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        self.i += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    fn object(&mut self, want: Option<Want>) -> Option<J<'a>> {
        self.enter()?;
        let keep = matches!(want, Some(w) if w != Want::Leaf);
        let mut pairs = Vec::new();
        let mark = self.keys.len();
        if self.peek()? == b'}' {
            self.i += 1;
        } else {
            loop {
                if self.peek()? != b'"' {
                    return None;
                }
                let key = self.string()?.as_bytes();
                // Escapes are canonical, so equal keys are equal bytes.
                if self.keys.len() - mark >= MAX_KEYS || self.keys[mark..].contains(&key) {
                    return None;
                }
                self.keys.push(key);
                if self.peek()? != b':' {
                    return None;
                }
                self.i += 1;
                let child = if keep {
                    want.and_then(|w| w.child(key))
                } else {
                    None
                };
                let value = self.value(child)?;
                if child.is_some() {
                    pairs.push((key, value));
                }
                match self.peek()? {
                    b',' => self.i += 1,
                    b'}' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.keys.truncate(mark);
        self.depth -= 1;
        Some(if keep { J::Obj(pairs) } else { J::Other })
    }

    fn array(&mut self, want: Option<Want>) -> Option<J<'a>> {
        self.enter()?;
        let keep = want == Some(Want::Content);
        let mut items = Vec::new();
        if self.peek()? == b']' {
            self.i += 1;
        } else {
            loop {
                let item = self.value(keep.then_some(Want::Item))?;
                if keep {
                    items.push(item);
                }
                match self.peek()? {
                    b',' => self.i += 1,
                    b']' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(if keep { J::Arr(items) } else { J::Other })
    }

    /// A string at the opening quote: its text between the quotes, escapes as written.
    fn string(&mut self) -> Option<&'a str> {
        let start = self.i + 1;
        let mut i = start;
        let s = self.s;
        loop {
            // Jump to the next quote or backslash; a control byte before it is refused.
            let next = i + memchr::memchr2(b'"', b'\\', &s[i..])?;
            // A fold, not `any`: without an early exit the compiler vectorizes it.
            if s[i..next].iter().fold(false, |bad, &b| bad | (b < 0x20)) {
                return None;
            }
            i = next;
            match s[i] {
                b'"' => break,
                b'\\' => {
                    match *s.get(i + 1)? {
                        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                        b'u' => {
                            let hex = s.get(i + 2..i + 6)?;
                            if hex[0] != b'0' || hex[1] != b'0' || !matches!(hex[2], b'0' | b'1') {
                                return None;
                            }
                            let low = match hex[3] {
                                c @ b'0'..=b'9' => c - b'0',
                                c @ b'a'..=b'f' => c - b'a' + 10,
                                _ => return None,
                            };
                            let code = (hex[2] - b'0') * 16 + low;
                            // orjson writes these five with their short escapes.
                            if matches!(code, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                                return None;
                            }
                            i += 6;
                        }
                        _ => return None,
                    }
                }
                _ => unreachable!(),
            }
        }
        self.i = i + 1;
        // SAFETY: `read` checked the whole line is UTF-8, and both ends of this slice are at
        // ASCII quotes, so on character boundaries: checking it again cost ~a fifth of a line.
        Some(unsafe { std::str::from_utf8_unchecked(&s[start..i]) })
    }

    fn number(&mut self) -> Option<J<'a>> {
        let s = self.s;
        let start = self.i;
        let mut i = start;
        let negative = s[i] == b'-';
        if negative {
            i += 1;
        }
        let digits = i;
        match *s.get(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => {
                while s.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            _ => return None,
        }
        let int_end = i;
        let fraction = s.get(i) == Some(&b'.');
        if fraction {
            i += 1;
            let first = i;
            while s.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == first {
                return None;
            }
        }
        if matches!(s.get(i), Some(b'e' | b'E')) {
            return None; // orjson's exponent form: left to the Python reader
        }
        self.i = i;
        let text = std::str::from_utf8(&s[start..i]).ok()?;
        if fraction {
            let value: f64 = text.parse().ok()?;
            return (float_text(value)?.as_str() == text).then_some(J::Float(text));
        }
        // orjson reads an integer outside [-2**63, 2**64) as a float, and writes 0 for -0.
        let magnitude: u128 = if int_end - digits > 20 {
            return None;
        } else {
            text[digits - start..].parse().ok()?
        };
        let fits = if negative {
            magnitude != 0 && magnitude <= 1 << 63
        } else {
            magnitude <= u128::from(u64::MAX)
        };
        fits.then_some(J::Int(text))
    }
}

/// `str(Decimal(repr(value)))` (and so Python's `repr` and orjson's text) where `repr` writes
/// the number positionally (its decimal exponent in [-4, 16)); None elsewhere. Rust's `{:e}`
/// and Python's `repr` both give the shortest digits that read back as `value`.
pub fn float_text(value: f64) -> Option<String> {
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific.split_once('e')?;
    let exponent: i32 = exponent.parse().ok()?;
    if !(-4..16).contains(&exponent) {
        return None;
    }
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let point = exponent + 1; // digits before the decimal point
    let text = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
    } else {
        format!(
            "{}.{}",
            &digits[..point as usize],
            &digits[point as usize..]
        )
    };
    Some(format!("{sign}{text}"))
}

/// A string's text with its (canonical) escapes undone.
pub fn unescape(raw: &str) -> std::borrow::Cow<'_, str> {
    if !raw.contains('\\') {
        return std::borrow::Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16).unwrap_or(0);
                out.push(char::from_u32(code).unwrap_or('\u{0}'));
            }
            Some(other) => out.push(other), // '"' and '\\'
            None => {}
        }
    }
    std::borrow::Cow::Owned(out)
}
