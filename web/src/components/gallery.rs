//! Crops of every cell grouped by their final class, with counts (as on a digital morphology
//! analyser); a click selects the cell.

use super::canvas::PixelCanvas;
use super::cell_panel::select_cell;
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
    // Keyed rows: a new cell adds one thumbnail; the others are neither rebuilt nor redrawn
    // (rebuilding every thumbnail on every cell made a batch's page work grow as its square).
    let cells_of = move |class: &str| {
        groups.with(|g| {
            g.iter()
                .find(|(c, _)| c == class)
                .map(|(_, cells)| cells.clone())
                .unwrap_or_default()
        })
    };
    view! {
        <section class="gallery" data-testid="gallery">
            <h2>"Cells by class"</h2>
            <For each=move || groups.get().into_iter().map(|(class, _)| class) key=|class| class.clone() let:class>
                {
                    let (c1, c2, c3) = (class.clone(), class.clone(), class.clone());
                    view! {
                        <div class="gallery-group" data-testid="gallery-group" data-class=class.clone()>
                            <h3>{move || format!("{c1} ({})", cells_of(&c1).len())}</h3>
                            <div class="gallery-crops">
                                <For each=move || cells_of(&c2) key=|cell| cell.clone() let:cell>
                                    {
                                        let (img, id) = cell;
                                        let key = id.clone();
                                        // Redrawn only when this cell's crop arrives or goes, not
                                        // on every other cell's.
                                        let present = Memo::new(move |_| crops.with(|m| m.contains_key(&key)));
                                        let key = id.clone();
                                        let rgba = Signal::derive(move || {
                                            present.track();
                                            crops.with_untracked(|m| m.get(&key).cloned()).unwrap_or_default()
                                        });
                                        let label = format!("Cell {id}, counted as {c3}");
                                        view! {
                                            <button class="gallery-cell" aria-label=label.clone() title=label on:click=move |ev| select_cell(selected, (img, id.clone()), &ev)>
                                                <PixelCanvas rgba=rgba side=128 class="thumb" testid="gallery-crop" />
                                            </button>
                                        }
                                    }
                                </For>
                            </div>
                        </div>
                    }
                }
            </For>
        </section>
    }
}
