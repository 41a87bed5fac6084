//! The watcher's reader for the common transcript line, in Rust: `ingestor._native`.
//!
//! `line_rows(data, offset, max_record_bytes)` reads the complete lines of a chunk as
//! `ingestor/producer/lines.py` does with `columns=True`, and gives each line either its
//! `LINE_COLUMNS` tuple, exactly what `lines.line_row` makes of it, or None: "not sure, let the
//! Python decide". It takes only the two common shapes and declines everything else:
//!
//! * a line without `message.usage` (a user turn, a summary, a tool result): `strip_line` then
//!   `rows.fast.line_fields` of what is left, with the usual timestamp or none;
//! * a usage line that `usage.accept_fast` would accept (exact types, the usual timestamp, no
//!   null on a listed field, written in orjson's own spelling, which proves what ccusage's rules
//!   read from the bytes: `json.rs`) and that `producer/usage.py` keeps in range.
//!
//! Both shapes are read only when written in that spelling, as Claude Code writes them.
//!
//! Declining is always safe (the Python path decides); taking a line is held to the Python
//! result line by line by `tests/parity/test_native_rows.py`.

mod json;

use std::borrow::Cow;

use json::{float_text, unescape, J};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use pyo3::IntoPyObjectExt;

/// `producer/usage.py` MAX_TOKENS: token counts stored exactly (`out_of_range`).
const MAX_TOKENS: u64 = 1 << 40;
/// `producer/usage.py` MAX_COST_USD.
const MAX_COST_USD: f64 = 1e9;
/// `rows/fast.py` TOKEN_LIMIT: an integer cost of a line without usage.
const TOKEN_LIMIT: u64 = 1 << 63;
const MAX_KEPT_BYTES: usize = 1024; // usage.py MAX_KEPT_CHARS: longer ones are cut there
const MAX_TOOL_USES: usize = 256;
const MAX_TOOL_NAME_BYTES: usize = 128;
/// accept_fast.py `_BRACKET_BOUND`.
const BRACKET_BOUND: usize = 128;
/// scan.py NULLABLE_FIELDS: ccusage's `:null` byte scan.
const NULLABLE: [&[u8]; 11] = [
    b"id",
    b"cwd",
    b"model",
    b"speed",
    b"costUSD",
    b"version",
    b"sessionId",
    b"requestId",
    b"isApiErrorMessage",
    b"cache_read_input_tokens",
    b"cache_creation_input_tokens",
];
/// 1900-01-01 and 2300-01-01 in epoch ms (usage.py `_MIN_MS`, `_MAX_MS`).
const MIN_MS: i64 = -2_208_988_800_000;
const MAX_MS: i64 = 10_413_792_000_000;

/// One line's `LINE_COLUMNS` values, borrowing its strings from the parsed line.
struct Row<'a> {
    offset: u64,
    length: u64,
    line_type: Cow<'a, str>,
    session: Cow<'a, str>,
    uuid: Cow<'a, str>,
    parent: Cow<'a, str>,
    request: Cow<'a, str>,
    message: Cow<'a, str>,
    ts: i64,
    sidechain: bool,
    api_error: bool,
    model: Cow<'a, str>,
    usage: bool,
    input: u64,
    output: u64,
    cache_read: u64,
    cache_5m: u64,
    cache_1h: u64,
    tier: Cow<'a, str>,
    speed: Cow<'a, str>,
    cost: Option<String>,
    tools: Vec<Cow<'a, str>>,
    cwd: Cow<'a, str>,
    version: Cow<'a, str>,
}

