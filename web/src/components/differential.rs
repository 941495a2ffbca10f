//! The leukocyte differential, as a haematologist reads it: each leukocyte class as a percentage
//! of the leukocytes counted with its exact 95 % interval, nucleated red cells per 100
//! leukocytes, and what was not counted; of one smear field, and of all fields together.

use super::smear_view::class_colour;
use crate::session::{leukocyte_differential, ImageRecord, Session};
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
            <thead><tr><th>"Class"</th><th>"Count"</th><th>"%"</th><th>"95 % interval"</th><th></th></tr></thead>
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
                            <td><span class="bar" style:width=format!("{}px", (c.percent * 2.0) as u32) style:background=class_colour(&c.class)></span></td>
                        </tr>
                    }
                }).collect_view()}
                {(d.nucleated_red > 0).then(|| view! {
                    <tr data-testid="differential-row" data-class="erythroblast" class="per-100">
                        <td>"erythroblast (nucleated red)"</td><td>{d.nucleated_red}</td>
                        <td colspan="3">{nrbc.map(|v| format!("{v:.1} per 100 leukocytes")).unwrap_or_else(|| "no leukocyte to count them against".into())}</td>
                    </tr>
                })}
                {d.not_counted.into_iter().map(|(label, count)| view! {
                    <tr data-testid="differential-row" data-class=label.clone() class="not-counted">
                        <td>{label.clone()}</td><td>{count}</td><td colspan="3">"not in the percentages"</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
        <p class="flags" data-testid="flags">
            {format!("{precision}; {awaiting} awaiting review; {anomalies} flagged as anomalies")}
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
            view! { <DifferentialTable d=leukocyte_differential([&r]) awaiting=awaiting anomalies=anomalies /> }
        })}
    }
}

/// The analysed images of the session (those whose cells were found).
fn analysed(s: &Session) -> Vec<&ImageRecord> {
    s.images.iter().filter(|i| i.findings.is_some()).collect()
}

/// The differential of all analysed fields of the session together, shown once there are two
/// or more (with one, it is that field's).
#[component]
pub fn SessionDifferential(
    /// The session.
    session: RwSignal<Session>,
) -> impl IntoView {
    view! {
        {move || session.with(|s| {
            let images = analysed(s);
            (images.len() >= 2).then(|| {
                let (awaiting, anomalies) = review_counts(images.iter().copied());
                let d = leukocyte_differential(images.iter().copied());
                view! {
                    <section class="session-differential" data-testid="session-differential">
                        <h3>{format!("All {} fields together", images.len())}</h3>
                        <DifferentialTable d=d awaiting=awaiting anomalies=anomalies />
                    </section>
                }
            })
        })}
    }
}
