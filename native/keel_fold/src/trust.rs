//! Chunk signature checks, as `keel.signing.Trust.check_many` makes them: same grouping, same
//! order of checks, same verdict texts (the Python class is the specification; the
//! differential test compares the two verdict for verdict).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::merkle::{leaf_hash, root_from_inclusion, tree_paths, Hash};

const MAGIC: &[u8] = b"KS1";
const CONTEXT: &[u8] = b"keel-signed-events/v1\n";

pub type Verdict = (Option<String>, Option<String>);
type Verified = HashMap<Vec<u8>, (String, String, u64, Hash)>;
// A verdict as worked out without the GIL: its problem's text is made with it (`said`), as
// some quote a name as Python's repr does.
type Found = (Option<String>, Option<Problem>);

enum Problem {
    Text(String),
    BelongsTo(String, String), // key ID, the identity keys.toml gives it
    Revoked(String, String),   // key ID, identity
    MayNot(String, String),    // identity, event type
}
// (value, signature record, event type): what `Trust.check_many` takes
// (borrowed from the Python bytes: no copies)
type Item<'a> = (&'a [u8], Option<&'a [u8]>, Option<String>);

struct Key {
    identity: String,
    public: Option<VerifyingKey>,
    revoked: bool,
}

struct Sig<'a> {
    identity: String,
    key_id: String,
    size: u64,
    index: u64,
    path: Vec<&'a [u8]>,
    signature: &'a [u8],
}

fn decode(blob: &[u8]) -> Result<Sig<'_>, &'static str> {
    if blob.get(..3) != Some(MAGIC) {
        return Err("not a Keel signature record");
    }
    let pos = 4 + *blob.get(3).ok_or("truncated")? as usize;
    let h = blob.get(pos + 8..pos + 13).ok_or("truncated")?;
    let size = u16::from_be_bytes([h[0], h[1]]) as u64;
    let index = u16::from_be_bytes([h[2], h[3]]) as u64;
    let depth = h[4] as usize;
    let identity = std::str::from_utf8(&blob[4..pos])
        .map_err(|_| "truncated")?
        .to_string();
    let start = pos + 13;
    if blob.len() != start + 32 * depth + 64 {
        return Err("truncated");
    }
    let path = (0..depth)
        .map(|i| &blob[start + 32 * i..start + 32 * (i + 1)])
        .collect();
    let key_id = blob[pos..pos + 8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Sig {
        identity,
        key_id,
        size,
        index,
        path,
        signature: &blob[blob.len() - 64..],
    })
}

fn head(blob: &[u8]) -> &[u8] {
    let n = (4 + blob[3] as usize + 10).min(blob.len());
    &blob[..n]
}

#[pyclass(module = "keel_fold")]
pub struct Trust {
    keys: HashMap<String, Key>,
    roles: HashMap<String, HashSet<String>>,
    // signature -> what it was verified to sign: (identity, key ID, size, root); behind a
    // lock as check_many runs without the GIL (two threads may check with one Trust)
    verified: Mutex<Verified>,
}

#[pymethods]
impl Trust {
    /// keys: (key ID, identity, raw public key, status); roles: identity -> event types.
    #[new]
    fn new(
        keys: Vec<(String, String, Vec<u8>, String)>,
        roles: HashMap<String, Vec<String>>,
    ) -> Self {
        let keys = keys
            .into_iter()
            .map(|(id, identity, public, status)| {
                let public = <[u8; 32]>::try_from(public.as_slice())
                    .ok()
                    .and_then(|b| VerifyingKey::from_bytes(&b).ok());
                (
                    id,
                    Key {
                        identity,
                        public,
                        revoked: status == "revoked",
                    },
                )
            })
            .collect();
        let roles = roles
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().collect()))
            .collect();
        Trust {
            keys,
            roles,
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// `Trust.check_many` of (value, signature record, event type) triples. The checks (leaf
    /// hashes, inclusion paths, Ed25519) run with the GIL released; the verdicts' texts are
    /// written with it.
    fn check_many(
        &self,
        py: Python<'_>,
        items: Vec<(
            Bound<'_, PyBytes>,
            Option<Bound<'_, PyBytes>>,
            Option<String>,
        )>,
    ) -> Vec<Verdict> {
        let items: Vec<Item<'_>> = items
            .iter()
            .map(|(v, s, t)| (v.as_bytes(), s.as_ref().map(|s| s.as_bytes()), t.clone()))
            .collect();
        let found = py.detach(|| self.check_all(&items));
        found
            .into_iter()
            .map(|(who, problem)| (who, problem.map(|p| said(py, p))))
            .collect()
    }
}

