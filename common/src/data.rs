use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Error, Result};

/// MessagePack bytes of a job's input or output. Structs are encoded as maps (field names
/// included), so a field can be added with `#[serde(default)]` without breaking jobs that
/// are already queued, and producers in other languages can write them.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Data(Vec<u8>);

impl Data {
    /// Encodes `value`.
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Self> {
        rmp_serde::to_vec_named(value)
            .map(Data)
            .map_err(|source| Error::Encode {
                what: "data",
                source,
            })
    }

    /// Decodes into `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        rmp_serde::from_slice(&self.0).map_err(|source| Error::Decode {
            what: "data",
            source,
        })
    }

    /// Wraps bytes that already are MessagePack.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Data(bytes)
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Encoded size in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no bytes at all (no value was stored).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Data({} bytes)", self.0.len())
    }
}
