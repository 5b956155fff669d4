//! keel_fold: the native fold core of Keel's audit projector (decision 0027).
//!
//! The pure-Python fold (keel.audit.projector, keel.codec, keel.signing, keel.audit.trees) is
//! the specification; this module does the same per-record work in batches and must agree
//! with it byte for byte (tests/unit/test_native_fold.py):
//! - `Decoder`: Avro single-object decode, driven by the schemas Python loaded from schemas/;
//! - `Trust`: Ed25519 chunk signature checks with the Python verdict texts;
//! - `leaves` / `extend`: leaf hashes (formats 1 and 2) and the trees' right edges.
//! - `Fold`: projection.evolve over the decoded values, the batch's documents held here and
//!   written as canonical JSON (tests/unit/test_native_evolve.py).

mod avro;
mod canon;
mod evolve;
mod merkle;
mod pool;
mod stdtext;
mod trust;

// the crate's small allocations kept out of glibc's bins (pool.rs says why)
#[global_allocator]
static POOL: pool::Pool = pool::Pool::new();

use std::collections::HashMap;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use merkle::Hash;

/// One fingerprint this decoder reads: the type's name and its compiled schema.
struct Plan {
    name: Py<PyString>,
    text: String,
    node: avro::Node,
}

#[pyclass(module = "keel_fold")]
struct Decoder {
    plans: HashMap<[u8; 8], Plan>,
    ts_millis: Py<PyAny>,
    new: Py<PyAny>, // object.__new__: generated classes are built without their __init__
}

#[pymethods]
impl Decoder {
    /// schemas: (8-byte fingerprint, type name, expanded schema JSON) of writer schemas read
    /// as written (each the latest of its type); ts_millis: fastavro's timestamp-millis reader.
    /// Schemas with constructs this decoder does not cover are left out (see `covered`).
    /// classes: record name -> generated class (keel.events.generated), for `decode_events`.
    #[new]
    fn new(
        py: Python<'_>,
        schemas: Vec<(Vec<u8>, String, String)>,
        ts_millis: Py<PyAny>,
        classes: Bound<'_, PyDict>,
    ) -> PyResult<Self> {
        let mut plans = HashMap::new();
        for (fp, name, json) in schemas {
            let Ok(fp) = <[u8; 8]>::try_from(fp.as_slice()) else {
                continue;
            };
            let value: serde_json::Value = serde_json::from_str(&json).map_err(|e| {
                pyo3::exceptions::PyValueError::new_err(format!("schema {name}: {e}"))
            })?;
            let mut names = HashMap::new();
            if let Ok(node) = avro::compile(py, &value, &mut names, "", &classes) {
                plans.insert(
                    fp,
                    Plan {
                        name: PyString::intern(py, &name).unbind(),
                        text: name.clone(),
                        node,
                    },
                );
            }
        }
        let new = py
            .import("builtins")?
            .getattr("object")?
            .getattr("__new__")?
            .unbind();
        Ok(Decoder {
            plans,
            ts_millis,
            new,
        })
    }

    /// The fingerprints this decoder reads natively.
    fn covered<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        self.plans.keys().map(|fp| PyBytes::new(py, fp)).collect()
    }

    /// For each value: (type name, record dict) exactly as fastavro reads it, or None where
    /// this decoder steps aside (unknown fingerprint, not single-object, anything unusual):
    /// the caller decodes those with the Python codec, which names the problem.
    fn decode_many<'py>(
        &self,
        py: Python<'py>,
        values: &Bound<'py, PyList>,
    ) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        let ts = self.ts_millis.bind(py);
        for v in values.iter() {
            let b = v.cast::<PyBytes>()?;
            out.append(self.decode_one(py, b.as_bytes(), ts, None))?;
        }
        Ok(out)
    }

    /// For each value: the event as its generated class's `from_avro` builds it from
    /// fastavro's record, or None where this decoder steps aside (as in `decode_many`).
    fn decode_events<'py>(
        &self,
        py: Python<'py>,
        values: &Bound<'py, PyList>,
    ) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        let (ts, new) = (self.ts_millis.bind(py), self.new.bind(py));
        for v in values.iter() {
            let b = v.cast::<PyBytes>()?;
            let got = self.decode_one(py, b.as_bytes(), ts, Some(new));
            out.append(if got.is_none() { got } else { got.get_item(1)? })?;
        }
        Ok(out)
    }
}

