//! Avro binary decoding driven by the schemas Keel loads from `schemas/events` at start: the
//! Python side hands over each released writer schema (expanded JSON) that is also the latest
//! reader of its type, and this module compiles it into a `Node` tree once. Nothing here is
//! written per event type, so a new schema needs no change in this crate.
//!
//! The decoder is strict on purpose: anything unusual (a union index out of range, a varint
//! longer than 10 bytes, a boolean byte other than 0 or 1, invalid UTF-8, trailing bytes) is
//! `None`, and the caller decodes that record with fastavro, the specification, which raises
//! the CodecError that names the problem. So the native decoder can only ever agree with
//! fastavro or step aside.

use std::collections::HashMap;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use pyo3::IntoPyObjectExt;
use serde_json::Value;

pub enum Node {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    Str,
    TimestampMillis,
    Fixed(usize),
    Enum(Vec<Py<PyString>>, Vec<Arc<str>>),
    Array(Box<Node>),
    Map(Box<Node>),
    Union(Vec<Node>),
    Record(Record),
    Named(Arc<Node>),
}

/// A record: its fields, and the generated class it becomes when events are built natively.
pub struct Record {
    fields: Vec<(Py<PyString>, Node, Fill)>,
    names: Vec<Arc<str>>, // the fields' names, for the values the native evolve reads
    class: Option<Py<PyAny>>,
}

/// What the generated `from_avro` makes of a field with an empty default (keel.schemas.codegen):
/// `r.get(f) or {}` / `r.get(f) or []`, so null or empty reads as an empty dict / tuple.
#[derive(Clone, Copy, PartialEq)]
pub enum Fill {
    AsRead,
    EmptyDict,
    EmptyTuple,
}

/// Compile an expanded schema; Err names what this decoder does not cover (that schema then
/// always goes through fastavro).
pub fn compile(
    py: Python<'_>,
    schema: &Value,
    names: &mut HashMap<String, Arc<Node>>,
    namespace: &str,
    classes: &Bound<'_, PyDict>,
) -> Result<Node, String> {
    match schema {
        Value::String(s) => primitive(s)
            .or_else(|| {
                names
                    .get(s)
                    .or_else(|| names.get(&format!("{namespace}.{s}")))
                    .map(|n| Node::Named(n.clone()))
            })
            .ok_or_else(|| format!("unknown type {s}")),
        Value::Array(branches) => Ok(Node::Union(
            branches
                .iter()
                .map(|b| compile(py, b, names, namespace, classes))
                .collect::<Result<_, _>>()?,
        )),
        Value::Object(o) => {
            let t = o.get("type").ok_or("a schema object without type")?;
            if let Some(lt) = o.get("logicalType") {
                return match (lt.as_str(), t.as_str()) {
                    (Some("timestamp-millis"), Some("long")) => Ok(Node::TimestampMillis),
                    _ => Err(format!("logical type {lt} is not covered")),
                };
            }
            let Value::String(t) = t else {
                return compile(py, t, names, namespace, classes);
            };
            match t.as_str() {
                "record" | "error" => {
                    let (full, ns) = full_name(o, namespace)?;
                    let mut fields = Vec::new();
                    let mut rnames = Vec::new();
                    for f in o
                        .get("fields")
                        .and_then(Value::as_array)
                        .ok_or("record without fields")?
                    {
                        let name = f
                            .get("name")
                            .and_then(Value::as_str)
                            .ok_or("field without name")?;
                        let ft = f.get("type").ok_or("field without type")?;
                        let fill = match f.get("default") {
                            Some(Value::Object(_)) => Fill::EmptyDict,
                            Some(Value::Array(_)) => Fill::EmptyTuple,
                            _ => Fill::AsRead,
                        };
                        let node = compile(py, ft, names, &ns, classes)?;
                        fields.push((PyString::intern(py, name).unbind(), node, fill));
                        rnames.push(Arc::from(name));
                    }
                    let short = full.rsplit('.').next().unwrap_or(&full);
                    let class = classes.get_item(short).ok().flatten().map(Bound::unbind);
                    Ok(named(
                        names,
                        full,
                        Node::Record(Record {
                            fields,
                            names: rnames,
                            class,
                        }),
                    ))
                }
                "enum" => {
                    let (full, _) = full_name(o, namespace)?;
                    let texts: Vec<Arc<str>> = o
                        .get("symbols")
                        .and_then(Value::as_array)
                        .ok_or("enum without symbols")?
                        .iter()
                        .map(|s| s.as_str().map(Arc::from).ok_or("bad symbol"))
                        .collect::<Result<_, _>>()?;
                    let symbols = texts
                        .iter()
                        .map(|s| PyString::intern(py, s).unbind())
                        .collect();
                    Ok(named(names, full, Node::Enum(symbols, texts)))
                }
                "fixed" => {
                    let (full, _) = full_name(o, namespace)?;
                    let size = o
                        .get("size")
                        .and_then(Value::as_u64)
                        .ok_or("fixed without size")?;
                    Ok(named(names, full, Node::Fixed(size as usize)))
                }
                "array" => Ok(Node::Array(Box::new(compile(
                    py,
                    o.get("items").ok_or("array without items")?,
                    names,
                    namespace,
                    classes,
                )?))),
                "map" => Ok(Node::Map(Box::new(compile(
                    py,
                    o.get("values").ok_or("map without values")?,
                    names,
                    namespace,
                    classes,
                )?))),
                other => compile(
                    py,
                    &Value::String(other.to_string()),
                    names,
                    namespace,
                    classes,
                ),
            }
        }
        _ => Err("not a schema".into()),
    }
}