impl Trust {
    fn check_all(&self, items: &[Item<'_>]) -> Vec<Found> {
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut by_sig: HashMap<&[u8], usize> = HashMap::new();
        for (i, (_, sig, _)) in items.iter().enumerate() {
            if let Some(sig) = sig.filter(|s| s.len() > 64) {
                let g = *by_sig.entry(&sig[sig.len() - 64..]).or_insert_with(|| {
                    groups.push(Vec::new());
                    groups.len() - 1
                });
                groups[g].push(i);
            }
        }
        let mut out: Vec<Option<Found>> = (0..items.len()).map(|_| None).collect();
        for members in &groups {
            if let Some(identity) = self.whole_chunk(items, members) {
                for &i in members {
                    out[i] = Some(self.role(&identity, items[i].2.as_deref()));
                }
            }
        }
        out.into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Some(v) => v,
                None => self.check(items[i].0, items[i].1, items[i].2.as_deref()),
            })
            .collect()
    }

    fn check(&self, value: &[u8], sig: Option<&[u8]>, event_type: Option<&str>) -> Found {
        let text = |t: &str| Some(Problem::Text(t.into()));
        let Some(sig) = sig.filter(|s| !s.is_empty()) else {
            return (None, text("unsigned"));
        };
        let s = match decode(sig) {
            Ok(s) => s,
            Err(e) => return (None, text(&format!("malformed signature ({e})"))),
        };
        if let Err(v) = self.key_of(&s) {
            return v;
        }
        let Some(chunk_root) = root_from_inclusion(s.index, s.size, leaf_hash(&[value]), &s.path)
        else {
            let problem = "bad signature (inclusion path does not fit the chunk)";
            return (Some(s.identity), text(problem));
        };
        if !self.signs(&s, &chunk_root) {
            let problem = "bad signature (the event or its signature was altered)";
            return (Some(s.identity), text(problem));
        }
        self.role(&s.identity, event_type)
    }

    fn whole_chunk(&self, items: &[Item<'_>], members: &[usize]) -> Option<String> {
        let first = items[members[0]].1.unwrap_or_default();
        let s = decode(first).ok()?;
        if members.len() as u64 != s.size {
            return None;
        }
        let head = head(first);
        let n = head.len();
        let mut by_index: Vec<Option<(&[u8], &[u8])>> = vec![None; s.size as usize];
        for &i in members {
            let (value, sig) = (items[i].0, items[i].1.unwrap_or_default());
            let raw = sig.get(n..(n + 2).min(sig.len())).unwrap_or_default();
            let index = raw.iter().fold(0usize, |a, b| (a << 8) | *b as usize);
            if !sig.starts_with(head) || index >= s.size as usize || by_index[index].is_some() {
                return None;
            }
            by_index[index] = Some((value, sig));
        }
        let ordered: Vec<(&[u8], &[u8])> = by_index.into_iter().map(Option::unwrap).collect();
        let (chunk_root, paths) =
            tree_paths(ordered.iter().map(|(v, _)| leaf_hash(&[v])).collect());
        for (index, ((_, sig), path)) in ordered.iter().zip(&paths).enumerate() {
            let mut want = head.to_vec();
            want.extend_from_slice(&(index as u16).to_be_bytes());
            want.push(path.len() as u8);
            for p in path {
                want.extend_from_slice(p);
            }
            want.extend_from_slice(s.signature);
            if *sig != want.as_slice() {
                return None;
            }
        }
        let key_ok = self
            .keys
            .get(&s.key_id)
            .is_some_and(|k| k.identity == s.identity && !k.revoked);
        (key_ok && self.signs(&s, &chunk_root)).then(|| s.identity.clone())
    }

    fn key_of(&self, s: &Sig<'_>) -> Result<(), Found> {
        let who = Some(s.identity.clone());
        let Some(key) = self.keys.get(&s.key_id) else {
            let problem = format!(
                "signed with key {}, which keys.toml does not list",
                s.key_id
            );
            return Err((who, Some(Problem::Text(problem))));
        };
        if key.identity != s.identity {
            let problem = Problem::BelongsTo(s.key_id.clone(), key.identity.clone());
            return Err((who, Some(problem)));
        }
        if key.revoked {
            let problem = Problem::Revoked(s.key_id.clone(), s.identity.clone());
            return Err((who, Some(problem)));
        }
        Ok(())
    }

    fn signs(&self, s: &Sig<'_>, chunk_root: &Hash) -> bool {
        let signed = (s.identity.clone(), s.key_id.clone(), s.size, *chunk_root);
        if let Some(known) = self.known().get(s.signature) {
            return *known == signed;
        }
        let Some(public) = self.keys.get(&s.key_id).and_then(|k| k.public) else {
            return false;
        };
        let mut message = CONTEXT.to_vec();
        message.extend_from_slice(s.identity.as_bytes());
        message.push(b'\n');
        message.extend_from_slice(s.key_id.as_bytes());
        message.push(b'\n');
        message.extend_from_slice(format!("{}\n", s.size).as_bytes());
        message.extend_from_slice(chunk_root);
        let Ok(signature) = Signature::from_slice(s.signature) else {
            return false;
        };
        // verify (not verify_strict): the cofactorless equation OpenSSL's Ed25519 checks
        if public.verify(&message, &signature).is_err() {
            return false;
        }
        self.known().insert(s.signature.to_vec(), signed);
        true
    }

    /// The verified signatures (a poisoned lock still holds only verified entries).
    fn known(&self) -> std::sync::MutexGuard<'_, Verified> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn role(&self, identity: &str, event_type: Option<&str>) -> Found {
        let allowed = self.roles.get(identity);
        let problem = event_type.and_then(|t| {
            let may = allowed.is_some_and(|a| a.contains(t) || a.contains("*"));
            (!may).then(|| Problem::MayNot(identity.to_string(), t.to_string()))
        });
        (Some(identity.to_string()), problem)
    }
}

/// A problem's text, names quoted as the Python fold quotes them.
fn said(py: Python<'_>, problem: Problem) -> String {
    match problem {
        Problem::Text(t) => t,
        Problem::BelongsTo(key, owner) => format!("key {key} belongs to {}", repr(py, &owner)),
        Problem::Revoked(key, who) => format!("key {key} of {} is revoked", repr(py, &who)),
        Problem::MayNot(who, t) => format!("{} may not write {t}", repr(py, &who)),
    }
}

/// Python's repr of a string: the verdict texts quote names as the Python fold does.
fn repr(py: Python<'_>, s: &str) -> String {
    PyString::new(py, s)
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| format!("'{s}'"))
}
