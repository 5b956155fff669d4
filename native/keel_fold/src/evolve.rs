//! The native `evolve` (decision 0027): keel.audit.projection.evolve over the events the
//! decoder read as Rust values, with the batch's documents held here as serde_json values.
//!
//! projection.py stays the specification. Wherever this module meets something it does not
//! cover (an event type it does not implement, a value it cannot reproduce exactly: a JSON
//! text with -0, a timestamp outside the range where Python's arithmetic is exact, a document
//! of an unexpected shape) it leaves that event untouched and the Python evolve folds it over
//! the same documents (`get` / `put`), so there is one cache of truth. Documents leave as
//! canonical JSON bytes (canon.rs), equal to what keel.views.docjson writes for the Python
//! fold's documents (tests/unit/test_native_evolve.py).
//!
//! Documents are held as the canonical JSON bytes the views store (`Held::Json`, the same
//! Python bytes object `load` got and `finish` hands back) and parsed only when an event reads
//! one; a document changed in the batch is a value until `finish` writes it once. Allocating
//! and freeing a value tree per document was most of this module's cost (decision 0027).

use std::collections::{BTreeSet, HashMap, HashSet};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyFloat, PyList, PyString};
use serde_json::{Map, Number, Value};

use crate::avro::V;
use crate::canon;
use crate::stdtext;
use crate::Decoder;

type Doc = Map<String, Value>;

/// A document as the fold holds it (see the module docstring).
enum Held {
    /// read from the views as absent (None)
    Absent,
    /// canonical JSON (keel.views.docjson), not parsed yet
    Json(Py<PyBytes>),
    /// parsed (read by an event) or changed in this batch (then in `changed`)
    Tree(Value),
}

/// This event is the Python evolve's to fold (nothing of it was applied here).
struct Bail;
type R<T> = Result<T, Bail>;

const STATS: &str = "projector:stats";
const FAMILIES: &str = "meta:families";
const TRUST_RESETS: &str = "trust:resets";
// Where Python's float arithmetic on times is exact (see `at_ms` and `times`).
const MAX_MICROS: i64 = 1 << 53;
const MAX_RECORDED_MS: i64 = 8_000_000_000_000;

/// The event types this module folds itself (projection.py registers views for them).
///
/// Every one writes views shape 6 (decision 0035: lists and "latest" fields in the log's
/// order; documents written again keep the newest record's, `newest`; a waiting list's
/// concluded promotions in a marker each). An event of a type
/// projection.py registers and not listed here is decoded and folded by Python.
const NATIVE: &[&str] = &[
    "ArtifactRecorded",
    "DatasetIngested",
    "FeaturesBuilt",
    "ModelTrained",
    "ModelEvaluated",
    "PromotionPending",
    "PromotionReviewed",
    "PromotionRejected",
    "ModelPromoted",
    "TrustReset",
    "RecordQuarantined",
    "ModelDeployed",
    "DriftDetected",
    "ServingStatsRecorded",
];

struct Ev {
    name: String,
    v: V,
    eid: String,
    occurred: i64,     // ms: envelope.occurred_at
    at_ms: f64,        // projection.ms(event)
    keys: Vec<String>, // beside STATS and FAMILIES, which every event reads
}

#[pyclass(module = "keel_fold")]
pub struct Fold {
    cache: HashMap<String, Held>,
    changed: BTreeSet<String>,
    /// how many events this module folded itself (the bench and tests read it)
    #[pyo3(get)]
    folded: u64,
    events: Vec<Option<Ev>>,
    copies: HashSet<String>,  // projection.EVENT_DOCS
    python: HashSet<String>,  // registered in projection.py, not implemented here
    adopted: String,          // keel.signing.ADOPTED
    skew_ms: i64,             // keel.timeparse.CLOCK_SKEW_MS
    index_add: Py<PyAny>,     // keel.views.port.IndexAdd
    put: Py<PyAny>,           // keel.views.port.Put
    slots: [Py<PyString>; 5], // index, member, score; key, doc
}

#[pymethods]
impl Fold {
    /// copies: the types whose events are copied (EVENT_DOCS); registered: every type
    /// projection.py registers a view for (those not implemented here fold in Python).
    #[new]
    fn new(
        py: Python<'_>,
        copies: HashSet<String>,
        registered: HashSet<String>,
        adopted: String,
        skew_ms: i64,
        index_add: Py<PyAny>,
        put: Py<PyAny>,
    ) -> PyResult<Self> {
        let python = registered
            .into_iter()
            .filter(|t| !NATIVE.contains(&t.as_str()))
            .collect();
        let slots =
            ["index", "member", "score", "key", "doc"].map(|n| PyString::intern(py, n).unbind());
        Ok(Fold {
            cache: HashMap::new(),
            changed: BTreeSet::new(),
            folded: 0,
            events: Vec::new(),
            copies,
            python,
            adopted,
            skew_ms,
            index_add,
            put,
            slots,
        })
    }

