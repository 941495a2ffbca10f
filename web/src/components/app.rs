//! The application shell: wires the worker, the opener, the backend line, the smears, the
//! cell panel, the differential and the exports.

use super::backend_line::{BackendInfo, BackendLine};
use super::cell_panel::{accept_selected, review_selected, undo_review, CellPanel};
use super::differential::{Differential, SessionDifferential};
use super::export::ExportButtons;
use super::file_opener::{pasted_files, read_files, FileOpener, OpenedFile};
use super::gallery::CellGallery;
use super::image_view::DecodedImage;
use super::model_facts::{load_sheet, ModelFacts, SheetState};
use super::report::Report;
use super::review_queue::ReviewQueue;
use super::samples::SampleGallery;
use super::sign_off::SignOff;
use super::slides::{ImageSlide, SlideBar};
use super::smear_view::{MarkCell, SmearView};
use crate::bridge::WorkerPool;
use crate::field_scale::ScaleWarning;
use crate::pool::worker_count;
use crate::protocol::{Request, Response, AGREEMENT_TOLERANCE};
use crate::session::{
    cell_id, key_action, restore, Focus, ImageRecord, KeyAction, KeyPress, ModelInfo, Session,
};
use crate::storage;
use leptos::prelude::*;
use std::collections::{HashMap, HashSet};
use wasm_bindgen_futures::spawn_local;
use web_sys::IdbDatabase;

/// Longest wait before the session is saved while analyses run.
const SAVE_INTERVAL_MS: u32 = 1000;

/// Progress of one image's analysis.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Progress {
    /// Cells done.
    pub done: usize,
    /// Cells in all (0 until detection finished).
    pub total: usize,
    /// Throughput.
    pub cells_per_second: f64,
    /// Finished (or cancelled).
    pub finished: bool,
    /// Cancelled by the user.
    pub cancelled: bool,
    /// Milliseconds to the first diagnosis.
    pub first_ms: Option<f64>,
    /// Indices of the compute workers that analysed the image: the one that found its cells
    /// first, then those that classified a share of them.
    pub workers: Vec<usize>,
}

/// One opened file and its state.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Page-side id.
    pub id: u32,
    /// File name.
    pub name: String,
    /// Decoded pixels, once the worker answered.
    pub image: Option<DecodedImage>,
    /// Error message, if the file could not be used.
    pub error: Option<String>,
    /// Notes on the conversion of a usable file (transparency, bit depth, rotation).
    pub notes: Vec<String>,
    /// Its decoding was asked again, once, because the worker decoding it stopped: a file that
    /// stops the next worker too is failed rather than asked a third time.
    pub decode_retried: bool,
}