impl Row<'_> {
    fn into_tuple<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let values: [PyObject; 25] = [
            self.offset.into_py_any(py)?,
            self.length.into_py_any(py)?,
            self.line_type.into_py_any(py)?,
            self.session.into_py_any(py)?,
            self.uuid.into_py_any(py)?,
            self.parent.into_py_any(py)?,
            self.request.into_py_any(py)?,
            self.message.into_py_any(py)?,
            self.ts.into_py_any(py)?,
            self.sidechain.into_py_any(py)?,
            self.api_error.into_py_any(py)?,
            self.model.into_py_any(py)?,
            self.usage.into_py_any(py)?,
            self.input.into_py_any(py)?,
            self.output.into_py_any(py)?,
            self.cache_read.into_py_any(py)?,
            self.cache_5m.into_py_any(py)?,
            self.cache_1h.into_py_any(py)?,
            self.tier.into_py_any(py)?,
            self.speed.into_py_any(py)?,
            self.cost.into_py_any(py)?,
            0i64.into_py_any(py)?, // reset: a line with isApiErrorMessage true is declined
            PyList::new(py, self.tools.iter().map(|t| t.as_ref()))?.into_py_any(py)?,
            self.cwd.into_py_any(py)?,
            self.version.into_py_any(py)?,
        ];
        PyTuple::new(py, values)
    }
}

/// The complete lines of `data` (read at file `offset`), in order (as
/// `data[:data.rfind(b"\n")].split(b"\n")`): a taken line as its tuple, a declined one as its
/// bytes (for the Python to read: no line is copied otherwise); and the index and text of the
/// first taken line's timestamp (-1 and None when no taken line has one).
#[pyfunction]
fn line_rows<'py>(
    py: Python<'py>,
    data: &[u8],
    offset: u64,
    max_record_bytes: u64,
) -> PyResult<(Bound<'py, PyList>, i64, Option<String>)> {
    let out = PyList::empty(py);
    let mut first: (i64, Option<String>) = (-1, None);
    let Some(end) = memchr::memrchr(b'\n', data) else {
        return Ok((out, first.0, first.1));
    };
    let mut pos = offset;
    let mut start = 0;
    let mut index = 0i64;
    loop {
        let stop = memchr::memchr(b'\n', &data[start..end]).map_or(end, |at| start + at);
        let line = &data[start..stop];
        let length = line.len() as u64 + 1;
        let parsed = json::read(line);
        match parsed
            .as_ref()
            .and_then(|obj| read_line(line, obj, pos, length, max_record_bytes))
        {
            Some(row) => {
                // A taken line's timestamp, when a string, is one both Python readers read.
                if first.1.is_none() {
                    if let Some(J::Str(ts)) = parsed.as_ref().and_then(|obj| obj.get("timestamp")) {
                        first = (index, Some((*ts).to_owned()));
                    }
                }
                out.append(row.into_tuple(py)?)?;
            }
            None => out.append(PyBytes::new(py, line))?,
        }
        pos += length;
        index += 1;
        if stop == end {
            break;
        }
        start = stop + 1;
    }
    Ok((out, first.0, first.1))
}

/// Whether `line` is in the spelling `json.rs` reads (for the tests: it must imply
/// `orjson.dumps(orjson.loads(line)) == line`).
#[pyfunction]
fn canonical(line: &Bound<'_, PyBytes>) -> bool {
    json::read(line.as_bytes()).is_some()
}

fn read_line<'a>(
    line: &[u8],
    obj: &'a J<'a>,
    offset: u64,
    length: u64,
    max_record_bytes: u64,
) -> Option<Row<'a>> {
    if !matches!(obj, J::Obj(_)) {
        return None;
    }
    match obj.get("message") {
        Some(message @ J::Obj(_)) if message.get("usage").is_some() => {
            usage_row(line, obj, message, offset, length)
        }
        Some(message @ J::Obj(_)) => {
            plain_row(obj, Some(message), offset, length, max_record_bytes)
        }
        Some(J::Null) | None => plain_row(obj, None, offset, length, max_record_bytes),
        // An array goes ccusage's general way; any other message is named by the model.
        _ => None,
    }
}

/// Absent or null → Some(None); a string → its text; anything else → declined.
fn opt_str<'a>(value: Option<&J<'a>>) -> Option<Option<Cow<'a, str>>> {
    match value {
        None | Some(J::Null) => Some(None),
        Some(J::Str(raw)) => Some(Some(unescape(raw))),
        _ => None,
    }
}

