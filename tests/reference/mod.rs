//! The reference model of the decision and the glue that compares it with the
//! crate (TESTING.md §2, invariant 15). Included by `tests/properties.rs` and
//! by fuzz targets, as `#[path = ".../tests/reference/mod.rs"] mod reference;`.

pub mod differential;
pub mod model;