    /// The batch's values decoded and kept here: for each, (type, event ID, business time in
    /// ms as projection.ms has it) or None where the Python codec decodes it (the decoder
    /// stepped aside, or the event is one the Python evolve folds).
    fn decode<'py>(
        &mut self,
        py: Python<'py>,
        decoder: PyRef<'py, Decoder>,
        values: &Bound<'py, PyList>,
    ) -> PyResult<Bound<'py, PyList>> {
        self.events.clear();
        let values = values
            .iter()
            .map(|v| v.cast_into::<PyBytes>().map_err(PyErr::from))
            .collect::<PyResult<Vec<_>>>()?;
        let data: Vec<&[u8]> = values.iter().map(|b| b.as_bytes()).collect();
        // Rust values from borrowed bytes alone: the GIL released meanwhile
        let decoder: &Decoder = &decoder;
        let fold: &Fold = self;
        let events: Vec<Option<Ev>> = py.detach(|| {
            data.iter()
                .map(|b| {
                    decoder
                        .value_of(b)
                        .and_then(|(name, v)| fold.event(name, v).ok())
                })
                .collect()
        });
        let out = PyList::empty(py);
        for ev in &events {
            match ev {
                Some(e) => out.append((&e.name, &e.eid, e.at_ms as i64))?,
                None => out.append(py.None())?,
            }
        }
        self.events = events;
        Ok(out)
    }

    /// The keys `slots`' events read and `extra` (the Python-decoded events' keys_for) not
    /// yet held here, sorted: what to load with one get_many.
    fn missing(&self, slots: Vec<usize>, extra: Vec<String>) -> Vec<String> {
        let mut want = BTreeSet::new();
        if !slots.is_empty() {
            want.extend(
                [STATS, FAMILIES]
                    .into_iter()
                    .filter(|k| !self.cache.contains_key(*k))
                    .map(str::to_owned),
            );
        }
        for i in slots {
            if let Some(Some(e)) = self.events.get(i) {
                want.extend(
                    e.keys
                        .iter()
                        .filter(|k| !self.cache.contains_key(*k))
                        .cloned(),
                );
            }
        }
        want.extend(extra.into_iter().filter(|k| !self.cache.contains_key(k)));
        want.into_iter().collect()
    }

    /// Documents read from the views (their stored canonical JSON bytes, None where absent:
    /// ViewStore.get_many_raw), kept as they are until an event reads one.
    fn load(&mut self, keys: Vec<String>, docs: Vec<Option<Bound<'_, PyBytes>>>) -> PyResult<()> {
        if keys.len() != docs.len() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "load: as many documents as keys",
            ));
        }
        for (k, d) in keys.into_iter().zip(docs) {
            let held = match d {
                Some(b) => Held::Json(b.unbind()),
                None => Held::Absent,
            };
            self.cache.insert(k, held);
        }
        Ok(())
    }

    /// A document as the fold holds it now (canonical JSON), None where it holds none.
    fn get<'py>(&self, py: Python<'py>, key: &str) -> Option<Bound<'py, PyBytes>> {
        match self.cache.get(key) {
            Some(Held::Json(b)) => Some(b.bind(py).clone()),
            Some(Held::Tree(v)) => Some(PyBytes::new(py, &canon::dumps(v))),
            _ => None,
        }
    }

    /// A document the Python evolve wrote (canonical JSON: kept as it is).
    fn put(&mut self, key: String, doc: Bound<'_, PyBytes>) -> PyResult<()> {
        // a document that does not parse would fail every later reader: refused here
        parse(doc.as_bytes())?;
        self.changed.insert(key.clone());
        self.cache.insert(key, Held::Json(doc.unbind()));
        Ok(())
    }

    /// The keys the batch's events read (`load`: foldcore's Decoded tuples, read here: their
    /// slot where held here, else `keys_for(event)`) not yet held, sorted: what to load.
    fn missing_of(
        &self,
        load: &Bound<'_, PyList>,
        keys_for: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<String>> {
        let (mut slots, mut extra) = (Vec::with_capacity(load.len()), Vec::new());
        for d in load.iter() {
            let event = d.get_item(4)?;
            match event.extract::<usize>() {
                Ok(slot) => slots.push(slot),
                Err(_) => extra.extend(keys_for.call1((event,))?.extract::<Vec<String>>()?),
            }
        }
        Ok(self.missing(slots, extra))
    }

    /// Fold `apply` (foldcore's Apply tuples: (Decoded, adopted)) from `start`, in order, until
    /// an event this module leaves to Python (not held here, or one it bails on): (where it
    /// stopped, the folded events' IndexAdds in order). Read here so that no tuple is built
    /// per event in Python.
    fn evolve_from<'py>(
        &mut self,
        py: Python<'py>,
        apply: &Bound<'py, PyList>,
        start: usize,
    ) -> PyResult<(usize, Bound<'py, PyList>)> {
        let (recorded, offset) = (
            pyo3::intern!(py, "recorded_ms"),
            pyo3::intern!(py, "offset"),
        );
        let mut run = Vec::with_capacity(apply.len().saturating_sub(start));
        for i in start..apply.len() {
            let item = apply.get_item(i)?;
            let d = item.get_item(0)?;
            let Ok(slot) = d.get_item(4)?.extract::<usize>() else {
                break;
            };
            let rec = d.get_item(0)?;
            let recorded_ms: Option<i64> = rec.getattr(recorded)?.extract()?;
            let adopted: bool = item.get_item(1)?.is_truthy()?;
            run.push((
                slot,
                recorded_ms.unwrap_or(0),
                rec.getattr(offset)?.extract()?,
                adopted,
            ));
        }
        let (done, adds) = self.evolve(py, run)?;
        Ok((start + done, adds))
    }

    /// Fold `run` ((slot, recorded ms, log position, adopted), in order) until an event this
    /// module leaves to Python: (how many were folded, their IndexAdds in order).
    fn evolve<'py>(
        &mut self,
        py: Python<'py>,
        run: Vec<(usize, i64, i64, bool)>,
    ) -> PyResult<(usize, Bound<'py, PyList>)> {
        let out = PyList::empty(py);
        let add = self.index_add.bind(py);
        let total = run.len();
        for (done, (slot, recorded_ms, position, adopted)) in run.into_iter().enumerate() {
            let Some(Some(ev)) = self.events.get(slot) else {
                return Ok((done, out));
            };
            let mut tx = Tx {
                py,
                cache: &mut self.cache,
                docs: Vec::new(),
                copy: None,
                index: Vec::new(),
                stats: (0, 0),
            };
            let meta = Meta {
                recorded_ms,
                position,
                adopted,
                label: &self.adopted,
                skew_ms: self.skew_ms,
                copies: &self.copies,
            };
            if fold(&mut tx, ev, &meta).is_err() {
                return Ok((done, out));
            }
            let Tx {
                docs,
                copy,
                index,
                stats,
                ..
            } = tx;
            for (index, member, score) in index {
                let values = [
                    PyString::new(py, &index).into_any(),
                    PyString::new(py, &member).into_any(),
                    PyFloat::new(py, score).into_any(),
                ];
                out.append(build(add, &self.slots[..3], &values)?)?;
            }
            commit_stats(&mut self.cache, &ev.name, stats);
            if !self.changed.contains(STATS) {
                self.changed.insert(STATS.to_owned());
            }
            for (k, d, once) in docs {
                if !self.changed.contains(&k) {
                    self.changed.insert(k.clone());
                }
                let held = if once {
                    // written whole by this event and seldom read again in a batch: its
                    // canonical JSON now, while its tree is in the cache, rather than at
                    // `finish` after thousands of other events' trees (an event that reads it
                    // later parses it, as any document loaded)
                    Held::Json(PyBytes::new(py, &canon::dumps(&Value::Object(d))).unbind())
                } else {
                    Held::Tree(Value::Object(d))
                };
                self.cache.insert(k, held);
            }
            if let Some((k, json)) = copy {
                if !self.changed.contains(&k) {
                    self.changed.insert(k.clone());
                }
                self.cache
                    .insert(k, Held::Json(PyBytes::new(py, &json).unbind()));
            }
            self.folded += 1;
        }
        Ok((total, out))
    }

    /// The batch's changed documents as Puts of canonical JSON (sorted by key); starts the
    /// next batch.
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        let put = self.put.bind(py);
        for k in std::mem::take(&mut self.changed) {
            let Some(held) = self.cache.get_mut(&k) else {
                continue; // not held: cleared since (a Put of {} would be a guess)
            };
            // a Put whose doc is bytes: canonical JSON, stored as it is (keel.views.docjson);
            // written once here, and held as those bytes from now on (the tree is dropped)
            let doc = match held {
                Held::Tree(v) if truthy(v) => PyBytes::new(py, &canon::dumps(v)),
                Held::Json(b) if !falsy_json(b.as_bytes(py)) => b.bind(py).clone(),
                _ => PyBytes::new(py, b"{}"),
            };
            *held = Held::Json(doc.clone().unbind());
            let values = [PyString::new(py, &k).into_any(), doc.into_any()];
            out.append(build(put, &self.slots[3..], &values)?)?;
        }
        self.events.clear();
        Ok(out)
    }

    /// Forget every document (a reload, or past the projector's cache limit).
    fn clear(&mut self) {
        self.cache.clear();
        self.changed.clear();
    }

    fn __len__(&self) -> usize {
        self.cache.len()
    }
}