impl Decoder {
    /// (type name, the record as Rust values) where this decoder reads `data` (as strict as
    /// `decode_one`: None where fastavro decides).
    fn value_of(&self, data: &[u8]) -> Option<(String, avro::V)> {
        if data.len() < 10 || data[..2] != [0xc3, 0x01] {
            return None;
        }
        let fp: [u8; 8] = data[2..10].try_into().ok()?;
        let plan = self.plans.get(&fp)?;
        let mut r = avro::ValueReader { buf: data, pos: 10 };
        let v = r.read(&plan.node)?;
        (r.pos == data.len()).then(|| (plan.text.clone(), v))
    }

    fn decode_one<'py>(
        &self,
        py: Python<'py>,
        data: &[u8],
        ts: &Bound<'py, PyAny>,
        objects: Option<&Bound<'py, PyAny>>,
    ) -> Bound<'py, PyAny> {
        let none = || py.None().into_bound(py);
        if data.len() < 10 || data[..2] != [0xc3, 0x01] {
            return none();
        }
        let fp: [u8; 8] = data[2..10].try_into().unwrap();
        let Some(plan) = self.plans.get(&fp) else {
            return none();
        };
        let mut r = avro::Reader {
            py,
            buf: data,
            pos: 10,
            ts_millis: ts,
            objects,
        };
        match r.read(&plan.node) {
            Some(record)
                if r.pos == data.len()
                    && (objects.is_some() || record.is_instance_of::<PyDict>()) =>
            {
                PyTuple::new(py, [plan.name.bind(py).clone().into_any(), record])
                    .map(|t| t.into_any())
                    .unwrap_or_else(|_| none())
            }
            _ => none(),
        }
    }
}

// (topic, partition, offset, recorded ms, writer ms, key, value, sig), borrowed from Python:
// extracting bytes as Vec<u8> would walk them as a sequence of ints
type Rec<'py> = (
    Bound<'py, PyString>,
    i64,
    i64,
    i64,
    i64,
    Bound<'py, PyString>,
    Bound<'py, PyBytes>,
    Option<Bound<'py, PyBytes>>,
);

/// A record's fields as the leaf hashes read them, borrowed from its Python objects (which
/// are immutable and kept alive by the caller), so the hashing can run without the GIL.
struct Fields<'a> {
    topic: &'a str,
    partition: i64,
    offset: i64,
    recorded_ms: i64,
    timestamp_ms: i64,
    key: &'a str,
    value: &'a [u8],
    sig: Option<&'a [u8]>,
}

fn fields_of<'a>(rec: &'a Rec<'_>) -> PyResult<Fields<'a>> {
    let (topic, partition, offset, recorded_ms, timestamp_ms, key, value, sig) = rec;
    Ok(Fields {
        topic: topic.to_str()?,
        partition: *partition,
        offset: *offset,
        recorded_ms: *recorded_ms,
        timestamp_ms: *timestamp_ms,
        key: key.to_str()?,
        value: value.as_bytes(),
        sig: sig.as_ref().map(|s| s.as_bytes()),
    })
}

impl Fields<'_> {
    fn leaf(&self, v2: bool) -> Hash {
        leaf_data_hash(
            self.topic,
            self.partition,
            self.offset,
            self.recorded_ms,
            self.timestamp_ms,
            self.key,
            self.value,
            self.sig,
            v2,
        )
    }
}

/// A LogRecord's fields, read by attribute (no tuple built per record on the Python side).
fn rec_of<'py>(r: &Bound<'py, PyAny>) -> PyResult<Rec<'py>> {
    let py = r.py();
    let get = |name: &Bound<'py, PyString>| r.getattr(name);
    let sig = get(intern!(py, "sig"))?;
    Ok((
        get(intern!(py, "topic"))?.cast_into::<PyString>()?,
        get(intern!(py, "partition"))?.extract()?,
        get(intern!(py, "offset"))?.extract()?,
        get(intern!(py, "recorded_ms"))?.extract()?,
        get(intern!(py, "timestamp_ms"))?.extract()?,
        get(intern!(py, "key"))?.cast_into::<PyString>()?,
        get(intern!(py, "value"))?.cast_into::<PyBytes>()?,
        if sig.is_none() {
            None
        } else {
            Some(sig.cast_into::<PyBytes>()?)
        },
    ))
}

