//! The leukocyte differential, as a haematologist reads it: each leukocyte class as a percentage
//! of the leukocytes counted with its exact 95 % interval (and, given the patient's leukocyte
//! count, as an absolute count), nucleated red cells per 100 leukocytes, and what was not
//! counted; of one smear field, and of all fields of a slide (one patient's smear) together.

use super::smear_view::class_colour;
use crate::session::{leukocyte_differential, parse_wbc_count, ImageRecord, Session};
use leptos::prelude::*;
use model_core::differential::Differential as DifferentialCount;

/// The count below which a differential's percentages are flagged as imprecise (a routine
/// manual differential counts 100 leukocytes).
const ROUTINE_COUNT: usize = 100;

/// The differential table and its flags.
#[component]
fn DifferentialTable(
    /// The differential.
    d: DifferentialCount,
    /// Cells awaiting review among those counted.
    awaiting: usize,
    /// Cells triaged as anomalies among those counted.
    anomalies: usize,
    /// The patient's leukocyte count (10^9/L), for absolute counts.
    wbc: Option<f64>,
) -> impl IntoView {
    let n = d.leukocytes;
    let counted = match n {
        1 => "1 leukocyte counted".to_string(),
        n => format!("{n} leukocytes counted"),
    };
    let precision = match n {
        0 => "no leukocyte counted".to_string(),
        n if n < ROUTINE_COUNT => format!(
            "{counted}, fewer than the routine {ROUTINE_COUNT}: the intervals show how imprecise \
             the percentages are"
        ),
        _ => counted,
    };
    let nrbc = d.nucleated_red_per_100.filter(|_| d.nucleated_red > 0);
    view! {
        <table class="differential" data-testid="differential">
            <thead><tr><th>"Class"</th><th>"Count"</th><th>"%"</th><th>"95 % interval"</th>
                {wbc.map(|_| view! { <th>"× 10⁹/L (95 %)"</th> })}
                <th><span class="visually-hidden">"Share"</span></th></tr></thead>
            <tbody>
                {d.classes.into_iter().map(|c| {
                    // No leukocyte counted: no percentage either.
                    let (percent, interval) = c.interval.map_or(("—".to_string(), String::new()), |[lo, hi]| {
                        (format!("{:.1}", c.percent), format!("{lo:.1}–{hi:.1}"))
                    });
                    view! {
                        <tr data-testid="differential-row" data-class=c.class.clone()>
                            <td>{c.class.clone()}</td><td>{c.count}</td><td>{percent}</td>
                            <td data-testid="differential-interval">{interval}</td>
                            {wbc.map(|w| {
                                let text = c.absolute(w).map(|(v, [lo, hi])| format!("{v:.2} ({lo:.2}–{hi:.2})")).unwrap_or_default();
                                view! { <td data-testid="differential-absolute">{text}</td> }
                            })}
                            <td><span class="bar" style:width=format!("{}px", (c.percent * 2.0) as u32) style:background=class_colour(&c.class)></span></td>
                        </tr>
                    }
                }).collect_view()}
                {(d.nucleated_red > 0).then(|| view! {
                    <tr data-testid="differential-row" data-class="erythroblast" class="per-100">
                        <td>"erythroblast (nucleated red)"</td><td>{d.nucleated_red}</td>
                        <td colspan=if wbc.is_some() { "4" } else { "3" }>{nrbc.map(|v| format!("{v:.1} per 100 leukocytes")).unwrap_or_else(|| "no leukocyte to count them against".into())}</td>
                    </tr>
                })}
                {d.not_counted.into_iter().map(|(label, count)| view! {
                    <tr data-testid="differential-row" data-class=label.clone() class="not-counted">
                        <td>{label.clone()}</td><td>{count}</td><td colspan=if wbc.is_some() { "4" } else { "3" }>"not in the percentages"</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        <p class="flags" data-testid="flags">
            {format!("{precision}; {awaiting} awaiting review; {}", match anomalies {
                1 => "1 flagged as an anomaly".to_string(),
                n => format!("{n} flagged as anomalies"),
            })}
        </p>
    }
}

/// Cells awaiting review and cells triaged as anomalies in `images`.
fn review_counts<'a>(images: impl IntoIterator<Item = &'a ImageRecord>) -> (usize, usize) {
    images.into_iter().fold((0, 0), |(w, a), r| {
        let anomalies = r
            .cells
            .iter()
            .filter(|c| c.result.triage == "anomaly")
            .count();
        (w + r.awaiting_review(), a + anomalies)
    })
}

/// The differential of one image.
#[component]
pub fn Differential(
    /// The image's record.
    record: Signal<Option<ImageRecord>>,
) -> impl IntoView {
    view! {
        {move || record.get().map(|r| {
            let (awaiting, anomalies) = review_counts([&r]);
            view! { <DifferentialTable d=leukocyte_differential([&r]) awaiting=awaiting anomalies=anomalies wbc=None /> }
        })}
    }
}

/// Slide `slide`'s patient's leukocyte count, typed in 10^9/L, kept in the session; a bad value
/// is said and changes nothing.
#[component]
fn WbcCountInput(session: RwSignal<Session>, slide: String) -> impl IntoView {
    let (problem, set_problem) = signal(None::<String>);
    let shown = session
        .with_untracked(|s| s.wbc_count(&slide))
        .map(|v| v.to_string())
        .unwrap_or_default();
    view! {
        <label class="wbc">"Leukocyte count (× 10⁹/L, from the analyser) for absolute counts: "
            <input type="text" inputmode="decimal" size="6" data-testid="wbc-input" value=shown
                on:change=move |ev| match parse_wbc_count(&event_target_value(&ev)) {
                    Ok(v) => {
                        set_problem.set(None);
                        session.update(|s| s.set_wbc_count(&slide, v));
                    }
                    Err(e) => set_problem.set(Some(e)),
                } />
        </label>
        {move || problem.get().map(|e| view! { <p class="error" data-testid="wbc-error">{e}</p> })}
    }
}

/// The differential of all analysed fields of slide `slide` together (one patient's smear),
/// with the patient's leukocyte count for absolute counts: editable on the page (the field is
/// made once, not with every result, so typing in it is never lost), as text in the report.
#[component]
pub fn SlideDifferential(
    /// The session.
    session: RwSignal<Session>,
    /// The slide's label.
    slide: String,
    /// Whether the leukocyte count can be typed here (not in the printed report).
    #[prop(optional)]
    editable: bool,
) -> impl IntoView {
    let (label, attr) = (slide.clone(), slide.clone());
    view! {
        <section class="slide-differential" data-testid="slide-differential" data-slide=attr>
            {move || session.with(|s| {
                let images: Vec<_> = s.analysed_fields(&label).collect();
                let (awaiting, anomalies) = review_counts(images.iter().copied());
                let d = leukocyte_differential(images.iter().copied());
                let fields = match images.len() {
                    1 => format!("{label}: 1 field"),
                    n => format!("{label}: {n} fields together"),
                };
                let wbc = s.wbc_count(&label);
                view! {
                    <h3>{fields}</h3>
                    {(!editable).then(|| wbc.map(|w| view! { <p data-testid="wbc-shown">{format!("Leukocyte count {w} × 10⁹/L (given by the user)")}</p> }))}
                    <DifferentialTable d=d awaiting=awaiting anomalies=anomalies wbc=wbc />
                }
            })}
            {editable.then(|| view! { <WbcCountInput session=session slide=slide /> })}
        </section>
    }
}

/// The differential of each slide with an analysed field, in the order the slides were first
/// used: fields of one slide make one count, as at the microscope; two slides (two patients)
/// are never counted together.
#[component]
pub fn SessionDifferential(
    /// The session.
    session: RwSignal<Session>,
) -> impl IntoView {
    let slides = Memo::new(move |_| {
        session.with(|s| {
            s.slides()
                .into_iter()
                .filter(|l| s.analysed_fields(l).next().is_some())
                .collect::<Vec<_>>()
        })
    });
    view! {
        <Show when=move || !slides.get().is_empty()>
            <div class="session-differential" data-testid="session-differential">
                <h2>"Leukocyte differential"</h2>
                <For each=move || slides.get() key=|l| l.clone() let:slide>
                    <SlideDifferential session=session slide=slide editable=true />
                </For>
            </div>
        </Show>
    }
}