fn primitive(s: &str) -> Option<Node> {
    Some(match s {
        "null" => Node::Null,
        "boolean" => Node::Boolean,
        "int" => Node::Int,
        "long" => Node::Long,
        "float" => Node::Float,
        "double" => Node::Double,
        "bytes" => Node::Bytes,
        "string" => Node::Str,
        _ => return None,
    })
}

fn full_name(
    o: &serde_json::Map<String, Value>,
    namespace: &str,
) -> Result<(String, String), String> {
    let name = o
        .get("name")
        .and_then(Value::as_str)
        .ok_or("named type without name")?;
    if name.contains('.') {
        let ns = name
            .rsplit_once('.')
            .map(|(n, _)| n.to_string())
            .unwrap_or_default();
        return Ok((name.to_string(), ns));
    }
    let ns = o
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or(namespace)
        .to_string();
    let full = if ns.is_empty() {
        name.to_string()
    } else {
        format!("{ns}.{name}")
    };
    Ok((full, ns))
}

/// A named type's definition: registered for later references, used in place here.
fn named(names: &mut HashMap<String, Arc<Node>>, full: String, node: Node) -> Node {
    let node = Arc::new(node);
    names.insert(full, node.clone());
    Node::Named(node)
}

pub struct Reader<'a, 'py> {
    pub py: Python<'py>,
    pub buf: &'a [u8],
    pub pos: usize,
    pub ts_millis: &'a Bound<'py, PyAny>,
    /// None: records as dicts, arrays as lists (as fastavro reads them); Some(object.__new__):
    /// records as their generated classes, arrays as tuples (as `from_avro` makes them)
    pub objects: Option<&'a Bound<'py, PyAny>>,
}

// None: not decodable here (fastavro decides); PyErr only for real Python failures.
type R<'py> = Option<Bound<'py, PyAny>>;

// The byte-level reads both readers (`Reader`, `ValueReader`) share: `n` bytes, and a zigzag
// varint long (None past the buffer's end or beyond 64 bits).
fn take<'a>(buf: &'a [u8], pos: &mut usize, n: usize) -> Option<&'a [u8]> {
    let end = pos.checked_add(n)?;
    let s = buf.get(*pos..end)?;
    *pos = end;
    Some(s)
}

fn long(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut acc: u64 = 0;
    for i in 0..10 {
        let b = *buf.get(*pos)?;
        *pos += 1;
        if i == 9 && b > 1 {
            return None; // beyond 64 bits
        }
        acc |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Some(((acc >> 1) as i64) ^ -((acc & 1) as i64));
        }
    }
    None
}

