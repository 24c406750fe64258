//! Evidence store.
