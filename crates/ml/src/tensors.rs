//! The named f32 tensor set that moves between roles: model weights and weight deltas.
//!
//! A [`TensorSet`] is a list of [`NamedTensor`]s kept sorted by name with unique names, so two
//! sets with the same content are equal field by field and encode to the same bytes
//! ([`crate::codec`]). Arithmetic here is plain element-wise f32 in index order (no tch), so it
//! is bit-identical on every machine. This module does no I/O.

use thiserror::Error;

/// Errors on building or combining tensor sets.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum TensorError {
    /// Two tensors share a name.
    #[error("duplicate tensor name `{0}`")]
    DuplicateName(String),
    /// A tensor's data length is not the product of its shape.
    #[error("tensor `{name}`: shape {shape:?} needs {expected} values, data has {found}")]
    DataLength {
        /// Tensor name.
        name: String,
        /// Declared shape.
        shape: Vec<usize>,
        /// Product of the shape.
        expected: usize,
        /// Length of the data.
        found: usize,
    },
    /// The sets have different numbers of tensors.
    #[error("expected {expected} tensors, found {found}")]
    CountMismatch {
        /// Tensors in the reference set.
        expected: usize,
        /// Tensors in the other set.
        found: usize,
    },
    /// The sets differ in a tensor name at some sorted position.
    #[error("tensor #{position}: expected name `{expected}`, found `{found}`")]
    NameMismatch {
        /// Position in sorted order.
        position: usize,
        /// Name in the reference set.
        expected: String,
        /// Name in the other set.
        found: String,
    },
    /// A tensor has a different shape in the two sets.
    #[error("tensor `{name}`: expected shape {expected:?}, found {found:?}")]
    ShapeMismatch {
        /// Tensor name.
        name: String,
        /// Shape in the reference set.
        expected: Vec<usize>,
        /// Shape in the other set.
        found: Vec<usize>,
    },
}

/// One named, row-major f32 tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    /// Parameter name, e.g. `blocks.0.attn.qkv.weight`.
    pub name: String,
    /// Shape (row-major).
    pub shape: Vec<usize>,
    /// Values, `shape.iter().product()` of them.
    pub data: Vec<f32>,
}

impl NamedTensor {
    /// A tensor; the data length is checked when it joins a [`TensorSet`].
    pub fn new(name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) -> Self {
        Self {
            name: name.into(),
            shape,
            data,
        }
    }
}

/// Named tensors sorted by name, names unique, data lengths matching shapes.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TensorSet {
    tensors: Vec<NamedTensor>,
}

/// Model weights.
pub type Weights = TensorSet;
/// A weight delta (`trained − base`) over the same names and shapes as the weights.
pub type Delta = TensorSet;

impl TensorSet {
    /// Sorts `tensors` by name and validates names and lengths.
    pub fn new(mut tensors: Vec<NamedTensor>) -> Result<Self, TensorError> {
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        for w in tensors.windows(2) {
            if w[0].name == w[1].name {
                return Err(TensorError::DuplicateName(w[0].name.clone()));
            }
        }
        for t in &tensors {
            let expected: usize = t.shape.iter().product();
            if expected != t.data.len() {
                return Err(TensorError::DataLength {
                    name: t.name.clone(),
                    shape: t.shape.clone(),
                    expected,
                    found: t.data.len(),
                });
            }
        }
        Ok(Self { tensors })
    }

    /// The tensors, sorted by name.
    pub fn tensors(&self) -> &[NamedTensor] {
        &self.tensors
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&NamedTensor> {
        self.tensors
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.tensors[i])
    }

    /// Total number of scalars.
    pub fn num_params(&self) -> usize {
        self.tensors.iter().map(|t| t.data.len()).sum()
    }