/// For the tests: `value` (a Python float) as canonical JSON writes it, and a JSON text
/// parsed and written again (None where the native evolve leaves it to Python).
#[pyfunction]
pub fn canonical_float(x: f64) -> String {
    let mut out = Vec::new();
    canon::float(x, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

#[pyfunction]
pub fn canonical_json<'py>(py: Python<'py>, text: &str) -> Option<Bound<'py, PyBytes>> {
    json_text(text)
        .ok()
        .map(|v| PyBytes::new(py, &canon::dumps(&v)))
}

/// An instance of a frozen slots dataclass with its fields set as its __init__ sets them.
fn build<'py>(
    class: &Bound<'py, PyAny>,
    names: &[Py<PyString>],
    values: &[Bound<'py, PyAny>],
) -> PyResult<Bound<'py, PyAny>> {
    let py = class.py();
    // object.__new__(class) is the class's tp_alloc (a slots class: no __dict__, no
    // __init__ run), called here without building an argument tuple per object
    let obj = unsafe {
        let tp = class.as_ptr().cast::<pyo3::ffi::PyTypeObject>();
        let alloc = pyo3::ffi::PyType_GetSlot(tp, pyo3::ffi::Py_tp_alloc);
        let alloc: pyo3::ffi::allocfunc = if alloc.is_null() {
            pyo3::ffi::PyType_GenericAlloc
        } else {
            std::mem::transmute::<*mut std::ffi::c_void, pyo3::ffi::allocfunc>(alloc)
        };
        Bound::from_owned_ptr_or_err(py, alloc(tp, 0))?
    };
    for (name, v) in names.iter().zip(values) {
        // the frozen class's own __setattr__ refuses: object.__setattr__'s way
        let rc =
            unsafe { pyo3::ffi::PyObject_GenericSetAttr(obj.as_ptr(), name.as_ptr(), v.as_ptr()) };
        if rc != 0 {
            return Err(PyErr::fetch(obj.py()));
        }
    }
    Ok(obj)
}

/// Whether canonical JSON `data` is a falsy value (null, false, 0, "", [], {}): the Put of
/// such a document writes {} (`docs[k] or {}`). Every falsy JSON text is short.
fn falsy_json(data: &[u8]) -> bool {
    data.len() <= 8 && serde_json::from_slice::<Value>(data).is_ok_and(|v| !truthy(&v))
}

/// projection.evolve's stats update, made when the event folded whole (checked by `fold`,
/// which computed (applied, this type's count)): in place, not a copy per event.
fn commit_stats(cache: &mut HashMap<String, Held>, name: &str, (applied, n): (i64, i64)) {
    let held = cache.entry(STATS.to_owned()).or_insert(Held::Absent);
    if !matches!(held, Held::Tree(Value::Object(d)) if !d.is_empty()) {
        *held = Held::Tree(Value::Object(obj(vec![
            ("applied", 0.into()),
            ("by_type", Value::Object(Doc::new())),
        ])));
    }
    let Held::Tree(Value::Object(stats)) = held else {
        return;
    };
    stats.insert("applied".into(), applied.into());
    if let Some(Value::Object(by_type)) = stats.get_mut("by_type") {
        match by_type.get_mut(name) {
            Some(slot) => *slot = n.into(),
            None => {
                by_type.insert(name.to_owned(), n.into());
            }
        }
    }
}

fn parse(data: &[u8]) -> PyResult<Value> {
    serde_json::from_slice(data)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("a view document: {e}")))
}

impl Fold {
    fn event(&self, name: String, v: V) -> R<Ev> {
        if self.python.contains(&name) {
            return Err(Bail);
        }
        let env = v.get("envelope").ok_or(Bail)?;
        let eid = s(env, "event_id")?.to_owned();
        let occurred = match env.get("occurred_at") {
            Some(V::Ts(ms)) => *ms,
            _ => return Err(Bail),
        };
        canon::iso(occurred).ok_or(Bail)?;
        let at_ms = at_ms(occurred)?;
        let keys = keys_of(&name, &v, &eid)?;
        Ok(Ev {
            name,
            v,
            eid,
            occurred,
            at_ms,
            keys,
        })
    }
}

/// projection.ms: float(int(occurred_at.timestamp() * 1000)); timestamp() divides the
/// microseconds by 10**6 (correctly rounded, as f64 division is below 2**53).
fn at_ms(ms: i64) -> R<f64> {
    let micros = ms.checked_mul(1000).ok_or(Bail)?;
    if micros.abs() >= MAX_MICROS {
        return Err(Bail);
    }
    Ok((micros as f64 / 1e6 * 1000.0).trunc())
}

/// projection.keys_for.
fn keys_of(name: &str, v: &V, eid: &str) -> R<Vec<String>> {
    let mut keys = Vec::new();
    match name {
        "ArtifactRecorded" => keys.push(format!("artifact:{}", s(v, "artifact_id")?)),
        "DatasetIngested" => {
            keys.push(format!("dataset:{}", s(v, "dataset_id")?));
            keys.push(format!("quarantine:{}", s(v, "family")?));
        }
        "RecordQuarantined" => keys.push(format!("quarantine:{}", s(v, "family")?)),
        "FeaturesBuilt" => keys.push(format!("featureset:{}", s(v, "feature_set_id")?)),
        "ModelTrained" | "ModelEvaluated" => keys.push(format!("model:{}", s(v, "model_id")?)),
        "ModelPromoted" | "PromotionRejected" | "PromotionPending" | "PromotionReviewed" => {
            keys.push(format!("model:{}", s(v, "model_id")?));
            if let Some(pid) = pending_id(name, v, eid)? {
                if !pid.is_empty() {
                    let (family, env) = (s(v, "family")?, s(v, "env")?);
                    keys.push(format!("pending:{pid}"));
                    keys.push(format!("open:{family}:{env}"));
                    keys.push(format!("closed:{family}:{env}:{pid}"));
                }
            }
        }
        "TrustReset" => keys.push(TRUST_RESETS.to_owned()),
        _ => {}
    }
    Ok(keys)
}

fn pending_id<'a>(name: &str, v: &'a V, eid: &'a str) -> R<Option<&'a str>> {
    Ok(match name {
        "PromotionPending" => Some(eid),
        "PromotionReviewed" | "ModelPromoted" => match v.get("pending_event_id") {
            Some(V::Str(p)) => Some(p.as_str()),
            Some(V::Null) => None,
            _ => return Err(Bail),
        },
        _ => None,
    })
}

