//! Crops of every cell grouped by their final class, with counts (as on a digital morphology
//! analyser); a click selects the cell.

use super::canvas::PixelCanvas;
use crate::session::Session;
use leptos::prelude::*;
use std::collections::{BTreeMap, HashMap};

/// The gallery.
#[component]
pub fn CellGallery(
    /// The session.
    session: RwSignal<Session>,
    /// Crops by cell id (128x128 RGBA).
    crops: RwSignal<HashMap<String, Vec<u8>>>,
    /// Selected cell.
    selected: RwSignal<Option<(u32, String)>>,
) -> impl IntoView {
    let groups = Memo::new(move |_| {
        session.with(|s| {
            let mut g: BTreeMap<String, Vec<(u32, String)>> = BTreeMap::new();
            for img in &s.images {
                for c in &img.cells {
                    g.entry(c.final_class().to_string())
                        .or_default()
                        .push((img.id, c.id.clone()));
                }
            }
            g.into_iter().collect::<Vec<_>>()
        })
    });
    view! {
        <section class="gallery" data-testid="gallery">
            {move || groups.get().into_iter().map(|(class, cells)| view! {
                <div class="gallery-group" data-testid="gallery-group" data-class=class.clone()>
                    <h4>{format!("{class} ({})", cells.len())}</h4>
                    <div class="gallery-crops">
                        {cells.into_iter().map(|(img, id)| {
                            let key = id.clone();
                            let rgba = Signal::derive(move || crops.with(|m| m.get(&key).cloned()).unwrap_or_default());
                            view! {
                                <button class="gallery-cell" on:click=move |_| selected.set(Some((img, id.clone())))>
                                    <PixelCanvas rgba=rgba side=128 class="thumb" testid="gallery-crop" />
                                </button>
                            }
                        }).collect_view()}
                    </div>
                </div>
            }).collect_view()}
        </section>
    }
}
