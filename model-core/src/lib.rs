//! CytoLens model core: everything numeric, backend-agnostic (burn picks the backend through a
//! `Device` at run time) and testable without a browser.

pub mod augment;
pub mod baseline;
#[cfg(feature = "native")]
pub mod bccd;
pub mod calibrate;
pub mod classes;
pub mod classify;
pub mod colour_gate;
pub mod decode;
pub mod detect;
pub mod diagnosis;
pub mod differential;
pub mod ema;
pub mod engine;
pub mod error;
pub mod focus_gate;
pub mod metrics;
pub mod model_sheet;
pub mod preprocess;
pub mod red_cells;
pub mod schedule;
pub mod slide_scale;
pub mod smear;
pub mod touching;
pub mod triage_reason;
pub mod unet;
pub mod weights;

#[cfg(feature = "native")]
pub mod checkpoint;
#[cfg(feature = "native")]
pub mod dataset;
#[cfg(feature = "native")]
pub mod evaluate;
#[cfg(feature = "native")]
pub mod train;

pub use error::{Error, Result};