/// One event's documents, staged until it folded whole.
struct Tx<'a, 'py> {
    py: Python<'py>,
    cache: &'a mut HashMap<String, Held>,
    docs: Vec<(String, Doc, bool)>, // (key, document, written once: see `set_once`)
    copy: Option<(String, Vec<u8>)>, // the event's copy (EVENT_DOCS) as canonical JSON
    index: Vec<(String, String, f64)>,
    stats: (i64, i64), // the stats' applied and this type's count once it folded (commit_stats)
}

impl Tx<'_, '_> {
    /// projection._doc: this change's version, else the cache's (a copy), else {}.
    fn doc(&mut self, key: &str) -> R<Doc> {
        if let Some((_, d, _)) = self.docs.iter().find(|(k, _, _)| k == key) {
            return Ok(d.clone());
        }
        let parsed = match self.cache.get(key) {
            // parsed for this event alone: it sets the document (held as its tree then)
            Some(Held::Json(b)) => {
                serde_json::from_slice::<Value>(b.as_bytes(self.py)).map_err(|_| Bail)?
            }
            Some(Held::Tree(Value::Object(m))) => return Ok(m.clone()),
            Some(Held::Tree(v)) if truthy(v) => return Err(Bail),
            _ => return Ok(Doc::new()),
        };
        match parsed {
            Value::Object(m) => Ok(m),
            v if truthy(&v) => Err(Bail),
            _ => Ok(Doc::new()),
        }
    }

    /// The cache's document at `key` (None where absent), for reading: parsed in place the
    /// first time (the same document: nothing to undo if the event is left to Python).
    fn held(&mut self, key: &str) -> R<Option<&Value>> {
        let Some(h) = self.cache.get_mut(key) else {
            return Ok(None);
        };
        if let Held::Json(b) = h {
            let v = serde_json::from_slice::<Value>(b.as_bytes(self.py)).map_err(|_| Bail)?;
            *h = Held::Tree(v);
        }
        Ok(match h {
            Held::Tree(v) => Some(v),
            _ => None,
        })
    }

    fn set(&mut self, key: String, doc: Doc) {
        self.stage(key, doc, false);
    }

    /// `set` for a document this event writes whole and later events of a batch seldom read
    /// (one keyed by its event, or an artifact's, dataset's or feature set's newest record):
    /// held as its canonical JSON once the event folded (`Fold::evolve`).
    fn set_once(&mut self, key: String, doc: Doc) {
        self.stage(key, doc, true);
    }

    fn stage(&mut self, key: String, doc: Doc, once: bool) {
        match self.docs.iter_mut().find(|(k, _, _)| *k == key) {
            Some(slot) => (slot.1, slot.2) = (doc, once),
            None => self.docs.push((key, doc, once)),
        }
    }

    fn add(&mut self, index: String, member: String, score: f64) {
        self.index.push((index, member, score));
    }
}

struct Meta<'a> {
    recorded_ms: i64,
    position: i64,
    adopted: bool,
    label: &'a str,
    skew_ms: i64,
    copies: &'a HashSet<String>,
}

/// Python's truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn s<'a>(v: &'a V, name: &str) -> R<&'a str> {
    match v.get(name) {
        Some(V::Str(x)) => Ok(x),
        _ => Err(Bail),
    }
}

fn f(v: &V, name: &str) -> R<Value> {
    val(v.get(name).ok_or(Bail)?)
}

/// A decoded value as the generated classes' to_avro() gives it, once orjson wrote it.
fn val(v: &V) -> R<Value> {
    Ok(match v {
        V::Null => Value::Null,
        V::Bool(b) => Value::Bool(*b),
        V::Int(i) => Value::Number((*i).into()),
        V::Float(x) => Number::from_f64(*x).map_or(Value::Null, Value::Number),
        V::Str(x) => Value::String(x.clone()),
        V::Bytes => return Err(Bail), // orjson refuses bytes: the Python fold raises
        V::Ts(ms) => Value::String(canon::iso(*ms).ok_or(Bail)?),
        V::Arr(items) => Value::Array(items.iter().map(val).collect::<R<_>>()?),
        V::Map(m) => Value::Object(
            m.iter()
                .map(|(k, x)| Ok((k.clone(), val(x)?)))
                .collect::<R<_>>()?,
        ),
        V::Rec(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, x)| Ok((k.to_string(), val(x)?)))
                .collect::<R<_>>()?,
        ),
    })
}

/// `canon::dumps(&val(v)?)` written from `v` itself: a record's fields and a map's keys in
/// byte order (a map's key given twice: its last value, as a dict built from it keeps).
fn copy_json(v: &V, out: &mut Vec<u8>) -> R<()> {
    match v {
        V::Null => out.extend_from_slice(b"null"),
        V::Bool(true) => out.extend_from_slice(b"true"),
        V::Bool(false) => out.extend_from_slice(b"false"),
        V::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        V::Float(x) => canon::float(*x, out), // NaN and infinities: null, as val's Null
        V::Str(x) => canon::string(x, out),
        V::Bytes => return Err(Bail),
        V::Ts(ms) => canon::string(&canon::iso(*ms).ok_or(Bail)?, out),
        V::Arr(items) => {
            out.push(b'[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                copy_json(x, out)?;
            }
            out.push(b']');
        }
        V::Map(m) => {
            let mut pairs: Vec<(&str, &V)> = m.iter().map(|(k, x)| (k.as_str(), x)).collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0)); // stable: a repeated key's last value last
            object_json(&pairs, out)?;
        }
        V::Rec(fields) => {
            let mut pairs: Vec<(&str, &V)> = fields.iter().map(|(k, x)| (&**k, x)).collect();
            pairs.sort_by(|a, b| a.0.cmp(b.0));
            object_json(&pairs, out)?;
        }
    }
    Ok(())
}

/// `pairs` sorted by key, written as an object; of equal keys only the last.
fn object_json(pairs: &[(&str, &V)], out: &mut Vec<u8>) -> R<()> {
    out.push(b'{');
    let mut first = true;
    for (i, (k, x)) in pairs.iter().enumerate() {
        if pairs.get(i + 1).is_some_and(|next| next.0 == *k) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        canon::string(k, out);
        out.push(b':');
        copy_json(x, out)?;
    }
    out.push(b'}');
    Ok(())
}

fn obj(pairs: Vec<(&str, Value)>) -> Doc {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn int(d: &Doc, key: &str) -> R<i64> {
    match d.get(key) {
        None => Ok(0),
        Some(Value::Number(n)) => n.as_i64().ok_or(Bail),
        _ => Err(Bail),
    }
}

fn list(d: &Doc, key: &str) -> R<Vec<Value>> {
    match d.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(a.clone()),
        _ => Err(Bail),
    }
}

