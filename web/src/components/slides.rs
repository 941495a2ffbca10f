//! The slide controls: which slide (one patient's smear) the images opened next join, a new
//! slide, its label; and, per image, the slide it is a field of ([`crate::slides`]).

use super::refusal;
use crate::session::Session;
use leptos::prelude::*;

/// Options of a slide `<select>`: every slide of the session, `chosen` selected.
#[component]
fn SlideOptions(session: RwSignal<Session>, chosen: Memo<String>) -> impl IntoView {
    let slides = Memo::new(move |_| session.with(|s| s.slides()));
    view! {
        <For each=move || slides.get() key=|l| l.clone() let:label>
            {
                let (this, value) = (label.clone(), label.clone());
                view! { <option value=value prop:selected=move || chosen.get() == this>{label}</option> }
            }
        </For>
    }
}

/// Where opened images go: the current slide (chosen among the session's), a new slide, and
/// the current slide's label; a refused label is said and changes nothing.
#[component]
pub fn SlideBar(
    /// The session.
    session: RwSignal<Session>,
) -> impl IntoView {
    let (problem, set_problem) = signal(None::<String>);
    let current = Memo::new(move |_| session.with(|s| s.current_slide().to_string()));
    view! {
        <div class="slide-bar" data-testid="slide-bar">
            <label>"Images you open are fields of "
                <select data-testid="slide-select" on:change=move |ev| {
                    let v = event_target_value(&ev);
                    set_problem.set(refusal(session, |s| s.set_current_slide(&v)));
                }>
                    <SlideOptions session=session chosen=current />
                </select>
            </label>
            <button data-testid="new-slide" on:click=move |_| {
                session.update(|s| { s.new_slide(); });
                set_problem.set(None);
            }>"New slide"</button>
            <label>" Label: "
                <input type="text" size="16" data-testid="slide-label" prop:value=move || current.get()
                    on:change=move |ev| {
                        let v = event_target_value(&ev);
                        let from = current.get_untracked();
                        set_problem.set(refusal(session, |s| s.rename_slide(&from, &v)));
                    } />
            </label>
            {move || problem.get().map(|e| view! { <p class="error" data-testid="slide-error">{e}</p> })}
            <p class="hint">"One slide per patient's smear: each slide has its own differential. Labels stay in this browser and go into the exports."</p>
        </div>
    }
}

/// The slide image `id` is a field of, which the user can change until the image is signed off.
#[component]
pub fn ImageSlide(
    /// The session.
    session: RwSignal<Session>,
    /// Image id.
    id: u32,
) -> impl IntoView {
    let (problem, set_problem) = signal(None::<String>);
    let slide = Memo::new(move |_| {
        session
            .with(|s| s.image(id).map(|i| i.slide.clone()))
            .unwrap_or_default()
    });
    let signed =
        Memo::new(move |_| session.with(|s| s.image(id).is_some_and(|i| i.signed_off.is_some())));
    view! {
        <label class="image-slide">"Slide: "
            <select data-testid="image-slide" disabled=move || signed.get() on:change=move |ev| {
                let v = event_target_value(&ev);
                set_problem.set(refusal(session, |s| s.move_to_slide(id, &v)));
            }>
                <SlideOptions session=session chosen=slide />
            </select>
        </label>
        {move || problem.get().map(|e| view! { <p class="error" data-testid="image-slide-error">{e}</p> })}
    }
}
