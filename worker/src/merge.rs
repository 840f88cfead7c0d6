//! Input merging for jobs in a chain (WorkManager's `InputMerger`): a job's input is built
//! from its own input and its parents' outputs, all MessagePack maps.

use rmpv::Value;

/// Merges `inputs` (the job's own input first, then the parents' outputs in parent
/// order; empty ones skipped) into one MessagePack map. With `array_creating` (WorkManager's
/// `ArrayCreatingInputMerger`), every key's value is an array: of the values of every
/// input that has the key, in order, arrays concatenated (a key found once included);
/// otherwise the last value wins.
pub(crate) fn merge(inputs: &[&[u8]], array_creating: bool) -> Result<Vec<u8>, String> {
    let mut merged: Vec<(Value, Value)> = Vec::new();
    for (n, bytes) in inputs.iter().enumerate() {
        if bytes.is_empty() {
            continue;
        }
        let mut rd: &[u8] = bytes;
        let value = rmpv::decode::read_value(&mut rd)
            .map_err(|e| format!("input {n} is not MessagePack: {e}"))?;
        let map = match value {
            Value::Map(m) => m,
            Value::Nil => continue,
            Value::Array(a) if a.is_empty() => continue,
            other => {
                return Err(format!(
                    "input {n} is not a map (a struct) but {}, so it cannot be merged",
                    kind(&other)
                ))
            }
        };
        for (k, v) in map {
            match merged.iter().position(|(mk, _)| *mk == k) {
                None if array_creating => match v {
                    Value::Array(_) => merged.push((k, v)),
                    single => merged.push((k, Value::Array(vec![single]))),
                },
                None => merged.push((k, v)),
                Some(i) if array_creating => {
                    let mut items = match std::mem::replace(&mut merged[i].1, Value::Nil) {
                        Value::Array(a) => a,
                        single => vec![single],
                    };
                    match v {
                        Value::Array(a) => items.extend(a),
                        single => items.push(single),
                    }
                    merged[i].1 = Value::Array(items);
                }
                Some(i) => merged[i].1 = v,
            }
        }
    }
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &Value::Map(merged))
        .map_err(|e| format!("could not encode the merged input: {e}"))?;
    Ok(out)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "a boolean",
        Value::Integer(_) | Value::F32(_) | Value::F64(_) => "a number",
        Value::String(_) => "a string",
        Value::Binary(_) => "bytes",
        Value::Array(_) => "an array",
        Value::Map(_) => "a map",
        Value::Ext(..) => "an extension value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
    struct In {
        #[serde(default)]
        a: Vec<u32>,
        #[serde(default)]
        b: Vec<String>,
    }

    fn enc<T: Serialize>(v: &T) -> Vec<u8> {
        rmp_serde::to_vec_named(v).unwrap()
    }

    #[derive(Serialize)]
    struct A {
        a: u32,
    }
    #[derive(Serialize)]
    struct B {
        b: &'static str,
    }

    #[test]
    fn overwriting_takes_every_key_and_the_last_value() {
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct Out {
            a: u32,
            b: String,
        }
        let own = enc(&Out {
            a: 1,
            b: "own".into(),
        });
        let p1 = enc(&A { a: 2 });
        let p2 = enc(&B { b: "second" });
        let merged = merge(&[&own, &p1, &p2], false).unwrap();
        let out: Out = rmp_serde::from_slice(&merged).unwrap();
        assert_eq!(
            out,
            Out {
                a: 2,
                b: "second".into()
            }
        );
    }

    #[test]
    fn array_creating_collects_values_of_a_shared_key_and_arrays_a_single_one() {
        let own: Vec<u8> = enc(&B { b: "x" });
        let p1 = enc(&A { a: 1 });
        let p2 = enc(&A { a: 2 });
        let merged = merge(&[&own, &p1, &p2], true).unwrap();
        let out: In = rmp_serde::from_slice(&merged).unwrap();
        assert_eq!(
            out,
            In {
                a: vec![1, 2],
                b: vec!["x".into()]
            }
        );
    }

    #[test]
    fn a_non_map_input_is_a_clear_error() {
        let err = merge(&[&enc(&5u32)], false).unwrap_err();
        assert!(err.contains("not a map"), "{err}");
    }
}