/// projection._json: orjson.loads (the standard library where orjson refuses: here, Python).
/// "-0" reads as the integer 0 there and as -0.0 here: any -0.0 is left to Python.
fn json_text(text: &str) -> R<Value> {
    let v: Value = serde_json::from_str(text).map_err(|_| Bail)?;
    fn neg_zero(v: &Value) -> bool {
        match v {
            Value::Number(n) => {
                n.as_f64().is_some_and(|x| x == 0.0 && x.is_sign_negative())
                    && !n.is_i64()
                    && !n.is_u64()
            }
            Value::Array(a) => a.iter().any(neg_zero),
            Value::Object(o) => o.values().any(neg_zero),
            _ => false,
        }
    }
    if neg_zero(&v) {
        return Err(Bail);
    }
    Ok(v)
}

/// projection.times.
fn times(ev: &Ev, m: &Meta) -> R<Vec<(&'static str, Value)>> {
    let occurred = ev.at_ms as i64;
    let recorded = if m.recorded_ms != 0 {
        m.recorded_ms
    } else {
        occurred
    };
    // datetime.fromtimestamp(recorded / 1000): exact to the ms below 2**33 s
    if !(0..MAX_RECORDED_MS).contains(&recorded) {
        return Err(Bail);
    }
    let mut out = vec![
        ("recorded_ms", Value::from(recorded)),
        (
            "recorded_at",
            Value::String(canon::iso(recorded).ok_or(Bail)?),
        ),
        ("backdated", Value::Bool(recorded - occurred > m.skew_ms)),
    ];
    if m.adopted {
        out.push(("signed_by", Value::String(m.label.to_owned())));
    }
    Ok(out)
}

fn member(eid: &str, recorded_ms: i64, position: i64) -> String {
    format!("{:016}.{:020}@{eid}", recorded_ms.max(0), position.max(0))
}

/// projection.order: the event's place in the log's order (decision 0035).
fn order(ev: &Ev, m: &Meta) -> String {
    let recorded = if m.recorded_ms != 0 {
        m.recorded_ms
    } else {
        ev.at_ms as i64
    };
    member(&ev.eid, recorded, m.position)
}

/// projection._newest: whether the event at `at` is newer than every event that wrote `old`
/// before (its written_by); adds those of the index entries (index names, each of `id` at
/// `score`) whose index holds no newer writer's entry for the document (entries_by, kept in
/// `old`).
fn newest(
    tx: &mut Tx,
    old: &mut Doc,
    at: &str,
    entries: Vec<String>,
    id: &str,
    score: f64,
) -> R<bool> {
    let mut written = match old.get("entries_by") {
        None => Doc::new(),
        Some(Value::Object(w)) => w.clone(),
        _ => return Err(Bail),
    };
    for index in entries {
        let later = match written.get(&index) {
            None => true,
            Some(Value::String(w)) => at > w.as_str(),
            _ => return Err(Bail),
        };
        if later {
            written.insert(index.clone(), at.into());
            tx.add(index, id.to_owned(), score);
        }
    }
    old.insert("entries_by".into(), Value::Object(written));
    match old.get("written_by") {
        None => Ok(true),
        Some(Value::String(w)) => Ok(at > w.as_str()),
        _ => Err(Bail),
    }
}

/// A list of objects sorted by their "order" field (projection.order's text), stable as
/// Python's sorted is; an entry without a text "order" is left to Python.
fn by_order(items: Vec<Value>) -> R<Vec<Value>> {
    let mut keyed = items
        .into_iter()
        .map(|x| match x.get("order") {
            Some(Value::String(o)) => Ok((o.clone(), x)),
            _ => Err(Bail),
        })
        .collect::<R<Vec<_>>>()?;
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(keyed.into_iter().map(|(_, x)| x).collect())
}

/// projection.evolve for one event.
fn fold(tx: &mut Tx, ev: &Ev, m: &Meta) -> R<()> {
    let v = &ev.v;
    // the stats' update is checked here and made in place once the event folded whole
    // (commit_stats): a copy of the stats per event was a good part of this module's cost
    tx.stats = match tx.held(STATS)? {
        Some(Value::Object(d)) if !d.is_empty() => {
            let applied = match d.get("applied") {
                Some(Value::Number(n)) => n.as_i64().and_then(|n| n.checked_add(1)).ok_or(Bail)?,
                _ => return Err(Bail),
            };
            let n = match d.get("by_type") {
                Some(Value::Object(by_type)) => {
                    int(by_type, &ev.name)?.checked_add(1).ok_or(Bail)?
                }
                _ => return Err(Bail),
            };
            (applied, n)
        }
        Some(x) if truthy(x) => return Err(Bail),
        _ => (1, 1),
    };
    let family = match v.get("family") {
        None | Some(V::Null) => None,
        Some(V::Str(x)) => Some(x.as_str()),
        _ => return Err(Bail),
    };
    if let Some(family) = family.filter(|x| !x.is_empty()) {
        let mut names = Vec::new();
        match tx.held(FAMILIES)? {
            Some(Value::Object(d)) => match d.get("families") {
                None => {}
                Some(Value::Array(known)) => {
                    for x in known {
                        names.push(x.as_str().ok_or(Bail)?);
                    }
                }
                _ => return Err(Bail),
            },
            Some(x) if truthy(x) => return Err(Bail),
            _ => {}
        };
        if !names.contains(&family) {
            names.push(family);
            names.sort();
            let names: Vec<Value> = names.into_iter().map(Value::from).collect();
            let doc = obj(vec![("families", Value::Array(names))]);
            tx.set(FAMILIES.into(), doc);
        }
    }
    apply(tx, ev, m)?;
    if m.copies.contains(&ev.name) {
        // {"type", "event": val(v), "signed_by"?} written straight from the decoded value in
        // sorted keys (`copy_json`), with no tree built (a third of this mix's events)
        let mut json = Vec::with_capacity(1024);
        json.extend_from_slice(b"{\"event\":");
        copy_json(v, &mut json)?;
        if m.adopted {
            json.extend_from_slice(b",\"signed_by\":");
            canon::string(m.label, &mut json);
        }
        json.extend_from_slice(b",\"type\":");
        canon::string(&ev.name, &mut json);
        json.push(b'}');
        tx.copy = Some((format!("event:{}", ev.eid), json));
    }
    match v.get("envelope").and_then(|e| e.get("causation_id")) {
        Some(V::Str(cause)) if !cause.is_empty() => tx.add(
            format!("caused:{cause}"),
            format!("{}:{}", ev.name, ev.eid),
            ev.at_ms,
        ),
        Some(V::Str(_)) | Some(V::Null) | None => {}
        _ => return Err(Bail),
    }
    Ok(())
}