/// The whole page.
#[component]
pub fn App() -> impl IntoView {
    let (backend, set_backend) = signal(None::<BackendInfo>);
    let (self_test, set_self_test) = signal(None::<String>);
    let entries = RwSignal::new(Vec::<Entry>::new());
    let session = RwSignal::new(Session::default());
    let sheet: SheetState = RwSignal::new(None);
    load_sheet(sheet);
    let progress = RwSignal::new(HashMap::<u32, Progress>::new());
    let crops = RwSignal::new(HashMap::<String, Vec<u8>>::new());
    // Cells the reviewer marked that a worker is classifying (image id, index), and why the
    // last mark on an image failed.
    let marks = RwSignal::new(HashSet::<(u32, usize)>::new());
    let mark_errors = RwSignal::new(HashMap::<u32, String>::new());
    let selected = RwSignal::new(None::<(u32, String)>);
    let report_open = RwSignal::new(false);
    // While the report is open, printing prints it alone (see the print stylesheet), and the
    // page under it is inert (neither focused, clicked nor read out); once it closes, the focus
    // goes back to the button that opened it.
    Effect::new(move |was_open: Option<bool>| {
        let open = report_open.get();
        if let Some(body) = document().body() {
            let _ = body.class_list().toggle_with_force("report-open", open);
        }
        for part in ["body > header", "body > main", "body > footer"] {
            if let Ok(Some(el)) = document().query_selector(part) {
                let _ = el.toggle_attribute_with_force("inert", open);
            }
        }
        if was_open == Some(true) && !open {
            if let Some(b) = document()
                .query_selector("[data-testid=open-report]")
                .ok()
                .flatten()
                .and_then(|e| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(e).ok())
            {
                let _ = b.focus();
            }
        }
        open
    });
    let (fatal, set_fatal) = signal(None::<String>);
    let next_id = StoredValue::new(0u32);
    let db = StoredValue::new_local(None::<IdbDatabase>);
    let files = StoredValue::new_local(HashMap::<u32, Vec<u8>>::new());
    let classes: Signal<Vec<String>> = Signal::derive(move || {
        session.with(|s| {
            s.images
                .iter()
                .flat_map(|i| i.cells.first())
                .next()
                .map(|c| {
                    c.result
                        .probs
                        .iter()
                        .map(|(k, _)| k.clone())
                        .collect::<Vec<String>>()
                })
                .unwrap_or_default()
        })
    });

    // A write the browser refused (its quota, a full disk): said on the page for the rest of
    // the visit (the latest refusal), since a reload would lose what was not kept.
    let (save_problem, set_save_problem) = signal(None::<String>);
    let store_bytes = move |key: String, bytes: Vec<u8>| {
        if let Some(d) = db.get_value() {
            spawn_local(async move {
                if let Err(e) = storage::put_bytes(&d, &key, &bytes).await {
                    set_save_problem.set(Some(e));
                }
            });
        }
    };

    // A cell's 128x128 crop: shown now, and stored with the session.
    let keep_crop = move |image: u32, index: usize, bytes: Option<Vec<u8>>| {
        if let Some(b) = bytes {
            let cid = cell_id(image, index);
            store_bytes(format!("crop:{cid}"), b.clone());
            crops.update(|c| {
                c.insert(cid, b);
            });
        }
    };

    // Persistence notices, a bad `?workers=` and a worker that stopped share one line under the opener.
    let (notice, set_notice) = signal(None::<String>);
    let add_notice = move |m: String| {
        set_notice.update(|n| {
            *n = Some(match n.take() {
                Some(earlier) => format!("{earlier}; {m}"),
                None => m,
            })
        })
    };
    // The worker pool, once started (the responses' handler, below, asks it again for what a
    // stopped worker lost).
    let worker = StoredValue::new_local(None::<WorkerPool>);
    let on_response = move |r: Response, bytes: Option<Vec<u8>>, from: usize| match r {
        Response::Backend {
            backend,
            detail,
            webgpu_available,
        } => {
            set_backend.set(Some(BackendInfo {
                backend,
                detail,
                webgpu_available,
            }));
        }
        Response::Decoded {
            id,
            width,
            height,
            notes,
        } => {
            entries.update(|es| {
                if let Some(e) = es.iter_mut().find(|e| e.id == id) {
                    e.notes = notes;
                    e.image = Some(DecodedImage {
                        width,
                        height,
                        rgba: bytes.unwrap_or_default().into(),
                    });
                }
            });
            session.update(|s| {
                if let Some(i) = s.image_mut(id) {
                    i.width = width;
                    i.height = height;
                }
            });
        }
        Response::Failed { id, message, .. } => entries.update(|es| {
            if let Some(e) = es.iter_mut().find(|e| e.id == id) {
                e.error = Some(message);
            }
        }),
        Response::SelfTest {
            cpu_ms,
            gpu_ms,
            max_abs_diff,
            elements,
        } => {
            let text = match (gpu_ms, max_abs_diff) {
                (Some(g), Some(d)) => format!(
                    "Self-test: CPU {cpu_ms:.0} ms, WebGPU {g:.0} ms; {} (max |diff| {d:.2e} over {elements} outputs, tolerance {AGREEMENT_TOLERANCE:.0e})",
                    if d <= AGREEMENT_TOLERANCE { "outputs agree" } else { "OUTPUTS DISAGREE" }
                ),
                _ => format!("Self-test: CPU forward pass {cpu_ms:.0} ms ({elements} outputs); no WebGPU to compare"),
            };
            set_self_test.set(Some(text));
        }
        Response::Model {
            name,
            version,
            sha256,
        } => session.update(|s| {
            s.model = Some(ModelInfo {
                name,
                version,
                sha256,
            })
        }),
        Response::Found { id, findings } => {
            progress.update(|p| {
                let e = p.entry(id).or_default();
                e.total = findings.wbc;
                e.workers = vec![from];
            });
            session.update(|s| {
                if let Some(i) = s.image_mut(id) {
                    i.findings = Some(findings);
                }
            });
        }
        Response::Progress {
            id,
            done,
            total,
            cells_per_second,
        } => progress.update(|p| {
            let e = p.entry(id).or_default();
            e.done = done;
            e.total = total;
            e.cells_per_second = cells_per_second;
        }),
        Response::Cell { id, cell } => {
            // Record a worker that takes part in an image once, not one reactive update per cell.
            let known =
                progress.with_untracked(|p| p.get(&id).is_some_and(|e| e.workers.contains(&from)));
            if !known {
                progress.update(|p| p.entry(id).or_default().workers.push(from));
            }
            keep_crop(id, cell.index, bytes);
            let backend_now = backend
                .get_untracked()
                .map(|b| b.backend)
                .unwrap_or_default();
            session.update(|s| {
                if let Some(i) = s.image_mut(id) {
                    i.backend = backend_now;
                    i.insert_cell(cell, false);
                }
            });
        }
        Response::CellAdded { id, cell } => {
            // A mark made before a re-analysis went with the cells it was added to.
            if !marks
                .try_update(|m| m.remove(&(id, cell.index)))
                .unwrap_or(false)
            {
                return;
            }
            keep_crop(id, cell.index, bytes);
            let added = session
                .try_update(|s| Some(s.image_mut(id)?.insert_cell(cell, true)))
                .flatten();
            if let Some(cid) = added {
                selected.set(Some((id, cid)));
            }
        }
        Response::AddFailed { id, index, message } => {
            if marks
                .try_update(|m| m.remove(&(id, index)))
                .unwrap_or(false)
            {
                mark_errors.update(|e| {
                    e.insert(id, message);
                });
            }
        }
        Response::Done {
            id,
            cancelled,
            first_ms,
            ..
        } => progress.update(|p| {
            let e = p.entry(id).or_default();
            e.finished = true;
            e.cancelled = cancelled;
            e.first_ms = first_ms;
        }),
        Response::Error { message } => set_fatal.set(Some(message)),
        // The pool has started a worker in its place and ended the job it held; what else was
        // asked of it is lost: the first worker also decodes, classifies marked cells and
        // self-tests, so those are failed here, each with the reason.
        Response::Crashed { message } => {
            add_notice(format!("{message}; a new worker was started in its place"));
            if from == 0 {
                // Files it had not decoded yet are asked of the new worker, once (their
                // analyses are queued and go on); a file whose decoding stops the new worker
                // too is failed, so it cannot stop worker after worker.
                let mut again = Vec::new();
                entries.update(|es| {
                    for e in es
                        .iter_mut()
                        .filter(|e| e.image.is_none() && e.error.is_none())
                    {
                        let bytes = files.with_value(|m| m.get(&e.id).cloned());
                        match bytes {
                            Some(b) if !e.decode_retried => {
                                e.decode_retried = true;
                                again.push((e.id, e.name.clone(), b));
                            }
                            _ => {
                                e.error = Some(format!(
                                    "{message} while decoding this file, twice: it is not shown"
                                ))
                            }
                        }
                    }
                });
                worker.with_value(|w| {
                    if let Some(w) = w {
                        for (id, name, bytes) in again {
                            w.send(&Request::Decode { id, name }, Some(&bytes));
                        }
                    }
                });
                let pending = marks.try_update(std::mem::take).unwrap_or_default();
                mark_errors.update(|errs| {
                    for (id, _) in pending {
                        errs.insert(id, format!("{message}: mark the cell again"));
                    }
                });
                if self_test.get_untracked().is_none() {
                    set_self_test.set(Some(format!("Self-test did not finish: {message}")));
                }
            }
        }
        // The pool answers offers to share a smear's cells itself.
        Response::Ready | Response::Share { .. } => {}
    };
    let workers = worker_count(
        &window().location().search().unwrap_or_default(),
        window().navigator().hardware_concurrency(),
    );
    if let Some(n) = workers.note.clone() {
        add_notice(n);
    }
    match WorkerPool::start(workers.count, on_response) {
        Ok(w) => worker.set_value(Some(w)),
        Err(e) => set_fatal.set(Some(e)),
    }
    let send = move |req: Request, bytes: Option<&[u8]>| {
        worker.with_value(|w| {
            if let Some(w) = w {
                w.send(&req, bytes)
            }
        })
    };
    send(Request::Init { prefer_gpu: true }, None);
    send(Request::SelfTest, None);

    // Persistence: restore the stored session first, then save every change.
    let restored = RwSignal::new(false);
    spawn_local(async move {
        match storage::open().await {
            Ok(d) => {
                let mut problems = Vec::new();
                match storage::get(&d, "session").await {
                    Ok(Some(v)) => {
                        let (s, p) = restore(&v.as_string().unwrap_or_default());
                        problems.extend(p);
                        for img in &s.images {
                            match storage::get_bytes(&d, &format!("file:{}", img.id)).await {
                                Ok(Some(bytes)) => {
                                    entries.update(|es| {
                                        es.push(Entry {
                                            id: img.id,
                                            name: img.name.clone(),
                                            image: None,
                                            error: None,
                                            notes: Vec::new(),
                                            decode_retried: false,
                                        })
                                    });
                                    send(
                                        Request::Decode {
                                            id: img.id,
                                            name: img.name.clone(),
                                        },
                                        Some(&bytes),
                                    );
                                    files.update_value(|m| {
                                        m.insert(img.id, bytes.clone());
                                    });
                                }
                                other => problems.push(format!(
                                    "{}: stored image missing ({other:?})",
                                    img.name
                                )),
                            }
                            let found = img.found_cells();
                            progress.update(|p| {
                                p.insert(
                                    img.id,
                                    Progress {
                                        done: found,
                                        total: found,
                                        finished: true,
                                        ..Progress::default()
                                    },
                                );
                            });
                            for c in &img.cells {
                                if let Ok(Some(b)) =
                                    storage::get_bytes(&d, &format!("crop:{}", c.id)).await
                                {
                                    crops.update(|m| {
                                        m.insert(c.id.clone(), b);
                                    });
                                }
                            }
                        }
                        next_id.set_value(s.images.iter().map(|i| i.id + 1).max().unwrap_or(0));
                        session.set(s);
                    }
                    Ok(None) => {}
                    Err(e) => problems.push(e),
                }
                if !problems.is_empty() {
                    add_notice(problems.join("; "));
                }
                db.set_value(Some(d));
            }
            Err(e) => add_notice(format!(
                "this browser cannot keep the session ({e}); results will be lost on reload"
            )),
        }
        restored.set(true);
    });
    // Save the session on every change; while analyses run (a change per cell, and each save
    // writes the whole, growing session), at most once per SAVE_INTERVAL_MS, so a batch's page
    // work grows with its size, not its square. Edits made while nothing runs are saved at once.
    let save_pending = StoredValue::new(false);
    let save_now = move || {
        save_pending.set_value(false);
        let json = session.with_untracked(|s| serde_json::to_string(s).unwrap_or_default());
        if let Some(d) = db.get_value() {
            spawn_local(async move {
                if let Err(e) = storage::put(&d, "session", &json.into()).await {
                    set_save_problem.set(Some(e));
                }
            });
        }
    };
    Effect::new(move |_| {
        session.track();
        if !restored.get() {
            return;
        }
        let running = progress.with_untracked(|p| p.values().any(|e| !e.finished));
        if !running {
            save_now();
        } else if !save_pending.get_value() {
            save_pending.set_value(true);
            spawn_local(async move {
                gloo_timers::future::TimeoutFuture::new(SAVE_INTERVAL_MS).await;
                if save_pending.get_value() {
                    save_now();
                }
            });
        }
    });
    let clear_all = move |_| {
        let ok = window()
            .confirm_with_message("Clear all images, results and review edits from this browser?")
            .unwrap_or(false);
        if !ok {
            return;
        }
        entries.set(Vec::new());
        session.set(Session::default());
        progress.set(HashMap::new());
        crops.set(HashMap::new());
        selected.set(None);
        if let Some(d) = db.get_value() {
            spawn_local(async move {
                let _ = storage::clear(&d).await;
            });
        }
    };

    let on_file = Callback::new(move |f: OpenedFile| {
        let id = next_id.get_value();
        next_id.set_value(id + 1);
        entries.update(|es| {
            es.push(Entry {
                id,
                name: f.name.clone(),
                image: None,
                error: None,
                notes: Vec::new(),
                decode_retried: false,
            })
        });
        session.update(|s| {
            s.images.push(ImageRecord {
                id,
                name: f.name.clone(),
                width: 0,
                height: 0,
                backend: String::new(),
                findings: None,
                cells: Vec::new(),
                signed_off: None,
                slide: s.current_slide().to_string(),
            })
        });
        send(
            Request::Decode {
                id,
                name: f.name.clone(),
            },
            Some(&f.bytes),
        );
        send(
            Request::Analyze {
                id,
                name: f.name,
                rbc_diameter_px: None,
            },
            Some(&f.bytes),
        );
        files.update_value(|m| {
            m.insert(id, f.bytes.clone());
        });
        store_bytes(format!("file:{id}"), f.bytes);
    });

    let reanalyse = move |id: u32, diameter: Option<f32>| {
        let Some(bytes) = files.with_value(|m| m.get(&id).cloned()) else {
            return;
        };
        let name = session
            .with_untracked(|s| s.image(id).map(|i| i.name.clone()))
            .unwrap_or_default();
        session.update(|s| {
            if let Some(i) = s.image_mut(id) {
                i.cells.clear();
                i.findings = None;
                i.signed_off = None;
            }
            s.undo.retain(|e| e.image != id);
        });
        marks.update(|m| m.retain(|(image, _)| *image != id));
        mark_errors.update(|e| {
            e.remove(&id);
        });
        progress.update(|p| {
            p.insert(id, Progress::default());
        });
        send(
            Request::Analyze {
                id,
                name,
                rbc_diameter_px: diameter,
            },
            Some(&bytes),
        );
    };
    // The reviewer marks a white cell the detector missed: the worker crops it as the detected
    // ones were (at the same red-cell size) and classifies it.
    let add_cell = move |id: u32, centre: [u32; 2]| {
        let planned = session.with_untracked(|s| match s.add_refusal(id) {
            Some(why) => Err(why),
            None => s
                .image(id)
                .and_then(|i| Some((i.next_cell_index(), i.findings.as_ref()?.rbc_diameter_px?)))
                .ok_or_else(|| "the image is gone".to_string()),
        });
        let planned = planned.and_then(|plan| {
            files
                .with_value(|m| m.get(&id).cloned())
                .map(|bytes| (plan, bytes))
                .ok_or_else(|| "its file is no longer in this session".to_string())
        });
        match planned {
            Ok(((next, rbc_diameter_px), bytes)) => {
                let index = marks.with_untracked(|m| {
                    m.iter()
                        .filter(|(image, _)| *image == id)
                        .map(|(_, i)| i + 1)
                        .fold(next, usize::max)
                });
                marks.update(|m| {
                    m.insert((id, index));
                });
                mark_errors.update(|e| {
                    e.remove(&id);
                });
                send(
                    Request::AddCell {
                        id,
                        index,
                        centre,
                        rbc_diameter_px,
                    },
                    Some(&bytes),
                );
            }
            Err(why) => mark_errors.update(|e| {
                e.insert(id, why);
            }),
        }
    };
    let on_switch = Callback::new(move |gpu: bool| {
        set_backend.set(None);
        send(Request::Init { prefer_gpu: gpu }, None);
    });
    let paste = window_event_listener(leptos::ev::paste, move |ev| {
        if let Some(files) = pasted_files(&ev) {
            read_files(files, on_file);
        }
    });
    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        let key = ev.key();
        let press = KeyPress {
            key: &key,
            ctrl: ev.ctrl_key(),
            meta: ev.meta_key(),
            alt: ev.alt_key(),
            repeat: ev.repeat(),
            focus: focus_of(ev.target()),
            report_open: report_open.get_untracked(),
        };
        match key_action(press, &classes.get_untracked()) {
            Some(KeyAction::Undo) => {
                ev.prevent_default();
                undo_review(session, selected);
            }
            Some(KeyAction::Label(label)) => review_selected(session, selected, Some(label)),
            Some(KeyAction::Accept) => accept_selected(session, selected),
            Some(KeyAction::CloseReport) => report_open.set(false),
            None => {}
        }
    });
    on_cleanup(move || {
        paste.remove();
        keys.remove();
    });

    view! {
        <header>
            <h1>"CytoLens"</h1>
            <p class="tagline">"White-cell morphology with uncertainty, computed entirely in this browser. Images never leave the machine."</p>
            <BackendLine info=backend self_test=self_test on_switch=on_switch />
        </header>
        <main>
            {move || fatal.get().map(|m| view! { <p class="error" data-testid="fatal">{m}</p> })}
            <FileOpener on_file=on_file />
            <SampleGallery on_file=on_file />
            <SlideBar session=session />
            {move || notice.get().map(|m| view! { <p class="notice" data-testid="restore-notice">{m}</p> })}
            {move || save_problem.get().map(|e| view! {
                <p class="warning" role="alert" data-testid="save-problem">{format!(
                    "This browser did not keep the latest of this session ({e}): a reload would lose \
                     results and reviews not yet kept. Export them (JSON or CSV) to keep them, or \
                     free space in the browser's storage."
                )}</p>
            })}
            <div class="export-row">
                <ExportButtons session=session classes=classes report_open=report_open />
                <button data-testid="clear-all" on:click=clear_all>"Clear all"</button>
            </div>
            <div class="workspace">
                <section class="images" data-testid="images">
                    <For each=move || entries.get() key=|e| (e.id, e.image.is_some(), e.error.clone()) let:entry>
                        {
                            let id = entry.id;
                            // Memos: another image's news does not re-render this one (with a
                            // batch open, that made the page's work grow as its square).
                            let record: Signal<Option<ImageRecord>> = Memo::new(move |_| session.with(|s| s.image(id).cloned())).into();
                            let prog: Signal<Progress> = Memo::new(move |_| progress.with(|p| p.get(&id).cloned()).unwrap_or_default()).into();
                            view! {
                                <article class="entry" data-testid="entry">
                                    <h2>{entry.name.clone()}</h2>
                                    <ImageSlide session=session id=id />
                                    {entry.error.clone().map(|err| view! { <p class="error" data-testid="file-error">{format!("{}: {err}", entry.name)}</p> })}
                                    {entry.notes.iter().map(|n| view! { <p class="notice" data-testid="file-notice">{format!("{}: {n}", entry.name)}</p> }).collect_view()}
                                    {match entry.image.clone() {
                                        Some(img) => view! {
                                            <p data-testid="image-caption">{format!("{}×{} px", img.width, img.height)}</p>
                                            <div class="progress" data-testid="progress" data-worker=move || {
                                                let w = prog.get().workers;
                                                (!w.is_empty()).then(|| w.iter().map(usize::to_string).collect::<Vec<_>>().join(" "))
                                            }>
                                                <progress max=move || prog.get().total.max(1) value=move || prog.get().done></progress>
                                                <span data-testid="progress-text">{move || {
                                                    let p = prog.get();
                                                    if p.cancelled { format!("cancelled after {} of {} cells", p.done, p.total) }
                                                    else if p.finished { format!("done: {} cells, {:.1} cells/s", p.done, p.cells_per_second) }
                                                    else if p.total == 0 { "detecting cells…".to_string() }
                                                    else { format!("{} / {} cells, {:.1} cells/s", p.done, p.total, p.cells_per_second) }
                                                }}</span>
                                                <Show when=move || !prog.get().finished>
                                                    <button data-testid="cancel" on:click=move |_| send(Request::Cancel { id }, None)>"Cancel"</button>
                                                </Show>
                                            </div>
                                            <p class="findings" data-testid="findings">{move || record.get().and_then(|r| r.findings_line())}</p>
                                            <SmearView image=img id=id name=entry.name.clone() record=record selected=selected
                                                marking=MarkCell {
                                                    refusal: Signal::derive(move || session.with(|s| s.add_refusal(id))),
                                                    pending: Signal::derive(move || marks.with(|m| m.iter().filter(|(i, _)| *i == id).count())),
                                                    error: Signal::derive(move || mark_errors.with(|e| e.get(&id).cloned())),
                                                    on_mark: Callback::new(move |centre: [u32; 2]| add_cell(id, centre)),
                                                } />
                                            <Differential record=record />
                                            <ScaleOverride id=id record=record warning=Signal::derive(move || session.with(|s| s.scale_warning(id))) running=Signal::derive(move || !prog.get().finished) on_apply=Callback::new(move |d: Option<f32>| reanalyse(id, d)) />
                                            <SignOff session=session id=id />
                                        }.into_any(),
                                        None if entry.error.is_none() => view! { <p data-testid="decoding">{format!("Decoding {}…", entry.name)}</p> }.into_any(),
                                        None => ().into_any(),
                                    }}
                                </article>
                            }
                        }
                    </For>
                </section>
                <div class="side">
                    <CellPanel session=session selected=selected crops=crops classes=classes sheet=sheet />
                    <ReviewQueue session=session selected=selected />
                    <SessionDifferential session=session />
                    <CellGallery session=session crops=crops selected=selected />
                </div>
            </div>
        </main>
        <footer>"Research and education only — not a medical device. "
            {move || session.with(|s| s.model.clone()).map(|m| format!("Model {} {} (weights sha256 {}…)", m.name, m.version, &m.sha256[..12.min(m.sha256.len())]))}
            <ModelFacts state=sheet session=session />
        </footer>
        <Show when=move || report_open.get()>
            <Report session=session entries=entries crops=crops open=report_open sheet=sheet />
        </Show>
    }
}