    /// All values in canonical order (tensors by name, each row-major).
    pub fn values(&self) -> impl Iterator<Item = f32> + '_ {
        self.tensors.iter().flat_map(|t| t.data.iter().copied())
    }

    /// Ok when `other` has exactly the same names and shapes.
    pub fn check_same_layout(&self, other: &TensorSet) -> Result<(), TensorError> {
        if self.tensors.len() != other.tensors.len() {
            return Err(TensorError::CountMismatch {
                expected: self.tensors.len(),
                found: other.tensors.len(),
            });
        }
        for (position, (a, b)) in self.tensors.iter().zip(&other.tensors).enumerate() {
            if a.name != b.name {
                return Err(TensorError::NameMismatch {
                    position,
                    expected: a.name.clone(),
                    found: b.name.clone(),
                });
            }
            if a.shape != b.shape {
                return Err(TensorError::ShapeMismatch {
                    name: a.name.clone(),
                    expected: a.shape.clone(),
                    found: b.shape.clone(),
                });
            }
        }
        Ok(())
    }

    /// A set with the same layout and every value replaced by `f(self, other)`.
    pub fn zip_with(
        &self,
        other: &TensorSet,
        f: impl Fn(f32, f32) -> f32,
    ) -> Result<TensorSet, TensorError> {
        self.check_same_layout(other)?;
        let tensors = self
            .tensors
            .iter()
            .zip(&other.tensors)
            .map(|(a, b)| NamedTensor {
                name: a.name.clone(),
                shape: a.shape.clone(),
                data: a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect(),
            })
            .collect();
        Ok(TensorSet { tensors })
    }

    /// `self − other` (e.g. trained − base = delta).
    pub fn sub(&self, other: &TensorSet) -> Result<TensorSet, TensorError> {
        self.zip_with(other, |x, y| x - y)
    }

    /// `self + other` (e.g. global + aggregated delta).
    pub fn add(&self, other: &TensorSet) -> Result<TensorSet, TensorError> {
        self.zip_with(other, |x, y| x + y)
    }

    /// Every value multiplied by `factor`.
    pub fn scale(&self, factor: f32) -> TensorSet {
        self.map(|x| x * factor)
    }

    /// Every value replaced by `f(value)`.
    pub fn map(&self, f: impl Fn(f32) -> f32) -> TensorSet {
        let tensors = self
            .tensors
            .iter()
            .map(|t| NamedTensor {
                name: t.name.clone(),
                shape: t.shape.clone(),
                data: t.data.iter().map(|&x| f(x)).collect(),
            })
            .collect();
        TensorSet { tensors }
    }

    /// Name of the first tensor holding a NaN or infinity, if any.
    pub fn first_non_finite(&self) -> Option<&str> {
        self.tensors
            .iter()
            .find(|t| t.data.iter().any(|x| !x.is_finite()))
            .map(|t| t.name.as_str())
    }

    /// Euclidean norm, accumulated in f64 in canonical order.
    pub fn l2_norm(&self) -> f64 {
        self.values()
            .map(|x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ts: Vec<(&str, Vec<usize>, Vec<f32>)>) -> Result<TensorSet, TensorError> {
        TensorSet::new(
            ts.into_iter()
                .map(|(n, s, d)| NamedTensor::new(n, s, d))
                .collect(),
        )
    }

    #[test]
    fn sorts_names_and_rejects_bad_input() {
        let s = set(vec![
            ("b", vec![1], vec![1.0]),
            ("a", vec![2], vec![2.0, 3.0]),
        ])
        .unwrap();
        let names: Vec<_> = s.tensors().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(s.get("b").unwrap().data, [1.0]);
        assert!(s.get("c").is_none());
        assert_eq!(
            set(vec![("a", vec![1], vec![1.0]), ("a", vec![1], vec![2.0])]),
            Err(TensorError::DuplicateName("a".into()))
        );
        assert!(matches!(
            set(vec![("a", vec![2, 2], vec![1.0; 3])]),
            Err(TensorError::DataLength {
                expected: 4,
                found: 3,
                ..
            })
        ));
    }

    #[test]
    fn sub_then_add_round_trips_and_layout_is_checked() {
        let a = set(vec![("w", vec![3], vec![1.0, 2.5, -4.0])]).unwrap();
        let b = set(vec![("w", vec![3], vec![0.5, 0.5, 0.5])]).unwrap();
        let d = a.sub(&b).unwrap();
        assert_eq!(d.get("w").unwrap().data, [0.5, 2.0, -4.5]);
        assert_eq!(b.add(&d).unwrap(), a);
        let c = set(vec![("w", vec![1, 3], vec![0.0; 3])]).unwrap();
        assert!(matches!(a.sub(&c), Err(TensorError::ShapeMismatch { .. })));
        let e = set(vec![("v", vec![3], vec![0.0; 3])]).unwrap();
        assert!(matches!(a.sub(&e), Err(TensorError::NameMismatch { .. })));
        // 1² + 2.5² + 4² = 23.25
        assert_eq!(a.l2_norm(), 23.25f64.sqrt());
    }
}
