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
pub mod model_facts;
pub mod report;
pub mod review_queue;
pub mod samples;
pub mod sign_off;
pub mod slides;
pub mod smear_view;

use crate::session::Session;
use leptos::prelude::*;

/// Apply `edit`, which the session may refuse, to the session: the refusal to show the user,
/// if any (also when the session is gone).
pub fn refusal(
    session: RwSignal<Session>,
    edit: impl FnOnce(&mut Session) -> Result<(), String>,
) -> Option<String> {
    session
        .try_update(edit)
        .unwrap_or_else(|| Err("the session is gone".into()))
        .err()
}
