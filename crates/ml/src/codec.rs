//! Canonical bytes of a [`TensorSet`]: safetensors, all tensors F32 little-endian, sorted by
//! name, no metadata map. The same content always gives the same bytes, so
//! [`content_hash`] (keccak256 of those bytes) identifies a model or delta on chain.

use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use thiserror::Error;

use crate::merkle::{Hash32, keccak256};
use crate::tensors::{NamedTensor, TensorError, TensorSet};

/// Errors on encoding or decoding safetensors.
#[derive(Debug, Error)]
pub enum CodecError {
    /// The safetensors library rejected the bytes or views.
    #[error("safetensors: {0}")]
    SafeTensors(#[from] safetensors::SafeTensorError),
    /// A tensor is not F32.
    #[error("tensor `{name}` has dtype {dtype:?}, only F32 is accepted")]
    Dtype {
        /// Tensor name.
        name: String,
        /// Its dtype.
        dtype: Dtype,
    },
    /// The decoded tensors do not form a valid set.
    #[error(transparent)]
    Tensor(#[from] TensorError),
}

/// Encodes `set` as canonical safetensors bytes.
pub fn to_safetensors(set: &TensorSet) -> Result<Vec<u8>, CodecError> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = set
        .tensors()
        .iter()
        .map(|t| {
            let b: Vec<u8> = t.data.iter().flat_map(|x| x.to_le_bytes()).collect();
            (t.name.clone(), t.shape.clone(), b)
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, shape, b)| {
            Ok((
                name.as_str(),
                TensorView::new(Dtype::F32, shape.clone(), b)?,
            ))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    Ok(safetensors::serialize(views, None)?)
}

/// Decodes safetensors bytes (F32 tensors only).
pub fn from_safetensors(bytes: &[u8]) -> Result<TensorSet, CodecError> {
    let st = SafeTensors::deserialize(bytes)?;
    let mut tensors = Vec::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(CodecError::Dtype {
                name,
                dtype: view.dtype(),
            });
        }
        let data = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        tensors.push(NamedTensor::new(name, view.shape().to_vec(), data));
    }
    Ok(TensorSet::new(tensors)?)
}

/// keccak256 of the canonical safetensors bytes.
pub fn content_hash(set: &TensorSet) -> Result<Hash32, CodecError> {
    Ok(keccak256(&to_safetensors(set)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<NamedTensor> {
        vec![
            NamedTensor::new("z.bias", vec![2], vec![0.5, -0.0]),
            NamedTensor::new(
                "a.weight",
                vec![2, 3],
                vec![1.0, -2.0, 3.5, f32::MIN_POSITIVE, 1e-7, 7.0],
            ),
        ]
    }

    #[test]
    fn round_trip_is_exact() {
        let set = TensorSet::new(sample()).unwrap();
        let bytes = to_safetensors(&set).unwrap();
        let back = from_safetensors(&bytes).unwrap();
        assert_eq!(back, set);
        // -0.0 keeps its sign bit through the round trip.
        assert_eq!(
            back.get("z.bias").unwrap().data[1].to_bits(),
            (-0.0f32).to_bits()
        );
        assert_eq!(to_safetensors(&back).unwrap(), bytes);
    }

    #[test]
    fn bytes_do_not_depend_on_insertion_order_and_hash_tracks_content() {
        let mut rev = sample();
        rev.reverse();
        let a = TensorSet::new(sample()).unwrap();
        let b = TensorSet::new(rev).unwrap();
        assert_eq!(to_safetensors(&a).unwrap(), to_safetensors(&b).unwrap());
        assert_eq!(content_hash(&a).unwrap(), content_hash(&b).unwrap());
        let c = a.map(|x| x * 2.0);
        assert_ne!(content_hash(&a).unwrap(), content_hash(&c).unwrap());
    }

    #[test]
    fn rejects_garbage() {
        assert!(from_safetensors(b"not a safetensors file").is_err());
    }
}