#[allow(clippy::too_many_arguments)]
fn leaf_data_hash(
    topic: &str,
    partition: i64,
    offset: i64,
    recorded_ms: i64,
    timestamp_ms: i64,
    key: &str,
    value: &[u8],
    sig: Option<&[u8]>,
    v2: bool,
) -> Hash {
    if !v2 {
        let head = format!("{topic}/{partition}/{offset}\n");
        return merkle::leaf_hash(&[head.as_bytes(), value]);
    }
    let sig = sig.unwrap_or_default();
    let head = format!(
        "keel-leaf/2\n{topic}/{partition}/{offset}\n{recorded_ms} {timestamp_ms}\n{} {} {}\n",
        key.len(),
        value.len(),
        sig.len()
    );
    merkle::leaf_hash(&[head.as_bytes(), key.as_bytes(), value, sig])
}

/// Leaf hashes of records (topic, partition, offset, recorded ms, writer ms, key, value, sig):
/// format 2 where `v2[i]`, else format 1 (keel.audit.trees.leaf / leaf_v1). The hashing runs
/// with the GIL released (another Python thread runs meanwhile).
#[pyfunction]
fn leaves<'py>(
    py: Python<'py>,
    records: Vec<Rec<'py>>,
    v2: Vec<bool>,
) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    let fields = records
        .iter()
        .map(fields_of)
        .collect::<PyResult<Vec<_>>>()?;
    let hashes: Vec<Hash> = py.detach(|| fields.iter().zip(v2).map(|(f, v2)| f.leaf(v2)).collect());
    Ok(hashes.iter().map(|h| PyBytes::new(py, h)).collect())
}

/// One tree's right edge (size, hashes, leaf2_from) extended by `records` (LogRecords) of
/// that tree, in order; `watch`: sizes whose root the caller needs. Returns (size, hashes, {size: root}).
/// The records' fields are read with the GIL, the hashing runs without it.
#[pyfunction]
fn extend<'py>(
    py: Python<'py>,
    size: u64,
    hashes: Vec<Bound<'py, PyBytes>>,
    leaf2_from: u64,
    records: Vec<Bound<'py, PyAny>>,
    watch: Vec<u64>,
) -> PyResult<(
    u64,
    Vec<Bound<'py, PyBytes>>,
    HashMap<u64, Bound<'py, PyBytes>>,
)> {
    let mut size = size;
    let mut edge: Vec<Hash> = hashes
        .iter()
        .map(|h| <Hash>::try_from(h.as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(|_| pyo3::exceptions::PyValueError::new_err("a tree hash is not 32 bytes"))?;
    let recs = records.iter().map(rec_of).collect::<PyResult<Vec<_>>>()?;
    let fields = recs.iter().map(fields_of).collect::<PyResult<Vec<_>>>()?;
    let roots: Vec<(u64, Hash)> = py.detach(|| {
        let mut roots = Vec::new();
        for f in &fields {
            let leaf = f.leaf(size >= leaf2_from);
            merkle::append(&mut size, &mut edge, leaf);
            if watch.contains(&size) {
                roots.push((size, merkle::root(&edge)));
            }
        }
        roots
    });
    let roots = roots
        .into_iter()
        .map(|(n, r)| (n, PyBytes::new(py, &r)))
        .collect();
    let edge = edge.iter().map(|h| PyBytes::new(py, h)).collect();
    Ok((size, edge, roots))
}

#[pymodule]
fn keel_fold(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Decoder>()?;
    m.add_class::<trust::Trust>()?;
    m.add_function(wrap_pyfunction!(leaves, m)?)?;
    m.add_function(wrap_pyfunction!(extend, m)?)?;
    m.add_class::<evolve::Fold>()?;
    m.add_function(wrap_pyfunction!(evolve::canonical_float, m)?)?;
    m.add_function(wrap_pyfunction!(evolve::canonical_json, m)?)?;
    // which build this is, for `keel audit project`'s "fold: native" line and the bench
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
