//! A typed view of one TOML table that reports unknown keys, missing keys and wrong types
//! with the line they are on.

use toml_edit::{Item, TableLike, Value};

use super::ctx::{Ctx, Spanned};
use crate::suggest::closest;

/// What a lookup found. `Bad` means an error was already reported.
pub(super) enum Got<T> {
    Absent,
    Bad,
    Found(Spanned<T>),
}

impl<T> Got<T> {
    pub fn found(self) -> Option<Spanned<T>> {
        match self {
            Got::Found(s) => Some(s),
            _ => None,
        }
    }
}

/// One table of the file (a `[section]`, an inline table or an element of `[[...]]`).
pub(super) struct Section<'a> {
    table: &'a dyn TableLike,
    /// Dotted path of the table, empty for the document root.
    pub path: String,
    /// Line of its header (or of its first key when it has none).
    pub line: usize,
}

impl<'a> Section<'a> {
    /// Opens a table and reports every key that is not in `known`.
    pub fn open(
        ctx: &mut Ctx<'_>,
        table: &'a dyn TableLike,
        path: String,
        line: usize,
        known: &[&str],
    ) -> Self {
        let s = Section { table, path, line };
        for (name, item) in table.iter() {
            if known.contains(&name) {
                continue;
            }
            let what = if s.path.is_empty() && item.is_table_like() {
                format!("unknown section `[{name}]`")
            } else {
                "unknown key".to_string()
            };
            let hint = match closest(name, known) {
                Some(k) => format!("; did you mean `{k}`?"),
                None => format!(" (known here: {})", known.join(", ")),
            };
            let line = s.entry_line(ctx, name, item);
            ctx.error(line, s.key(name), format!("{what}{hint}"));
        }
        s
    }

    pub fn contains(&self, name: &str) -> bool {
        self.table.get(name).is_some_and(|i| !i.is_none())
    }