fn or_empty(value: Option<Cow<'_, str>>) -> Cow<'_, str> {
    value.unwrap_or(Cow::Borrowed(""))
}

/// A flag of `line_fields`: absent → false, a bool → itself; null or another type declines.
fn flag(value: Option<&J<'_>>) -> Option<bool> {
    match value {
        None => Some(false),
        Some(J::Bool(b)) => Some(*b),
        _ => None,
    }
}

/// A line without `message.usage`: `strip_line`, then `line_fields` and `column_row`.
fn plain_row<'a>(
    obj: &'a J<'a>,
    message: Option<&'a J<'a>>,
    offset: u64,
    length: u64,
    max_record_bytes: u64,
) -> Option<Row<'a>> {
    let line_type = match obj.get("type") {
        None => Cow::Borrowed(""),
        Some(J::Str(raw)) => unescape(raw),
        _ => return None,
    };
    let session = or_empty(opt_str(obj.get("sessionId"))?);
    let uuid = or_empty(opt_str(obj.get("uuid"))?);
    let parent = or_empty(opt_str(obj.get("parentUuid"))?);
    let request = or_empty(opt_str(obj.get("requestId"))?);
    let cwd = or_empty(opt_str(obj.get("cwd"))?);
    let version = or_empty(opt_str(obj.get("version"))?);
    let sidechain = flag(obj.get("isSidechain"))?;
    let api_error = flag(obj.get("isApiErrorMessage"))?;
    let ts = match obj.get("timestamp") {
        None | Some(J::Null) => 0,
        Some(J::Str(raw)) => iso_ms(raw.as_bytes(), 1, 10_000)?,
        _ => return None,
    };
    let (mut message_id, mut model, mut tools) = (Cow::Borrowed(""), Cow::Borrowed(""), Vec::new());
    if let Some(message) = message {
        message_id = or_empty(opt_str(message.get("id"))?);
        model = or_empty(opt_str(message.get("model"))?);
        tools = tool_uses(message.get("content"))?;
    }
    match obj.get("costUSD") {
        None | Some(J::Null) | Some(J::Float(_)) => {} // a float here is finite
        Some(J::Int(text)) => {
            // (-TOKEN_LIMIT, TOKEN_LIMIT), as rows/fast.py takes an integer cost
            let value: i128 = text.parse().ok()?;
            if value.unsigned_abs() >= u128::from(TOKEN_LIMIT) {
                return None;
            }
        }
        _ => return None,
    }
    let row = Row {
        offset,
        length,
        line_type,
        session,
        uuid,
        parent,
        request,
        message: message_id,
        ts,
        sidechain,
        api_error,
        model,
        usage: false,
        input: 0,
        output: 0,
        cache_read: 0,
        cache_5m: 0,
        cache_1h: 0,
        tier: Cow::Borrowed(""),
        speed: Cow::Borrowed(""),
        cost: None,
        tools,
        cwd,
        version,
    };
    // column_row's bound, in bytes (never fewer than characters): a longer line may not fit an
    // envelope alone and travels as a record, whose size is checked exactly.
    let strings = [
        &row.line_type,
        &row.session,
        &row.uuid,
        &row.parent,
        &row.request,
        &row.message,
        &row.model,
        &row.cwd,
        &row.version,
    ];
    let text: usize = strings.iter().map(|s| s.len()).sum::<usize>()
        + 2 * row.tools.iter().map(|s| s.len()).sum::<usize>();
    (6 * text as u64 + 4096 <= max_record_bytes).then_some(row)
}

/// `models.tool_use_names`: the names of the content's `tool_use` items; a name that is not a
/// string declines (Python would print it with `str`).
fn tool_uses<'a>(content: Option<&'a J<'a>>) -> Option<Vec<Cow<'a, str>>> {
    let mut names = Vec::new();
    if let Some(J::Arr(items)) = content {
        for item in items {
            if matches!(item.get("type"), Some(J::Str(t)) if *t == "tool_use") {
                match item.get("name") {
                    None => {}
                    Some(J::Str(name)) => names.push(unescape(name)),
                    Some(_) => return None,
                }
            }
        }
    }
    Some(names)
}

