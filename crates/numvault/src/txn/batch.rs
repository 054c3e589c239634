//! [`Batch`]: several changes committed atomically by `Store::commit`.

use super::plan::Intent;
use crate::model::array::ArrayRef;

/// Several changes committed atomically by `Store::commit`.
#[derive(Default)]
pub struct Batch<'a> {
    pub(crate) intents: Vec<Intent<'a>>,
}

impl<'a> Batch<'a> {
    pub fn new() -> Self {
        Batch::default()
    }
    /// Create or overwrite an array.
    pub fn save(&mut self, name: &'a str, array: ArrayRef<'a>) -> &mut Self {
        self.intents.push(Intent::Save {
            name,
            array: array.into(),
        });
        self
    }
    /// Append rows.
    pub fn append(&mut self, name: &'a str, array: ArrayRef<'a>) -> &mut Self {
        self.intents.push(Intent::Append {
            name,
            array: array.into(),
        });
        self
    }
    /// Replace rows at `indices` (negative counts from the end).
    pub fn replace(&mut self, name: &'a str, indices: &'a [i64], array: ArrayRef<'a>) -> &mut Self {
        self.intents.push(Intent::Replace {
            name,
            indices,
            array: array.into(),
        });
        self
    }
    /// Delete rows at `indices`.
    pub fn delete_rows(&mut self, name: &'a str, indices: &'a [i64]) -> &mut Self {
        self.intents.push(Intent::DeleteRows { name, indices });
        self
    }
    /// Remove an array.
    pub fn drop_array(&mut self, name: &'a str) -> &mut Self {
        self.intents.push(Intent::Drop { name });
        self
    }
    /// Rename an array.
    pub fn rename(&mut self, from: &'a str, to: &'a str) -> &mut Self {
        self.intents.push(Intent::Rename { from, to });
        self
    }
    /// Rewrite an array without its dead rows.
    pub fn compact(&mut self, name: &'a str) -> &mut Self {
        self.intents.push(Intent::Compact { name });
        self
    }
    pub fn is_empty(&self) -> bool {
        self.intents.is_empty()
    }
}