fn apply(tx: &mut Tx, ev: &Ev, m: &Meta) -> R<()> {
    let (v, eid, at) = (&ev.v, ev.eid.as_str(), ev.at_ms);
    let env = v.get("envelope").ok_or(Bail)?;
    let iso = || canon::iso(ev.occurred).ok_or(Bail).map(Value::String);
    match ev.name.as_str() {
        "ArtifactRecorded" => {
            let id = s(v, "artifact_id")?;
            let kind = s(v, "kind")?;
            let Some(V::Arr(parents)) = v.get("parents") else {
                return Err(Bail);
            };
            let mut entries = Vec::with_capacity(parents.len() + 2);
            for p in parents {
                let V::Str(p) = p else { return Err(Bail) };
                entries.push(format!("children:{p}"));
            }
            entries.push(if kind.is_empty() {
                "artifacts:*".to_owned()
            } else {
                format!("artifacts:{kind}")
            });
            entries.push("artifacts:*".into());
            let key = format!("artifact:{id}");
            let mut old = tx.doc(&key)?;
            let order = order(ev, m);
            if !newest(tx, &mut old, &order, entries, id, at)? {
                tx.set(key, old); // recorded again earlier in the log: only its entries count
                return Ok(());
            }
            let entries_by = old.remove("entries_by").ok_or(Bail)?;
            let doc = obj(vec![
                ("id", f(v, "artifact_id")?),
                ("kind", f(v, "kind")?),
                ("parents", f(v, "parents")?),
                ("code_version", f(v, "code_version")?),
                ("params", json_text(s(v, "params_json")?)?),
                ("digest", f(v, "digest")?),
                ("size", f(v, "size")?),
                ("recorded_at", iso()?),
                ("written_by", order.into()),
                ("entries_by", entries_by),
            ]);
            tx.set_once(key, doc);
        }
        "DatasetIngested" => {
            let (id, family) = (s(v, "dataset_id")?, s(v, "family")?);
            let key = format!("dataset:{id}");
            let mut old = tx.doc(&key)?;
            let order = order(ev, m);
            let entries = vec![format!("datasets:{family}")];
            if newest(tx, &mut old, &order, entries, id, at)? {
                let entries_by = old.remove("entries_by").ok_or(Bail)?;
                let doc = obj(vec![
                    ("id", f(v, "dataset_id")?),
                    ("family", f(v, "family")?),
                    ("source", f(v, "source_name")?),
                    ("period", f(v, "period")?),
                    ("records_in", f(v, "records_in")?),
                    ("accepted", f(v, "accepted")?),
                    ("quarantined", f(v, "quarantined")?),
                    ("quarantine_batch_id", f(v, "quarantine_batch_id")?),
                    ("contract", f(v, "contract_fingerprint")?),
                    ("at", iso()?),
                    ("event_id", eid.into()),
                    ("written_by", order.into()),
                    ("entries_by", entries_by),
                ]);
                tx.set_once(key, doc);
            } else {
                // the same dataset ingested again earlier in the log: its counts still add up
                tx.set(key, old);
            }
            let key = format!("quarantine:{family}");
            let mut q = tx.doc(&key)?;
            for field in ["records_in", "accepted"] {
                let V::Int(n) = v.get(field).ok_or(Bail)? else {
                    return Err(Bail);
                };
                let sum = int(&q, field)?.checked_add(*n).ok_or(Bail)?;
                q.insert(field.into(), sum.into());
            }
            tx.set(key, q);
        }
        "RecordQuarantined" => {
            let key = format!("quarantine:{}", s(v, "family")?);
            let mut q = tx.doc(&key)?;
            let n = int(&q, "quarantined")?.checked_add(1).ok_or(Bail)?;
            q.insert("quarantined".into(), n.into());
            let mut rules = match q.get("by_rule") {
                None => Doc::new(),
                Some(Value::Object(r)) => r.clone(),
                _ => return Err(Bail),
            };
            let rule = s(v, "rule")?;
            let n = int(&rules, rule)?.checked_add(1).ok_or(Bail)?;
            rules.insert(rule.into(), n.into());
            q.insert("by_rule".into(), Value::Object(rules));
            tx.set(key, q);
        }
        "FeaturesBuilt" => {
            let key = format!("featureset:{}", s(v, "feature_set_id")?);
            let mut old = tx.doc(&key)?;
            let order = order(ev, m);
            if !newest(tx, &mut old, &order, Vec::new(), "", at)? {
                tx.set(key, old); // built again earlier in the log (the service says it again)
                return Ok(());
            }
            let entries_by = old.remove("entries_by").ok_or(Bail)?;
            let doc = obj(vec![
                ("id", f(v, "feature_set_id")?),
                ("family", f(v, "family")?),
                ("dataset_ids", f(v, "dataset_ids")?),
                ("stats_id", f(v, "feature_stats_id")?),
                ("transform", f(v, "transform")?),
                ("code_version", f(v, "code_version")?),
                ("rows", f(v, "rows")?),
                ("event_id", eid.into()),
                ("written_by", order.into()),
                ("entries_by", entries_by),
            ]);
            tx.set_once(key, doc);
        }
        "ModelTrained" => {
            let (id, family) = (s(v, "model_id")?, s(v, "family")?);
            let key = format!("model:{id}");
            let mut d = tx.doc(&key)?;
            let order = order(ev, m);
            let entries = vec![format!("models:{family}")];
            if newest(tx, &mut d, &order, entries, id, at)? {
                d.remove("signed_by"); // an older record's (adopted) says nothing of this one
                let mut fields = vec![
                    ("id", f(v, "model_id")?),
                    ("family", f(v, "family")?),
                    ("feature_set_ids", f(v, "feature_set_ids")?),
                    ("trainer", f(v, "trainer")?),
                    ("params", f(v, "params")?),
                    ("code_version", f(v, "code_version")?),
                    ("trained_at", iso()?),
                    ("event_id", eid.into()),
                ];
                fields.extend(times(ev, m)?);
                fields.push(("written_by", order.into()));
                for (k, x) in fields {
                    d.insert(k.into(), x);
                }
            }
            d.entry("id").or_insert_with(|| id.into());
            d.entry("evaluations")
                .or_insert_with(|| Value::Array(vec![]));
            d.entry("decisions").or_insert_with(|| Value::Array(vec![]));
            tx.set(key, d);
        }
        "ModelEvaluated" => {
            let id = s(v, "model_id")?;
            let key = format!("model:{id}");
            let mut d = tx.doc(&key)?;
            let mut evals = list(&d, "evaluations")?;
            let mut e = obj(vec![
                ("eval_report_id", f(v, "eval_report_id")?),
                ("eval_dataset_id", f(v, "eval_dataset_id")?),
                ("metrics", f(v, "metrics")?),
                ("at", iso()?),
                ("event_id", eid.into()),
            ]);
            for (k, x) in times(ev, m)? {
                e.insert(k.into(), x);
            }
            e.insert("order".into(), order(ev, m).into());
            evals.push(Value::Object(e));
            // oldest first in the log's order: answers take the last as the latest metrics
            let evals = by_order(evals)?;
            d.insert("evaluations".into(), Value::Array(evals));
            d.entry("id").or_insert_with(|| id.into());
            tx.set(key, d);
        }
        "ModelPromoted" | "PromotionRejected" | "PromotionPending" | "PromotionReviewed" => {
            decision(tx, ev, m, env)?
        }
        "ModelDeployed" => {
            let mut doc = obj(vec![
                ("event_id", eid.into()),
                ("family", f(v, "family")?),
                ("env", f(v, "env")?),
                ("model_id", f(v, "model_id")?),
                ("manifest_id", f(v, "manifest_id")?),
                ("eval_report_id", f(v, "eval_report_id")?),
                ("promotion_event_id", f(v, "promotion_event_id")?),
                ("previous_model_id", f(v, "previous_model_id")?),
                ("kind", f(v, "kind")?),
                ("reason", f(v, "reason")?),
                ("causation_id", f(env, "causation_id")?),
                ("since", iso()?),
                ("actor", f(env, "actor")?),
            ]);
            let when = times(ev, m)?;
            let recorded = when[0].1.as_i64().ok_or(Bail)?;
            for (k, x) in when {
                doc.insert(k.into(), x);
            }
            tx.set_once(format!("deployment:{eid}"), doc);
            let index = format!("serving:{}:{}", s(v, "family")?, s(v, "env")?);
            tx.add(index, member(eid, recorded, m.position), at);
        }
        "TrustReset" => {
            let mut resets = list(&tx.doc(TRUST_RESETS)?, "resets")?;
            let Some(V::Arr(anchors)) = v.get("anchors") else {
                return Err(Bail);
            };
            let aside = anchors
                .iter()
                .map(|a| {
                    Ok(Value::Object(obj(vec![
                        ("held_by", f(a, "held_by")?),
                        ("origin", f(a, "origin")?),
                        ("size", f(a, "size")?),
                        ("root", f(a, "root")?),
                    ])))
                })
                .collect::<R<Vec<_>>>()?;
            let recorded_at = times(ev, m)?.swap_remove(1).1;
            resets.push(Value::Object(obj(vec![
                ("event_id", eid.into()),
                ("at", iso()?),
                ("by", f(env, "actor")?),
                ("reason", f(v, "reason")?),
                ("checkpoints_set_aside", Value::Array(aside)),
                ("recorded_at", recorded_at),
                ("order", order(ev, m).into()),
            ])));
            // oldest first in the log's order (decision 0035): answers show the last one
            let resets = by_order(resets)?;
            tx.set(
                TRUST_RESETS.into(),
                obj(vec![("resets", Value::Array(resets))]),
            );
        }
        "ServingStatsRecorded" => {
            // projection: json.loads (the standard library's, not orjson's) of the stats and
            // the window's end as fromisoformat(...).timestamp() * 1000: where Python may
            // read either otherwise (or raise), the event is Python's
            let stats = stdtext::json_loads(s(v, "stats_json")?).ok_or(Bail)?;
            let end = stdtext::timestamp_ms(s(v, "window_end")?).ok_or(Bail)?;
            let doc = obj(vec![
                ("event_id", eid.into()),
                ("family", f(v, "family")?),
                ("env", f(v, "env")?),
                ("model_id", f(v, "model_id")?),
                ("window_start", f(v, "window_start")?),
                ("window_end", f(v, "window_end")?),
                ("requests", f(v, "requests")?),
                ("stats", stats),
            ]);
            tx.set_once(format!("servingstats:{eid}"), doc);
            let index = format!("skew:{}:{}", s(v, "family")?, s(v, "env")?);
            tx.add(index, eid.to_owned(), end);
        }
        "DriftDetected" => {
            let Some(V::Arr(features)) = v.get("features") else {
                return Err(Bail);
            };
            let features = features
                .iter()
                .map(|x| {
                    Ok(Value::Object(obj(vec![
                        ("feature", f(x, "feature")?),
                        ("psi", f(x, "psi")?),
                        ("ks_statistic", f(x, "ks_statistic")?),
                        ("ks_pvalue", f(x, "ks_pvalue")?),
                        ("kind", f(x, "kind")?),
                        ("test", f(x, "test")?),
                    ])))
                })
                .collect::<R<Vec<_>>>()?;
            let doc = obj(vec![
                ("event_id", eid.into()),
                ("family", f(v, "family")?),
                ("env", f(v, "env")?),
                ("model_id", f(v, "model_id")?),
                ("stats_event_id", f(v, "stats_event_id")?),
                ("at", iso()?),
                ("psi_threshold", f(v, "psi_threshold")?),
                ("ks_pvalue_threshold", f(v, "ks_pvalue_threshold")?),
                ("features", Value::Array(features)),
            ]);
            tx.set_once(format!("drift:{eid}"), doc);
            let index = format!("drift:{}:{}", s(v, "family")?, s(v, "env")?);
            tx.add(index, eid.to_owned(), at);
        }
        _ => {} // no view: the stats only
    }
    Ok(())
}