impl<'a, 'py> Reader<'a, 'py> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        take(self.buf, &mut self.pos, n)
    }

    fn long(&mut self) -> Option<i64> {
        long(self.buf, &mut self.pos)
    }

    fn length(&mut self) -> Option<usize> {
        let n = self.long()?;
        usize::try_from(n).ok()
    }

    pub fn read(&mut self, node: &Node) -> R<'py> {
        let py = self.py;
        match node {
            Node::Null => Some(py.None().into_bound(py)),
            Node::Boolean => match self.take(1)?[0] {
                0 => false.into_bound_py_any(py).ok(),
                1 => true.into_bound_py_any(py).ok(),
                _ => None,
            },
            Node::Int => {
                let v = self.long()?;
                i32::try_from(v).ok()?;
                v.into_bound_py_any(py).ok()
            }
            Node::Long => self.long()?.into_bound_py_any(py).ok(),
            Node::TimestampMillis => {
                let v = self.long()?;
                // fastavro's own conversion, so the datetime is the one it would build
                self.ts_millis.call1((v, py.None(), py.None())).ok()
            }
            Node::Float => {
                let b: [u8; 4] = self.take(4)?.try_into().ok()?;
                (f32::from_le_bytes(b) as f64).into_bound_py_any(py).ok()
            }
            Node::Double => {
                let b: [u8; 8] = self.take(8)?.try_into().ok()?;
                f64::from_le_bytes(b).into_bound_py_any(py).ok()
            }
            Node::Bytes => {
                let n = self.length()?;
                Some(PyBytes::new(py, self.take(n)?).into_any())
            }
            Node::Fixed(n) => Some(PyBytes::new(py, self.take(*n)?).into_any()),
            Node::Str => {
                let n = self.length()?;
                let s = std::str::from_utf8(self.take(n)?).ok()?;
                Some(PyString::new(py, s).into_any())
            }
            Node::Enum(symbols, _) => {
                let i = usize::try_from(self.long()?).ok()?;
                Some(symbols.get(i)?.bind(py).clone().into_any())
            }
            Node::Union(branches) => {
                let i = usize::try_from(self.long()?).ok()?;
                self.read(branches.get(i)?)
            }
            Node::Array(items) => {
                let list = PyList::empty(py);
                loop {
                    let n = self.block()?;
                    if n == 0 {
                        if self.objects.is_some() {
                            return PyTuple::new(py, list.iter()).ok().map(Bound::into_any);
                        }
                        return Some(list.into_any());
                    }
                    for _ in 0..n {
                        list.append(self.read(items)?).ok()?;
                    }
                }
            }
            Node::Map(values) => {
                let dict = PyDict::new(py);
                loop {
                    let n = self.block()?;
                    if n == 0 {
                        return Some(dict.into_any());
                    }
                    for _ in 0..n {
                        let k = self.read(&Node::Str)?;
                        dict.set_item(k, self.read(values)?).ok()?;
                    }
                }
            }
            Node::Record(rec) => match (self.objects, &rec.class) {
                (Some(new), Some(class)) => {
                    let obj = new.call1((class.bind(py),)).ok()?;
                    for (name, f, fill) in &rec.fields {
                        let mut v = self.read(f)?;
                        if *fill != Fill::AsRead && (v.is_none() || v.len().ok()? == 0) {
                            v = match fill {
                                Fill::EmptyDict => PyDict::new(py).into_any(),
                                _ => PyTuple::empty(py).into_any(),
                            };
                        }
                        // the frozen dataclass's own __setattr__ refuses: set the slot as
                        // object.__setattr__ does (what its generated __init__ does)
                        let rc = unsafe {
                            pyo3::ffi::PyObject_GenericSetAttr(
                                obj.as_ptr(),
                                name.as_ptr(),
                                v.as_ptr(),
                            )
                        };
                        if rc != 0 {
                            PyErr::take(py);
                            return None;
                        }
                    }
                    Some(obj)
                }
                (Some(_), None) => None, // no generated class: the Python path decides
                (None, _) => {
                    let dict = PyDict::new(py);
                    for (name, f, _) in &rec.fields {
                        dict.set_item(name.bind(py), self.read(f)?).ok()?;
                    }
                    Some(dict.into_any())
                }
            },
            Node::Named(n) => self.read(n),
        }
    }

    /// An array or map block's item count (a negative count is followed by the block's size).
    fn block(&mut self) -> Option<u64> {
        let n = self.long()?;
        if n < 0 {
            self.long()?;
            return n.checked_neg().map(|n| n as u64);
        }
        Some(n as u64)
    }
}

/// A decoded value held on the Rust side (the native evolve reads these; no Python objects).
/// Fields with an empty default read as the generated `from_avro` makes them (null or empty:
/// an empty map / array), so the evolve sees what the generated classes would hold.
#[derive(Debug, Clone)]
pub enum V {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes,
    Ts(i64),
    Arr(Vec<V>),
    Map(Vec<(String, V)>),
    Rec(Vec<(Arc<str>, V)>),
}