/// A string ccusage requires non-empty when present (`Option<String>` fields, no empty ids).
fn id_str<'a>(value: Option<&J<'a>>) -> Option<Cow<'a, str>> {
    match value {
        None | Some(J::Null) => Some(Cow::Borrowed("")),
        Some(J::Str(raw)) if !raw.is_empty() && raw.len() <= MAX_KEPT_BYTES => Some(unescape(raw)),
        _ => None,
    }
}

/// A string `usage_columns` keeps when it is one (bounded), and "" for any other value.
fn kept_str<'a>(value: Option<&J<'a>>) -> Option<Cow<'a, str>> {
    match value {
        Some(J::Str(raw)) if raw.len() > MAX_KEPT_BYTES => None,
        Some(J::Str(raw)) => Some(unescape(raw)),
        _ => Some(Cow::Borrowed("")),
    }
}

fn count(value: Option<&J<'_>>, default: Option<u64>) -> Option<u64> {
    match value {
        None => default,
        Some(J::Int(text)) => text.parse::<u64>().ok().filter(|&n| n < MAX_TOKENS),
        _ => None,
    }
}

/// A usage line `accept_fast` takes and `out_of_range` keeps: `usage_columns`.
fn usage_row<'a>(
    line: &[u8],
    obj: &'a J<'a>,
    message: &'a J<'a>,
    offset: u64,
    length: u64,
) -> Option<Row<'a>> {
    let usage @ J::Obj(_) = message.get("usage")? else {
        return None;
    };
    let session = id_str(obj.get("sessionId"))?;
    let request = id_str(obj.get("requestId"))?;
    let model = id_str(message.get("model"))?;
    let message_id = id_str(message.get("id"))?;
    let version = match obj.get("version") {
        None | Some(J::Null) => Cow::Borrowed(""),
        Some(J::Str(raw)) if semver_prefix(raw.as_bytes()) && raw.len() <= MAX_KEPT_BYTES => {
            unescape(raw)
        }
        _ => return None,
    };
    let sidechain = match obj.get("isSidechain") {
        None | Some(J::Null) => false,
        Some(J::Bool(b)) => *b,
        _ => return None,
    };
    let api_error = match obj.get("isApiErrorMessage") {
        None | Some(J::Null) | Some(J::Bool(false)) => false,
        _ => return None, // true: the reset time is read from the bytes by the Python
    };
    let cost = match obj.get("costUSD") {
        None | Some(J::Null) => None,
        // ccusage reads an f64; an integer becomes the nearest one, as Python's float() does
        Some(J::Int(text) | J::Float(text)) => {
            let value: f64 = text.parse().ok()?;
            if value.abs() >= MAX_COST_USD {
                return None;
            }
            Some(float_text(value)?)
        }
        _ => return None,
    };
    let input = count(usage.get("input_tokens"), None)?;
    let output = count(usage.get("output_tokens"), None)?;
    let creation = count(usage.get("cache_creation_input_tokens"), Some(0))?;
    let cache_read = count(usage.get("cache_read_input_tokens"), Some(0))?;
    let (cache_5m, cache_1h) = match usage.get("cache_creation") {
        None | Some(J::Null) => (creation, 0),
        Some(split @ J::Obj(_)) => (
            count(split.get("ephemeral_5m_input_tokens"), Some(0))?,
            count(split.get("ephemeral_1h_input_tokens"), Some(0))?,
        ),
        _ => return None,
    };
    let speed = match usage.get("speed") {
        None | Some(J::Null) => Cow::Borrowed(""),
        Some(J::Str(text)) if *text == "standard" || *text == "fast" => Cow::Borrowed(*text),
        _ => return None,
    };
    let tier = kept_str(usage.get("service_tier"))?;
    let Some(J::Str(timestamp)) = obj.get("timestamp") else {
        return None;
    };
    let ts = iso_ms(timestamp.as_bytes(), 0, 10_000)?;
    if !(MIN_MS..MAX_MS).contains(&ts) {
        return None;
    }
    // The bytes last, as accept_fast does them (the spelling was checked by json::read).
    if null_field(line) || brackets(line) >= BRACKET_BOUND {
        return None;
    }
    let tools = tool_uses(message.get("content"))?;
    if tools.len() > MAX_TOOL_USES || tools.iter().any(|t| t.len() > MAX_TOOL_NAME_BYTES) {
        return None;
    }
    Some(Row {
        offset,
        length,
        line_type: kept_str(obj.get("type"))?,
        session,
        uuid: kept_str(obj.get("uuid"))?,
        parent: kept_str(obj.get("parentUuid"))?,
        request,
        message: message_id,
        ts,
        sidechain,
        api_error,
        model,
        usage: true,
        input,
        output,
        cache_read,
        cache_5m,
        cache_1h,
        tier,
        speed,
        cost,
        tools,
        cwd: kept_str(obj.get("cwd"))?,
        version,
    })
}