/// projection._decision (with queries.decision_doc and projection._pending).
fn decision(tx: &mut Tx, ev: &Ev, m: &Meta, env: &V) -> R<()> {
    let (v, eid, at, name) = (&ev.v, ev.eid.as_str(), ev.at_ms, ev.name.as_str());
    let when = times(ev, m)?;
    let recorded = when[0].1.as_i64().ok_or(Bail)?;
    let mut doc = obj(vec![
        ("family", f(v, "family")?),
        ("model_id", f(v, "model_id")?),
        ("env", f(v, "env")?),
        ("at", canon::iso(ev.occurred).ok_or(Bail)?.into()),
        ("actor", f(env, "actor")?),
        ("event_id", eid.into()),
    ]);
    if name == "PromotionReviewed" {
        let word = if s(v, "verdict")? == "approved" {
            "approved"
        } else {
            "declined"
        };
        doc.insert("decision".into(), word.into());
        doc.insert("pending_event_id".into(), f(v, "pending_event_id")?);
        doc.insert("reason".into(), f(v, "reason")?);
    } else {
        let word = match name {
            "ModelPromoted" => "promoted",
            "PromotionRejected" => "rejected",
            _ => "pending",
        };
        let Some(V::Arr(gates)) = v.get("gates") else {
            return Err(Bail);
        };
        let gates = gates
            .iter()
            .map(|g| {
                Ok(Value::Object(obj(vec![
                    ("name", f(g, "name")?),
                    ("metric", f(g, "metric")?),
                    ("op", f(g, "op")?),
                    ("threshold", f(g, "threshold")?),
                    ("value", f(g, "value")?),
                    ("passed", f(g, "passed")?),
                    ("margin", f(g, "margin")?),
                ])))
            })
            .collect::<R<Vec<_>>>()?;
        for (k, x) in [
            ("decision", word.into()),
            ("eval_report_id", f(v, "eval_report_id")?),
            ("metrics", f(v, "metrics")?),
            ("incumbent_model_id", f(v, "incumbent_model_id")?),
            ("incumbent_metrics", f(v, "incumbent_metrics")?),
            ("gates", Value::Array(gates)),
            ("reason", f(v, "reason")?),
            ("trigger", f(v, "trigger")?),
            ("note", f(v, "note")?),
            ("policy_version", f(v, "policy_version")?),
        ] {
            doc.insert(k.into(), x);
        }
        if name == "ModelPromoted" {
            doc.insert("approved_by".into(), f(v, "approved_by")?);
            doc.insert("pending_event_id".into(), f(v, "pending_event_id")?);
        }
        if name == "PromotionPending" {
            doc.insert("approvals_required".into(), f(v, "approvals_required")?);
            doc.insert("excluded_approvers".into(), f(v, "excluded_approvers")?);
        }
    }
    for (k, x) in when {
        doc.insert(k.into(), x);
    }
    tx.set_once(format!("decision:{eid}"), doc);
    let member = member(eid, recorded, m.position);
    tx.add(format!("registry:{}", s(v, "family")?), member.clone(), at);
    let model_id = s(v, "model_id")?;
    let key = format!("model:{model_id}");
    let mut d = tx.doc(&key)?;
    d.entry("id").or_insert_with(|| model_id.into());
    let mut order = match d.get("decision_order") {
        None => Doc::new(),
        Some(Value::Object(o)) => o.clone(),
        _ => return Err(Bail),
    };
    order.insert(eid.into(), Value::Array(vec![at.into(), member.into()]));
    let mut ranked = order
        .iter()
        .map(|(k, x)| match x.as_array().map(Vec::as_slice) {
            Some([Value::Number(t), Value::String(mb)]) if t.is_f64() => {
                Ok((t.as_f64().ok_or(Bail)?, mb.as_str(), k.as_str()))
            }
            _ => Err(Bail),
        })
        .collect::<R<Vec<_>>>()?;
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    let decisions: Vec<Value> = ranked.iter().map(|(_, _, k)| (*k).into()).collect();
    d.insert("decisions".into(), Value::Array(decisions));
    d.insert("decision_order".into(), Value::Object(order));
    tx.set(key, d);
    pending(tx, ev, m, env)
}

