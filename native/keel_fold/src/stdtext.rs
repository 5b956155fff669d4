//! What two of Python's standard-library readers make of a text, where the fold needs them
//! byte for byte (projection.py's ServingStatsRecorded): `json.loads` and
//! `datetime.fromisoformat(...).timestamp() * 1000`. Each answers None wherever it is not sure
//! to agree with Python: the event is then folded by Python, which decides (or raises).

use serde_json::Value;

/// `json.loads(text)` where it gives what serde_json (float_roundtrip) gives. The standard
/// library reads an integer of any size as an int (which the views then refuse past 64 bits)
/// where serde_json makes a float of it, and "-0" as the integer 0 where serde_json makes
/// -0.0 of it; NaN and Infinity serde_json refuses. Those are left to Python.
pub fn json_loads(text: &str) -> Option<Value> {
    if !integers_fit(text.as_bytes()) {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// Every integer literal outside strings within i64 or u64 (serde_json keeps those exact),
/// and none is "-0".
fn integers_fit(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                while i < b.len() && matches!(b[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    i += 1;
                }
                let token = &b[start..i];
                if !token.iter().any(|c| matches!(c, b'.' | b'e' | b'E')) {
                    let Ok(text) = std::str::from_utf8(token) else {
                        return false;
                    };
                    let exact = text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok();
                    if !exact || text == "-0" {
                        return false;
                    }
                }
            }
            _ => i += 1,
        }
    }
    true
}

/// `datetime.fromisoformat(text).timestamp() * 1000` for `YYYY-MM-DDTHH:MM:SS[.f{1,6}]`
/// with `Z` or `±HH:MM`; None for any other form (a naive time is read in the machine's
/// local zone by Python) and where the microseconds pass 2**53 (Python divides them exactly).
pub fn timestamp_ms(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let d = b.get(r)?;
        if d.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(d).ok()?.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if y < 1 || !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return None;
    }
    if h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = i - start;
        if !(1..=6).contains(&digits) {
            return None;
        }
        micros = num(start..i)? * 10_i64.pow((6 - digits) as u32);
    }
    let offset = match &b[i..] {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let off = (oh * 60 + om) * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset;
    let total = secs.checked_mul(1_000_000)?.checked_add(micros)?;
    if total.abs() >= 1 << 53 {
        return None;
    }
    // timedelta.total_seconds(): microseconds / 10**6, correctly rounded; then * 1000
    Some(total as f64 / 1e6 * 1000.0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
