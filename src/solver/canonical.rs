//! The canonical encoding that definition digests and cache keys hash.
//!
//! A digest is only useful as a cache key if the same value always encodes
//! to the same bytes. serde_json keeps struct fields in declaration order and,
//! should any crate in the build turn on its `preserve_order` feature, map
//! keys in insertion order too; so the value is first turned into a
//! `serde_json::Value` and written here with object keys sorted by their
//! UTF-8 bytes, no whitespace, and serde_json's own string escaping.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::image::Digest;

/// Encodes `value` canonically: JSON with keys sorted, no insignificant
/// whitespace.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let value = serde_json::to_value(value)?;
    let mut out = Vec::with_capacity(256);
    write_value(&value, &mut out)?;
    Ok(out)
}

/// The sha256 digest of `value`'s canonical encoding.
pub fn digest<T: Serialize + ?Sized>(value: &T) -> Result<Digest, serde_json::Error> {
    let bytes = encode(value)?;
    Ok(Digest::from_sha256_bytes(&Sha256::digest(&bytes)))
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key)?;
                out.push(b':');
                write_value(item, out)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(value: Value, expected: &str) {
        let bytes = encode(&value).unwrap();
        assert_eq!(String::from_utf8(bytes).unwrap(), expected);
    }

    #[test]
    fn objects_are_written_with_sorted_keys_at_every_level() {
        check(
            json!({"b": 1, "a": {"z": [true, null], "y": "x\"y"}}),
            r#"{"a":{"y":"x\"y","z":[true,null]},"b":1}"#,
        );
    }

    #[test]
    fn insertion_order_does_not_change_the_digest() {
        let mut one = serde_json::Map::new();
        one.insert("x".into(), json!(1));
        one.insert("a".into(), json!(2));
        let mut two = serde_json::Map::new();
        two.insert("a".into(), json!(2));
        two.insert("x".into(), json!(1));
        assert_eq!(
            digest(&Value::Object(one)).unwrap(),
            digest(&Value::Object(two)).unwrap()
        );
    }
}