/// projection._pending: the pending's reviews and approvers in the log's order, and the
/// waiting list `open:{family}:{env}` decided by its own events (decision 0035).
fn pending(tx: &mut Tx, ev: &Ev, m: &Meta, env: &V) -> R<()> {
    let (v, name) = (&ev.v, ev.name.as_str());
    let Some(pid) = pending_id(name, v, &ev.eid)? else {
        return Ok(());
    };
    if pid.is_empty() {
        return Err(Bail); // projection reads no documents for it (keys_for): Python's
    }
    let at = order(ev, m);
    let pkey = format!("pending:{pid}");
    let mut p = tx.doc(&pkey)?;
    p.entry("reviews").or_insert_with(|| Value::Array(vec![]));
    p.entry("approvers").or_insert_with(|| Value::Array(vec![]));
    p.entry("concluded").or_insert(Value::Bool(false));
    let mut concludes = name == "ModelPromoted";
    if name == "PromotionReviewed" {
        let (verdict, actor) = (s(v, "verdict")?, s(env, "actor")?);
        let mut reviewed = match p.get("review_order") {
            None => Doc::new(),
            Some(Value::Object(o)) => o.clone(),
            _ => return Err(Bail),
        };
        let review = vec![at.clone().into(), verdict.into(), actor.into()];
        reviewed.insert(ev.eid.clone(), Value::Array(review));
        let mut ranked = reviewed
            .iter()
            .map(|(k, x)| match x.as_array().map(Vec::as_slice) {
                Some([Value::String(o), Value::String(vd), Value::String(a)]) => {
                    Ok((o.as_str(), (k.as_str(), vd.as_str(), a.as_str())))
                }
                _ => Err(Bail),
            })
            .collect::<R<Vec<_>>>()?;
        sort_unique(&mut ranked)?;
        let mut approvers: Vec<&str> = Vec::new();
        for (_, (_, vd, a)) in &ranked {
            if *vd == "approved" && !approvers.contains(a) {
                approvers.push(a);
            }
        }
        let reviews: Vec<Value> = ranked.iter().map(|(_, (k, _, _))| (*k).into()).collect();
        let approvers: Vec<Value> = approvers.into_iter().map(Value::from).collect();
        p.insert("reviews".into(), Value::Array(reviews));
        p.insert("approvers".into(), Value::Array(approvers));
        p.insert("review_order".into(), Value::Object(reviewed));
        if verdict == "rejected" {
            p.insert("concluded".into(), Value::Bool(true));
            concludes = true;
        }
    } else if name == "ModelPromoted" {
        p.insert("concluded".into(), Value::Bool(true));
    }
    tx.set(pkey, p);
    // the list holds only what waits; a concluded promotion's marker beside it (shape 6)
    let (family, env) = (s(v, "family")?, s(v, "env")?);
    let okey = format!("open:{family}:{env}");
    let ckey = format!("closed:{family}:{env}:{pid}");
    let waiting = tx.doc(&okey)?;
    let mut places = match waiting.get("order") {
        None => Doc::new(),
        Some(Value::Object(o)) => o.clone(),
        _ => return Err(Bail),
    };
    // projection: bool(_doc(...)), a document that is not an object is Python's to refuse
    let closed = !tx.doc(&ckey)?.is_empty();
    if concludes {
        places.remove(pid);
        if !closed {
            tx.set(ckey, obj(vec![("closed", Value::Bool(true))]));
        }
    } else if !closed {
        let place = match places.get(pid) {
            None => at,
            Some(Value::String(o)) => o.clone().min(at),
            _ => return Err(Bail),
        };
        places.insert(pid.to_owned(), place.into());
    }
    let mut ranked = places
        .iter()
        .map(|(k, x)| x.as_str().map(|o| (o, k.as_str())).ok_or(Bail))
        .collect::<R<Vec<_>>>()?;
    sort_unique(&mut ranked)?;
    let ids: Vec<Value> = ranked.iter().map(|(_, k)| (*k).into()).collect();
    let doc = obj(vec![
        ("pending", Value::Array(ids)), // oldest first
        ("order", Value::Object(places)),
    ]);
    tx.set(okey, doc);
    Ok(())
}

/// Sorted by the first of each pair (an order's text). Python sorts a dict's keys, stable
/// over its insertion order, which the stored JSON does not keep: entries of one place (never
/// written by the fold, each place names its own event) are left to Python.
fn sort_unique<T>(ranked: &mut [(&str, T)]) -> R<()> {
    ranked.sort_by(|a, b| a.0.cmp(b.0));
    if ranked.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(Bail);
    }
    Ok(())
}