    /// Dotted key path of an entry of this table.
    pub fn key(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    fn entry_line(&self, ctx: &Ctx<'_>, name: &str, item: &Item) -> usize {
        ctx.span_line(self.table.key(name).and_then(|k| k.span()))
            .or_else(|| ctx.span_line(item.span()))
            .unwrap_or(self.line)
    }

    /// Describes this table for "missing key" messages.
    pub fn describe(&self) -> String {
        if self.path.is_empty() {
            "the top level of the file".to_string()
        } else {
            format!("[{}] (line {})", self.path, self.line)
        }
    }

    fn lookup<T>(
        &self,
        ctx: &mut Ctx<'_>,
        name: &str,
        expected: &str,
        convert: impl FnOnce(&'a Item) -> Option<T>,
    ) -> Got<T> {
        let Some(item) = self.table.get(name).filter(|i| !i.is_none()) else {
            return Got::Absent;
        };
        let line = self.entry_line(ctx, name, item);
        match convert(item) {
            Some(value) => Got::Found(Spanned {
                value,
                line,
                key: self.key(name),
            }),
            None => {
                ctx.error(
                    line,
                    self.key(name),
                    format!("expected {expected}, found {}", type_name(item)),
                );
                Got::Bad
            }
        }
    }

    fn missing(&self, ctx: &mut Ctx<'_>, name: &str) {
        ctx.error(
            self.line,
            self.key(name),
            format!("required key is missing in {}", self.describe()),
        );
    }

    /// Reports a missing key when `got` is absent; passes the rest through.
    pub fn required<T>(&self, ctx: &mut Ctx<'_>, name: &str, got: Got<T>) -> Option<Spanned<T>> {
        if matches!(got, Got::Absent) {
            self.missing(ctx, name);
        }
        got.found()
    }

    /// A value for an optional key: the given one, or `default` at the table's line.
    pub fn or_default<T>(&self, name: &str, got: Got<T>, default: T) -> Spanned<T> {
        got.found().unwrap_or_else(|| Spanned {
            value: default,
            line: self.line,
            key: self.key(name),
        })
    }

    pub fn string(&self, ctx: &mut Ctx<'_>, name: &str) -> Got<String> {
        self.lookup(ctx, name, "a string", |i| i.as_str().map(str::to_string))
    }

    pub fn string_or(&self, ctx: &mut Ctx<'_>, name: &str, default: &str) -> Spanned<String> {
        let got = self.string(ctx, name);
        self.or_default(name, got, default.to_string())
    }

    pub fn req_string(&self, ctx: &mut Ctx<'_>, name: &str) -> Option<Spanned<String>> {
        let got = self.string(ctx, name);
        self.required(ctx, name, got)
    }

    pub fn integer(&self, ctx: &mut Ctx<'_>, name: &str) -> Got<i64> {
        self.lookup(ctx, name, "an integer", Item::as_integer)
    }

    pub fn boolean(&self, ctx: &mut Ctx<'_>, name: &str) -> Got<bool> {
        self.lookup(ctx, name, "true or false", Item::as_bool)
    }

    pub fn bool_or(&self, ctx: &mut Ctx<'_>, name: &str, default: bool) -> bool {
        self.boolean(ctx, name).found().map_or(default, |s| s.value)
    }

    /// A string or an integer (sizes may be written either way).
    pub fn string_or_integer(&self, ctx: &mut Ctx<'_>, name: &str) -> Got<StrOrInt> {
        self.lookup(ctx, name, "a string or an integer", |i| {
            i.as_str()
                .map(|s| StrOrInt::Str(s.to_string()))
                .or_else(|| i.as_integer().map(StrOrInt::Int))
        })
    }

    /// A list of strings; each element carries its own line. Absent means empty.
    pub fn strings(&self, ctx: &mut Ctx<'_>, name: &str) -> Got<Vec<Spanned<String>>> {
        let got = self.lookup(ctx, name, "a list of strings", |i| i.as_array());
        let array = match got {
            Got::Found(a) => a,
            Got::Absent => return Got::Absent,
            Got::Bad => return Got::Bad,
        };
        let mut out = Vec::new();
        for (n, v) in array.value.iter().enumerate() {
            let line = ctx.span_line(v.span()).unwrap_or(array.line);
            let key = format!("{}[{n}]", array.key);
            match v.as_str() {
                Some(s) => out.push(Spanned {
                    value: s.to_string(),
                    line,
                    key,
                }),
                None => ctx.error(
                    line,
                    key,
                    format!("expected a string, found {}", value_type_name(v)),
                ),
            }
        }
        Got::Found(Spanned {
            value: out,
            line: array.line,
            key: array.key,
        })
    }

    pub fn strings_or_empty(&self, ctx: &mut Ctx<'_>, name: &str) -> Vec<Spanned<String>> {
        self.strings(ctx, name)
            .found()
            .map(|s| s.value)
            .unwrap_or_default()
    }

    /// A sub-table, `[name]` or `name = { ... }`.
    pub fn table(&self, ctx: &mut Ctx<'_>, name: &str) -> Got<&'a dyn TableLike> {
        self.lookup(ctx, name, "a table", Item::as_table_like)
    }

    /// `[[name]]` entries (or an array of inline tables), each with its line.
    pub fn tables(&self, ctx: &mut Ctx<'_>, name: &str) -> Got<Vec<(&'a dyn TableLike, usize)>> {
        let got = self.lookup(ctx, name, "a list of tables ([[...]])", |item| match item {
            Item::ArrayOfTables(a) => Some(
                a.iter()
                    .map(|t| (t as &dyn TableLike, t.span()))
                    .collect::<Vec<_>>(),
            ),
            Item::Value(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_inline_table().map(|t| (t as &dyn TableLike, v.span())))
                .collect(),
            _ => None,
        });
        match got {
            Got::Found(s) => {
                let line = s.line;
                let with_lines = s
                    .value
                    .into_iter()
                    .map(|(t, span)| (t, ctx.span_line(span).unwrap_or(line)))
                    .collect();
                Got::Found(Spanned {
                    value: with_lines,
                    line,
                    key: s.key,
                })
            }
            Got::Absent => Got::Absent,
            Got::Bad => Got::Bad,
        }
    }
}

pub(super) enum StrOrInt {
    Str(String),
    Int(i64),
}

fn type_name(item: &Item) -> &'static str {
    match item {
        Item::Value(v) => value_type_name(v),
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "a list of tables",
        Item::None => "nothing",
    }
}

fn value_type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date/time",
        Value::Array(_) => "a list",
        Value::InlineTable(_) => "an inline table",
    }
}