impl V {
    pub fn get(&self, name: &str) -> Option<&V> {
        match self {
            V::Rec(fields) => fields.iter().find(|(n, _)| &**n == name).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Reads values as `V` (the same strictness as `Reader`: None where fastavro decides).
pub struct ValueReader<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> ValueReader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        take(self.buf, &mut self.pos, n)
    }

    fn long(&mut self) -> Option<i64> {
        long(self.buf, &mut self.pos)
    }

    fn length(&mut self) -> Option<usize> {
        usize::try_from(self.long()?).ok()
    }

    fn block(&mut self) -> Option<u64> {
        let n = self.long()?;
        if n < 0 {
            self.long()?;
            return n.checked_neg().map(|n| n as u64);
        }
        Some(n as u64)
    }

    fn string(&mut self) -> Option<String> {
        let n = self.length()?;
        Some(std::str::from_utf8(self.take(n)?).ok()?.to_owned())
    }

    pub fn read(&mut self, node: &Node) -> Option<V> {
        Some(match node {
            Node::Null => V::Null,
            Node::Boolean => match self.take(1)?[0] {
                0 => V::Bool(false),
                1 => V::Bool(true),
                _ => return None,
            },
            Node::Int => {
                let v = self.long()?;
                i32::try_from(v).ok()?;
                V::Int(v)
            }
            Node::Long => V::Int(self.long()?),
            Node::TimestampMillis => {
                // fastavro's reader builds a datetime: years 1-9999 (else it steps aside)
                let ms = self.long()?;
                if !(-62_135_596_800_000..=253_402_300_799_999).contains(&ms) {
                    return None;
                }
                V::Ts(ms)
            }
            Node::Float => {
                let b: [u8; 4] = self.take(4)?.try_into().ok()?;
                V::Float(f32::from_le_bytes(b) as f64)
            }
            Node::Double => {
                let b: [u8; 8] = self.take(8)?.try_into().ok()?;
                V::Float(f64::from_le_bytes(b))
            }
            Node::Bytes => {
                let n = self.length()?;
                self.take(n)?;
                V::Bytes
            }
            Node::Fixed(n) => {
                self.take(*n)?;
                V::Bytes
            }
            Node::Str => V::Str(self.string()?),
            Node::Enum(_, texts) => {
                let i = usize::try_from(self.long()?).ok()?;
                V::Str(texts.get(i)?.to_string())
            }
            Node::Union(branches) => {
                let i = usize::try_from(self.long()?).ok()?;
                return self.read(branches.get(i)?);
            }
            Node::Array(items) => {
                let mut out = Vec::new();
                loop {
                    let n = self.block()?;
                    if n == 0 {
                        break V::Arr(out);
                    }
                    for _ in 0..n {
                        out.push(self.read(items)?);
                    }
                }
            }
            Node::Map(values) => {
                let mut out: Vec<(String, V)> = Vec::new();
                loop {
                    let n = self.block()?;
                    if n == 0 {
                        break V::Map(out);
                    }
                    for _ in 0..n {
                        let k = self.string()?;
                        let v = self.read(values)?;
                        // a repeated key: the last one wins, in the first one's place (a dict)
                        match out.iter_mut().find(|(x, _)| *x == k) {
                            Some(slot) => slot.1 = v,
                            None => out.push((k, v)),
                        }
                    }
                }
            }
            Node::Record(rec) => {
                if rec.class.is_none() {
                    return None; // no generated class: the Python path decides, as for objects
                }
                let mut fields = Vec::with_capacity(rec.fields.len());
                for ((_, f, fill), name) in rec.fields.iter().zip(&rec.names) {
                    let mut v = self.read(f)?;
                    let empty = match &v {
                        V::Null => true,
                        V::Arr(a) => a.is_empty(),
                        V::Map(m) => m.is_empty(),
                        V::Str(s) => s.is_empty(),
                        _ => false,
                    };
                    match fill {
                        Fill::EmptyDict if empty => v = V::Map(Vec::new()),
                        Fill::EmptyTuple if empty => v = V::Arr(Vec::new()),
                        Fill::AsRead => {}
                        _ if !matches!(v, V::Arr(_) | V::Map(_)) => return None,
                        _ => {}
                    }
                    fields.push((name.clone(), v));
                }
                V::Rec(fields)
            }
            Node::Named(n) => return self.read(n),
        })
    }
}