/// scan.py `is_semver_prefix`: `[0-9]+\.[0-9]+\.[0-9]` at the start.
fn semver_prefix(text: &[u8]) -> bool {
    let mut at = 0;
    for _ in 0..2 {
        let start = at;
        while at < text.len() && text[at].is_ascii_digit() {
            at += 1;
        }
        if at == start || at >= text.len() || text[at] != b'.' {
            return false;
        }
        at += 1;
    }
    at < text.len() && text[at].is_ascii_digit()
}

/// accept_fast.py `null_field`: a `:null` whose nearest quoted name (walking back) is listed.
fn null_field(line: &[u8]) -> bool {
    let mut from = 0;
    while let Some(found) = find_null(&line[from..]) {
        let index = from + found;
        if let Some(end) = memchr::memrchr(b'"', &line[..index]) {
            if end > 0 {
                if let Some(start) = memchr::memrchr(b'"', &line[..end]) {
                    if NULLABLE.contains(&&line[start + 1..end]) {
                        return true;
                    }
                }
            }
        }
        from = index + 5;
    }
    false
}

/// The first `:null` in `haystack`.
fn find_null(haystack: &[u8]) -> Option<usize> {
    static FINDER: std::sync::OnceLock<memchr::memmem::Finder<'static>> =
        std::sync::OnceLock::new();
    FINDER
        .get_or_init(|| memchr::memmem::Finder::new(b":null"))
        .find(haystack)
}

fn brackets(line: &[u8]) -> usize {
    line.iter().filter(|&&b| b == b'{' || b == b'[').count()
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (ASCII digits, a real date and time) as epoch ms, for years in
/// `[min_year, max_year)`; any other spelling declines. Both Python readers (ccusage's
/// `parse_ts_timestamp` and `datetime.fromisoformat`) read this spelling alike.
fn iso_ms(raw: &[u8], min_year: i64, max_year: i64) -> Option<i64> {
    if raw.len() != 24 {
        return None;
    }
    for (at, byte) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ] {
        if raw[at] != byte {
            return None;
        }
    }
    let digits = |a: usize, b: usize| -> Option<i64> {
        raw[a..b].iter().try_fold(0i64, |value, &byte| {
            byte.is_ascii_digit()
                .then(|| value * 10 + i64::from(byte - b'0'))
        })
    };
    let (year, month, day) = (digits(0, 4)?, digits(5, 7)?, digits(8, 10)?);
    let (hour, minute, second, millis) = (
        digits(11, 13)?,
        digits(14, 16)?,
        digits(17, 19)?,
        digits(20, 23)?,
    );
    if !(min_year..max_year).contains(&year) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// scan.py `_days_from_civil` (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_prime = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_prime + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(line_rows, module)?)?;
    module.add_function(wrap_pyfunction!(canonical, module)?)?;
    Ok(())
}
