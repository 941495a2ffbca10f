//! The app's components, one per file.

pub mod app;
pub mod backend_line;
pub mod canvas;
pub mod cell_panel;
pub mod differential;
pub mod export;
pub mod file_opener;
pub mod gallery;
pub mod image_view;
pub mod report;
pub mod review_queue;
pub mod samples;
pub mod sign_off;
pub mod slides;
pub mod smear_view;