/// The scale: the estimated red-cell diameter, which the user can override (the crops are then
/// resampled to the training data's magnification from the new value and re-classified).
#[component]
fn ScaleOverride(
    /// Image id.
    id: u32,
    /// Its record.
    record: Signal<Option<ImageRecord>>,
    /// Its cells were cropped at a red-cell size far from its slide's.
    warning: Signal<Option<ScaleWarning>>,
    /// An analysis of the image is running or queued (re-analysing waits for it to end).
    running: Signal<bool>,
    /// Re-analyse with this diameter (None = estimate again).
    on_apply: Callback<Option<f32>>,
) -> impl IntoView {
    let (value, set_value) = signal(String::new());
    view! {
        <div class="scale" data-testid="scale">
            {move || warning.get().map(|w| {
                let d = w.slide.diameter_px;
                view! {
                    <p class="warning scale-warning" data-testid="scale-warning">
                        {w.message()}" "
                        <button data-testid="scale-use-slide" disabled=move || running.get() title=move || running.get().then_some("wait for the analysis to end, or cancel it") on:click=move |_| on_apply.run(Some(d))>
                            {format!("Re-analyse at the slide's {d:.0} px")}
                        </button>
                    </p>
                }
            })}
            {move || record.get().and_then(|r| r.findings).filter(|f| f.single_cell).map(|_| view! {
                <p class="hint" data-testid="single-cell-scale">"A single-cell image is classified as it is framed, at the training images' magnification (red cells about a fifth of its side). If it is magnified more or less, set the red-cell diameter: its cell is then cropped to the training scale from it."</p>
            })}
            {move || record.get().and_then(|r| r.findings).and_then(|f| f.rbc_diameter_px).map(|d| format!("Red-cell diameter {d:.0} px ({:.3} µm/px). ", 7.5 / d))}
            <label>"Override (px): "
                <input type="number" min="8" max="2000" step="1" data-testid="scale-input" id=format!("scale-{id}")
                    prop:value=move || value.get() on:input=move |ev| set_value.set(event_target_value(&ev)) />
            </label>
            <button data-testid="scale-apply" disabled=move || running.get() title=move || running.get().then_some("wait for the analysis to end, or cancel it") on:click=move |_| on_apply.run(value.get_untracked().trim().parse::<f32>().ok().filter(|v| *v >= 8.0))>
                "Re-analyse"
            </button>
        </div>
    }
}

/// What kind of element a key event went to ([`Focus::of`]).
fn focus_of(target: Option<web_sys::EventTarget>) -> Focus {
    use wasm_bindgen::JsCast;
    let Some(el) = target.and_then(|t| t.dyn_into::<web_sys::HtmlElement>().ok()) else {
        return Focus::Page;
    };
    let input_type = el
        .dyn_ref::<web_sys::HtmlInputElement>()
        .map(|i| i.type_())
        .unwrap_or_default();
    Focus::of(&el.tag_name(), &input_type, el.is_content_editable())
}
